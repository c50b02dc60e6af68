//! The stability monitor (AC7): rounds of bidirectional overlay pings for every pair, the AC2 SSH
//! hop, the overlay's own status and a journal scan, across all machines in parallel, appended
//! as one JSON line per round. Resumable (the log is the state), bounded (each command has a
//! deadline; nothing accumulates in memory), and it never stops because a machine is down: that
//! is a data point.

pub mod analysis;
pub mod html;
mod log;
mod redacted;

pub use log::read_log;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::fleet::Fleet;
use crate::observe::observe;
use crate::plan::{Needs, Plan, Probe};
use crate::probe::ssh::HopClass;
use crate::rebuild::Progress;
use crate::transport::Cmd;

/// One direction of one pair in one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairSample {
    /// Source.
    pub from: String,
    /// Destination.
    pub to: String,
    /// Loss in percent (100 when the ping could not run).
    pub loss: f64,
    /// Average RTT (ms).
    pub rtt_avg: Option<f64>,
    /// Maximum RTT (ms).
    pub rtt_max: Option<f64>,
    /// Why there is no measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The SSH hop of one pair in one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HopSample {
    /// Source.
    pub from: String,
    /// Destination.
    pub to: String,
    /// Certificate verified and `hostname` right.
    pub ok: bool,
    /// Classification or error.
    pub detail: String,
}

/// One machine in one round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineSample {
    /// The harness reached it over SSH.
    pub reachable: bool,
    /// Overlay daemon status: `ok` or what is wrong.
    pub overlay: String,
    /// Journal lines (warning and above) of the overlay and sshd since the previous round.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<String>,
    /// The machine has no readable journal (said once per round, not an error).
    #[serde(default)]
    pub journal_absent: bool,
}

/// One round: one JSON line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    /// Round number, from 0.
    pub round: u64,
    /// Start (epoch seconds).
    pub ts: f64,
    /// How long the round took.
    pub secs: f64,
    /// Planned monitoring span (seconds) and interval, so a restarted monitor resumes the plan.
    pub for_secs: f64,
    /// Interval between round starts (seconds).
    pub every_secs: f64,
    /// Per ordered pair.
    pub pairs: Vec<PairSample>,
    /// SSH hops.
    pub hops: Vec<HopSample>,
    /// Per machine.
    pub machines: BTreeMap<String, MachineSample>,
    /// Everything that went wrong in the round, one line each.
    pub errors: Vec<String>,
    /// Machines whose SSH session was re-established during the round.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reconnects: Vec<String>,
}

impl Round {
    /// No loss, no error.
    pub fn clean(&self) -> bool {
        self.errors.is_empty()
            && self
                .pairs
                .iter()
                .all(|p| p.loss == 0.0 && p.error.is_none())
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `journalctl` for the overlay daemon and sshd since a time; says when the machine has no
/// journal of its own (no journald socket: the lab, containers).
const JOURNAL_SCRIPT: &str = r#"since="$1"; shift
if ! command -v journalctl >/dev/null 2>&1 || ! [ -S /run/systemd/journal/socket ]; then echo "__no_journal__"; exit 0; fi
out=$(journalctl --no-pager -q -o short-iso -p warning --since "@$since" $(for u in "$@"; do printf -- '-u %s ' "$u"; done) 2>&1)
case "$out" in *"No journal files were found"*|*"No such file or directory"*) echo "__no_journal__" ;; *) printf '%s\n' "$out" | grep -v -e '^-- No entries --' -e '^$' || true ;; esac"#;

fn units(fleet: &Fleet) -> Vec<String> {
    let mut u = crate::plan::watched_units(&fleet.expect);
    u.push("sshd.service".into());
    u
}

