//! Rebuilds for AC5/AC6: the configured command (default `clan machines update {machine}`) runs
//! on the workstation for each machine, in parallel up to a limit, each machine's output kept in
//! `target/coordination/rebuild-<machine>.log` and a progress line printed as each starts and
//! ends. Before and after, every machine reports its system generation, `/run/current-system`,
//! the configured artefact hashes and how long the watched units have been running — one
//! round trip per machine. Nothing is retried: a failed rebuild is a finding.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use crate::fleet::Fleet;
use crate::plan::Plan;
use crate::probe::nixos::{parse_state, SystemState};
use crate::seen::Seen;
use crate::transport::{Cmd, Output};

/// Where progress lines go (the operator's terminal: rebuilds take minutes).
pub type Progress<'a> = &'a (dyn Fn(&str) + Sync);

/// Every machine's system state, in parallel.
pub fn states(fleet: &Fleet, cmd: &Cmd) -> BTreeMap<String, Seen<SystemState>> {
    fleet.each(|m| {
        Seen::of(cmd, fleet.run(m, cmd).map_err(|e| e.to_string()), |o| {
            parse_state(&o.stdout)
        })
    })
}

/// One machine's rebuild.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RebuildRun {
    /// The command line run on the workstation.
    pub command: String,
    /// Exit status (None: could not run or timed out).
    pub exit: Option<i32>,
    /// Seconds it took.
    pub secs: f64,
    /// Last lines of its output (for the verdict).
    pub tail: String,
    /// Where the whole output is.
    pub log: String,
    /// Transport error, if the command could not run.
    pub error: Option<String>,
}

impl RebuildRun {
    /// Exit 0.
    pub fn ok(&self) -> bool {
        self.exit == Some(0) && self.error.is_none()
    }
}

/// The last `n` lines of a rebuild's output, or the withheld marker when it holds a secret.
fn tail(text: &str, n: usize) -> String {
    // Checked whole: the last lines of a key are not recognisable on their own.
    if let Some(kind) = crate::redact::detect(text) {
        return crate::redact::withheld(kind, text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Rebuilds every machine with its planned command, at most `parallel` at once; logs into
/// `log_dir`, a progress line as each starts and ends.
pub fn rebuild_all(
    fleet: &Fleet,
    plan: &Plan,
    log_dir: &Path,
    progress: Progress,
) -> BTreeMap<String, RebuildRun> {
    let _ = std::fs::create_dir_all(log_dir);
    let queue: Mutex<Vec<String>> = Mutex::new(
        fleet
            .machines()
            .iter()
            .rev()
            .map(|m| m.to_string())
            .collect(),
    );
    let results: Mutex<BTreeMap<String, RebuildRun>> = Mutex::new(BTreeMap::new());
    let workers = fleet
        .expect
        .config
        .rebuild
        .parallel
        .min(fleet.machines().len())
        .max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let Some(m) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
                    return;
                };
                let Some(cmd) = plan.rebuilds.get(&m) else {
                    continue;
                };
                let log = log_dir.join(format!("rebuild-{m}.log"));
                progress(&format!("rebuild {m}: started: {}", cmd.text()));
                let r = fleet.run_local(cmd);
                let run = match r {
                    Ok(Output {
                        stdout,
                        stderr,
                        exit,
                        duration,
                    }) => {
                        // The log is withheld whole if it holds a secret (length and hash only).
                        let text = format!("$ {}\n{stdout}{stderr}", cmd.text());
                        let _ = std::fs::write(&log, crate::redact::withhold(&text).as_bytes());
                        RebuildRun {
                            command: cmd.text().into(),
                            exit,
                            secs: duration.as_secs_f64(),
                            tail: tail(&format!("{stdout}{stderr}"), 12),
                            log: log.display().to_string(),
                            error: None,
                        }
                    }
                    Err(e) => {
                        let _ = std::fs::write(&log, format!("$ {}\n{e}\n", cmd.text()));
                        RebuildRun {
                            command: cmd.text().into(),
                            exit: None,
                            secs: 0.0,
                            tail: String::new(),
                            log: log.display().to_string(),
                            error: Some(e.to_string()),
                        }
                    }
                };
                progress(&format!(
                    "rebuild {m}: {} after {:.1}s (log {})",
                    if run.ok() {
                        "done".to_string()
                    } else {
                        format!(
                            "FAILED (exit {})",
                            run.exit.map_or("none".to_string(), |e| e.to_string())
                        )
                    },
                    run.secs,
                    run.log
                ));
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(m, run);
            });
        }
    });
    results.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// Before/after states and the rebuilds in between.
#[derive(Debug, Clone)]
pub struct RebuildRound {
    /// Before.
    pub before: BTreeMap<String, Seen<SystemState>>,
    /// Rebuild per machine.
    pub runs: BTreeMap<String, RebuildRun>,
    /// After.
    pub after: BTreeMap<String, Seen<SystemState>>,
}

/// Probes, rebuilds every machine, probes again.
pub fn round(fleet: &Fleet, plan: &Plan, log_dir: &Path, progress: Progress) -> RebuildRound {
    let state = plan
        .system_state
        .clone()
        .unwrap_or_else(|| crate::plan::state_cmd(&fleet.expect));
    let before = states(fleet, &state);
    let runs = rebuild_all(fleet, plan, log_dir, progress);
    let after = states(fleet, &state);
    RebuildRound {
        before,
        runs,
        after,
    }
}
