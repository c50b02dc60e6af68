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
use crate::observe::Seen;
use crate::transport::{Cmd, Output};

/// Environment switch that allows rebuilds against live machines.
pub const OPT_IN: &str = "COORD_DESTRUCTIVE";

/// Why a destructive criterion must not run now, if it must not.
pub fn refusal(fleet: &Fleet) -> Option<String> {
    let live = fleet.cassette.is_none() && fleet.origin != "dry-run";
    let allowed = std::env::var(OPT_IN).is_ok_and(|v| v == "1");
    (live && !allowed)
        .then(|| format!("not run: destructive (rebuilds every machine); set {OPT_IN}=1 to run"))
}

const STATE_SCRIPT: &str = r#"printf 'profile %s\n' "$(readlink /nix/var/nix/profiles/system 2>/dev/null || echo -)"
printf 'profile-path %s\n' "$(readlink -f /nix/var/nix/profiles/system 2>/dev/null || echo -)"
printf 'current %s\n' "$(readlink -f /run/current-system 2>/dev/null || echo -)"
printf 'switched %s\n' "$(stat -c %.3Y /run/current-system 2>/dev/null || echo 0)"
printf 'now %s\n' "$(date +%s.%N)"
hz=$(getconf CLK_TCK)
units=0
for a in "$@"; do
  if [ "$a" = "--units" ]; then units=1; continue; fi
  if [ $units = 0 ]; then
    if [ -e "$a" ]; then printf 'file %s %s\n' "$a" "$(sha256sum < "$a" | cut -d' ' -f1)"; else printf 'file %s -\n' "$a"; fi
  else
    pid=$(systemctl show -p MainPID --value "$a" 2>/dev/null)
    age=-
    if [ -n "$pid" ] && [ "$pid" != 0 ] && [ -r "/proc/$pid/stat" ]; then
      start=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f20)
      age=$(awk -v st="$start" -v hz="$hz" '{printf "%.2f", $1 - st / hz}' /proc/uptime)
    fi
    def=$(sha256sum < "/run/current-system/etc/systemd/system/$a" 2>/dev/null | cut -d' ' -f1)
    printf 'unit %s %s %s %s\n' "$a" "${pid:-0}" "$age" "${def:--}"
  fi
done"#;

/// A machine's system state around a rebuild.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SystemState {
    /// Generation number of the system profile (`system-<N>-link`).
    pub generation: Option<u32>,
    /// Store path the profile points to.
    pub profile_path: String,
    /// Store path `/run/current-system` points to.
    pub current: String,
    /// When `/run/current-system` was last switched (epoch seconds, ms precision).
    pub switched: f64,
    /// The machine's clock at the probe (epoch seconds).
    pub now: f64,
    /// Artefact path → sha256 (None when missing).
    pub files: BTreeMap<String, Option<String>>,
    /// Unit → how long it has run and which definition the system carries.
    pub units: BTreeMap<String, UnitLive>,
}

/// A watched unit's live state.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct UnitLive {
    /// Seconds its main process has run, from /proc (None when not running).
    pub age: Option<f64>,
    /// sha256 of its unit file in the current system (None when the system has none): a
    /// different hash after a rebuild means its definition changed and a restart is due.
    pub definition: Option<String>,
}

/// Parses the state script's output.
pub fn parse_state(out: &str) -> Result<SystemState, String> {
    let mut s = SystemState::default();
    let mut seen_now = false;
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["profile", p] => s.generation = crate::probe::nixos::parse_profile_link(p).ok(),
            ["profile-path", p] => s.profile_path = p.to_string(),
            ["current", p] => s.current = p.to_string(),
            ["switched", t] => s.switched = t.parse().unwrap_or(0.0),
            ["now", t] => {
                s.now = t.parse().map_err(|_| format!("bad clock line {line:?}"))?;
                seen_now = true;
            }
            ["file", p, h] => {
                s.files
                    .insert(p.to_string(), (*h != "-").then(|| h.to_string()));
            }
            ["unit", u, _pid, age, def] => {
                s.units.insert(
                    u.to_string(),
                    UnitLive {
                        age: age.parse().ok(),
                        definition: (*def != "-").then(|| def.to_string()),
                    },
                );
            }
            _ => return Err(format!("unexpected line {line:?}")),
        }
    }
    if !seen_now {
        return Err("no state lines (is this a NixOS machine?)".into());
    }
    Ok(s)
}

/// Units watched for AC6: configured ones, else the overlay daemon.
pub fn watched_units(fleet: &Fleet) -> Vec<String> {
    if !fleet.config.rebuild.restart_units.is_empty() {
        return fleet.config.rebuild.restart_units.clone();
    }
    vec![match fleet.config.overlay {
        crate::config::OverlayKind::Zerotier => "zerotierone.service".into(),
        crate::config::OverlayKind::Yggdrasil => "yggdrasil.service".into(),
    }]
}

/// The state command for a fleet.
pub fn state_cmd(fleet: &Fleet) -> Cmd {
    Cmd::sh(STATE_SCRIPT)
        .args(
            fleet
                .config
                .rebuild
                .artefacts
                .iter()
                .map(|a| a.path.as_str()),
        )
        .arg("--units")
        .args(watched_units(fleet))
}

/// Every machine's state, in parallel.
pub fn states(fleet: &Fleet) -> BTreeMap<String, Seen<SystemState>> {
    fleet.each(|m| crate::observe::probe(fleet, m, state_cmd(fleet), |o| parse_state(&o.stdout)))
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

/// The rebuild command for one machine, placeholders filled with validated values.
pub fn rebuild_cmd(fleet: &Fleet, machine: &str) -> Cmd {
    let target = fleet
        .config
        .machine(machine)
        .map(|m| format!("{}@{}", m.user, m.address))
        .unwrap_or_default();
    let flake = fleet
        .config
        .flake
        .clone()
        .unwrap_or_else(|| fleet.config.clan_dir.display().to_string());
    let words: Vec<String> = fleet
        .config
        .rebuild
        .command
        .iter()
        .map(|w| {
            w.replace("{machine}", machine)
                .replace("{target}", &target)
                .replace("{flake}", &flake)
        })
        .collect();
    Cmd::argv(&words).timeout(fleet.config.rebuild.timeout)
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Rebuilds every machine, at most `parallel` at once; logs into `log_dir`.
pub fn rebuild_all(fleet: &Fleet, log_dir: &Path) -> BTreeMap<String, RebuildRun> {
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
                let cmd = rebuild_cmd(fleet, &m);
                let log = log_dir.join(format!("rebuild-{m}.log"));
                eprintln!("rebuild {m}: started: {}", cmd.text());
                let r = fleet.run_local(&cmd);
                let run = match r {
                    Ok(Output {
                        stdout,
                        stderr,
                        exit,
                        duration,
                    }) => {
                        let text = format!("$ {}\n{stdout}{stderr}", cmd.text());
                        let _ = std::fs::write(&log, &text);
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
                eprintln!(
                    "rebuild {m}: {} after {:.1}s (log {})",
                    if run.ok() {
                        "done".to_string()
                    } else {
                        format!("FAILED (exit {:?})", run.exit)
                    },
                    run.secs,
                    run.log
                );
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
pub fn round(fleet: &Fleet, log_dir: &Path) -> RebuildRound {
    let before = states(fleet);
    let runs = rebuild_all(fleet, log_dir);
    let after = states(fleet);
    RebuildRound {
        before,
        runs,
        after,
    }
}

/// Default log directory.
pub fn log_dir() -> std::path::PathBuf {
    crate::mode::crate_root().join("target/coordination")
}