/// Runs one round across the fleet.
pub fn round(fleet: &Fleet, n: u64, since: f64, for_secs: f64, every_secs: f64) -> Round {
    let start = Instant::now();
    let ts = now();
    let before = fleet.reconnects();
    let mut errors = Vec::new();
    let machines: BTreeMap<String, MachineSample> = fleet.each(|m| {
        let mut s = MachineSample::default();
        let overlay = fleet.expect.config.overlay;
        match fleet.run(m, &overlay.monitor_cmd()) {
            Ok(out) => {
                s.reachable = true;
                s.overlay = overlay.monitor_status(&out);
            }
            Err(e) => {
                s.overlay = format!("not reached: {e}");
                return s;
            }
        }
        let cmd = Cmd::sh(JOURNAL_SCRIPT)
            .arg(format!("{}", since.floor() as u64))
            .args(units(fleet));
        match fleet.run(m, &cmd) {
            Ok(out) if out.stdout.trim() == "__no_journal__" => s.journal_absent = true,
            Ok(out) => {
                s.journal = out
                    .stdout
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .take(50)
                    .map(String::from)
                    .collect()
            }
            Err(e) => s.journal = vec![format!("journal scan failed: {e}")],
        }
        s
    });
    for (m, s) in &machines {
        if !s.reachable {
            errors.push(format!("{m}: {}", s.overlay));
        } else if s.overlay != "ok" {
            errors.push(format!("{m}: overlay: {}", s.overlay));
        }
        errors.extend(s.journal.iter().map(|l| format!("{m}: journal: {l}")));
    }
    let reachable = |m: &str| machines.get(m).is_some_and(|s| s.reachable);
    let pings = Needs {
        pings: true,
        ..Needs::default()
    };
    let pairs: Vec<PairSample> = observe(fleet, &Plan::new(&fleet.expect, pings))
        .mesh
        .into_iter()
        .map(|((from, to), seen)| {
            let (loss, rtt, error) = match &seen.value {
                Ok(Ok(p)) => (p.loss_percent, p.rtt, None),
                Ok(Err(e)) => (100.0, None, Some(e.to_string())),
                Err(e) if !reachable(&from) => (
                    100.0,
                    None,
                    Some(format!(
                        "{from} not reached over SSH: {}",
                        crate::redact::excerpt(e, 160)
                    )),
                ),
                Err(e) => (100.0, None, Some(crate::redact::excerpt(e, 200))),
            };
            PairSample {
                from,
                to,
                loss,
                rtt_avg: rtt.map(|r| r.avg),
                rtt_max: rtt.map(|r| r.max),
                error,
            }
        })
        .collect();
    for p in &pairs {
        if p.loss > 0.0 || p.error.is_some() {
            errors.push(format!(
                "{} → {}: {}% loss{}",
                p.from,
                p.to,
                p.loss,
                p.error
                    .as_ref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ));
        }
    }
    let path_up = |from: &str, to: &str| {
        pairs
            .iter()
            .any(|p| p.from == from && p.to == to && p.loss == 0.0 && p.error.is_none())
    };
    // Hops only over paths that just passed their pings: the others could only time out.
    let mut hop_plan = Plan::new(
        &fleet.expect,
        Needs {
            hops: true,
            ..Needs::default()
        },
    );
    for (from, steps) in hop_plan.machines.iter_mut() {
        steps.retain(|s| matches!(&s.probe, Probe::Hop(to) if path_up(from, to)));
    }
    let mut hop_obs = observe(fleet, &hop_plan).hops;
    for ((from, to), h) in hop_obs.iter_mut() {
        if !path_up(from, to) && crate::overlay::expected_address(&fleet.expect, to).is_some() {
            h.hop = crate::seen::Seen::not_run(
                "skipped: the overlay path failed its pings in this round".into(),
            );
        }
    }
    let hops: Vec<HopSample> = hop_obs
        .into_iter()
        .map(|((from, to), h)| {
            let (ok, detail) = match h.hop.ok() {
                Some(hop) if hop.class == HopClass::CertificateVerified && h.hostname == to => {
                    (true, "certificate verified".to_string())
                }
                Some(hop) => (false, format!("{:?}, hostname {:?}", hop.class, h.hostname)),
                None => (
                    false,
                    h.hop
                        .value
                        .as_ref()
                        .err()
                        .map(|e| crate::redact::excerpt(e, 200))
                        .unwrap_or_default(),
                ),
            };
            HopSample {
                from,
                to,
                ok,
                detail,
            }
        })
        .collect();
    for h in hops.iter().filter(|h| !h.ok) {
        errors.push(format!("ssh {} → {}: {}", h.from, h.to, h.detail));
    }
    let after = fleet.reconnects();
    let reconnects = after
        .iter()
        .filter(|(m, n)| before.get(*m).is_some_and(|b| *n > b))
        .map(|(m, _)| m.clone())
        .collect();
    // Remote texts are withheld here, once, before the round is logged or shown.
    Round {
        round: n,
        ts,
        secs: start.elapsed().as_secs_f64(),
        for_secs,
        every_secs,
        pairs,
        hops,
        machines,
        errors,
        reconnects,
    }
    .redacted()
}

