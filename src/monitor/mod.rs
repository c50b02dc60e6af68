//! The stability monitor (AC7): rounds of bidirectional overlay pings for every pair, the AC2 SSH
//! hop, the overlay's own status and a journal scan, across all machines in parallel, appended
//! as one JSON line per round. Resumable (the log is the state), bounded (each command has a
//! deadline; nothing accumulates in memory), and it never stops because a machine is down: that
//! is a data point.

pub mod analysis;
mod collect;
pub mod coverage;
pub mod html;
mod log;
mod redacted;
pub mod session;
pub mod tables;

pub use collect::{journal_cmd, round};
pub use log::read_log;
pub use session::{SessionSample, SessionState};

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::fleet::Fleet;
use crate::rebuild::Progress;

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
    /// The ping did not run: the harness's session to `from` failed (see that machine's
    /// `session`). Not a measurement of the overlay; `loss` is 100 as for any ping that did
    /// not run.
    #[serde(default, skip_serializing_if = "is_false")]
    pub observer_gap: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
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
    /// The hop did not run: the harness's session to `from` failed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub observer_gap: bool,
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
    /// What the harness's own session to it did in this round (absent in logs written before
    /// it was recorded; see [`Round::session`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionSample>,
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
    /// No loss, no error, and every machine observed.
    pub fn clean(&self) -> bool {
        self.errors.is_empty()
            && self.observer_gaps().is_empty()
            && self
                .pairs
                .iter()
                .all(|p| p.loss == 0.0 && p.error.is_none())
    }

    /// What the harness's session to `m` did in this round: as recorded, or for logs written
    /// before sessions were recorded, as their other fields show it (a machine whose status
    /// could not be read, or a ping whose error is the transport's own, naming the machine).
    pub fn session(&self, m: &str) -> Option<SessionSample> {
        let s = self.machines.get(m)?;
        if let Some(sess) = &s.session {
            return Some(sess.clone());
        }
        let mut missed = Vec::new();
        let mut error = None;
        if !s.reachable {
            missed.push("overlay status".to_string());
            error = s.overlay.strip_prefix("not reached: ").map(String::from);
        }
        if let Some(e) = s
            .journal
            .iter()
            .find_map(|l| l.strip_prefix("journal scan failed: "))
        {
            missed.push("journal scan".to_string());
            error = error.or_else(|| Some(e.to_string()));
        }
        for p in self
            .pairs
            .iter()
            .filter(|p| p.from == m && self.legacy_gap(p))
        {
            missed.push(format!("ping → {}", p.to));
            error = error.or_else(|| p.error.clone());
        }
        let state = match &error {
            _ if missed.is_empty() => SessionState::Connected,
            Some(e) if e.contains("did not finish within") => SessionState::Stalled,
            _ => SessionState::Dropped,
        };
        Some(SessionSample {
            state,
            waited: None,
            error,
            missed,
        })
    }

    /// A ping of an old log (no sessions recorded) that did not run for the harness's reasons.
    fn legacy_gap(&self, p: &PairSample) -> bool {
        let from = self.machines.get(&p.from);
        from.is_some_and(|s| s.session.is_none())
            && p.rtt_avg.is_none()
            && (from.is_some_and(|s| !s.reachable)
                || p.error
                    .as_deref()
                    .is_some_and(|e| collect::is_transport_error(&p.from, e)))
    }

    /// The ping did not run because the harness could not ask `p.from`: no overlay evidence.
    pub fn pair_unobserved(&self, p: &PairSample) -> bool {
        p.observer_gap || self.legacy_gap(p)
    }

    /// Machines the harness could not fully ask in this round, with what it saw of its session.
    pub fn observer_gaps(&self) -> Vec<(String, SessionSample)> {
        self.machines
            .keys()
            .filter_map(|m| {
                let s = self.session(m)?;
                s.state.is_gap().then(|| (m.clone(), s))
            })
            .collect()
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
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
                let gaps: Vec<String> = r
                    .observer_gaps()
                    .iter()
                    .map(|(m, s)| format!("observer gap: {}", s.describe(m)))
                    .collect();
                let problems: Vec<&String> = r.errors.iter().chain(&gaps).collect();
                format!(
                    "{} problem(s): {}",
                    problems.len(),
                    problems.first().map(|p| p.as_str()).unwrap_or_default()
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