/// Options of `clan-coord monitor`.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// Span to cover.
    pub for_: Duration,
    /// Interval between round starts.
    pub every: Duration,
    /// The log (JSON lines); resumed when it exists.
    pub log: PathBuf,
}

fn fmt_dur(s: f64) -> String {
    let s = s.max(0.0) as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Runs the monitor until the span is covered. Resumes an existing log with its own plan.
/// Progress goes to `progress`, one line per round.
pub fn run(fleet: &Fleet, opts: &MonitorOptions, progress: Progress) -> Result<u64, Error> {
    let io_err = |e: std::io::Error| Error::Write {
        path: opts.log.clone(),
        source: e,
    };
    for (flag, value, range) in [
        ("--for", opts.for_, crate::env::SPAN),
        ("--every", opts.every, crate::env::INTERVAL),
    ] {
        if value < range.min || value > range.max {
            return Err(Error::Env {
                var: flag,
                value: format!("{value:?}"),
                reason: range.allowed(),
            });
        }
    }
    let previous = log::resume(&opts.log, progress)?;
    let (start, for_secs, every_secs, mut n, mut since) = match (previous.first(), previous.last())
    {
        (Some(f), Some(l)) => {
            // Checked on read: the round number is within its plan, far from u64::MAX.
            let next = l.round.checked_add(1).ok_or_else(|| Error::Env {
                var: "--log",
                value: opts.log.display().to_string(),
                reason: format!("round {} cannot be followed", l.round),
            })?;
            progress(&format!(
                "monitor: resuming {} at round {next} (started {:.0}s ago)",
                opts.log.display(),
                now() - f.ts
            ));
            (f.ts, f.for_secs, f.every_secs, next, l.ts)
        }
        _ => (
            now(),
            opts.for_.as_secs_f64(),
            opts.every.as_secs_f64(),
            0,
            now(),
        ),
    };
    drop(previous);
    if let Some(p) = opts.log.parent() {
        std::fs::create_dir_all(p).map_err(io_err)?;
    }
    let mut ran = 0;
    loop {
        let due = start + n as f64 * every_secs;
        if due > start + for_secs + 1e-6 {
            break;
        }
        // Sleep until the round is due, keeping sessions alive; never busy-wait.
        loop {
            let wait = due - now();
            if wait <= 0.0 {
                break;
            }
            std::thread::sleep(Duration::from_secs_f64(wait.min(15.0)));
            fleet.keepalive();
        }
        let r = round(fleet, n, since, for_secs, every_secs);
        let mut line = serde_json::to_string(&r).unwrap_or_default();
        if let Err(kind) =
            serde_json::to_value(&r).map_or(Ok(()), |v| crate::redact::refuse_json(&v))
        {
            return Err(Error::SecretInReport {
                path: opts.log.clone(),
                kind,
            });
        }
        line.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&opts.log)
            .map_err(io_err)?;
        f.write_all(line.as_bytes()).map_err(io_err)?;
        f.sync_data().map_err(io_err)?;
        progress(&format!(
            "monitor: round {n} at +{} ({} left): {}{}",
            fmt_dur(r.ts - start),
            fmt_dur(start + for_secs - r.ts),
            if r.clean() {
                "clean".to_string()
            } else {
                format!(
                    "{} problem(s): {}",
                    r.errors.len(),
                    r.errors.first().cloned().unwrap_or_default()
                )
            },
            if r.reconnects.is_empty() {
                String::new()
            } else {
                format!(" (reconnected: {})", r.reconnects.join(", "))
            }
        ));
        since = r.ts;
        n += 1;
        ran += 1;
    }
    Ok(ran)
}
