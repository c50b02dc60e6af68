//! The suite runner: the one place where I/O meets the pure verdicts. For the criteria asked, it
//! does the pre-flight, observes the fleet once (one batch per machine), honours the destructive
//! opt-in, rebuilds and observes again for AC5/AC6, judges, and writes the report.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::checks::{self, ac5_rebuild, Verdict};
use crate::error::Error;
use crate::fleet::Fleet;
use crate::names::Criterion;
use crate::observe::{observe, Observations, Settled};
use crate::plan::{Needs, Plan};
use crate::rebuild::{self, Progress};

/// How a run may behave.
pub struct RunOptions<'a> {
    /// Rebuilds of live machines are allowed (`COORD_DESTRUCTIVE=1`, or the lab).
    pub destructive: bool,
    /// report.json goes here (None: no report).
    pub report_dir: Option<PathBuf>,
    /// The rebuild logs go here.
    pub log_dir: PathBuf,
    /// Progress lines of long work (rebuilds).
    pub progress: Progress<'a>,
    /// Called before each rebuild round with its criterion (the lab changes its repo there);
    /// an error stops the run with its text.
    pub before_rebuild: Option<&'a dyn Fn(Criterion) -> Result<(), String>>,
}

impl<'a> RunOptions<'a> {
    /// No report, rebuild logs in the system's temporary directory: for tests and callers that
    /// only want the verdicts.
    pub fn verdicts_only(destructive: bool, progress: Progress<'a>) -> RunOptions<'a> {
        RunOptions {
            destructive,
            report_dir: None,
            log_dir: std::env::temp_dir(),
            progress,
            before_rebuild: None,
        }
    }
}

/// Why a destructive criterion must not run now, if it must not.
pub fn refusal(fleet: &Fleet, criterion: Criterion, allowed: bool) -> Option<String> {
    (criterion.destructive() && fleet.origin.is_live() && !allowed).then(|| {
        format!(
            "not run: destructive (rebuilds every machine); set {}=1 to run",
            crate::env::DESTRUCTIVE
        )
    })
}

/// Whether the clan repo contradicts itself (then no machine is contacted).
fn inconsistent(fleet: &Fleet) -> bool {
    checks::preflight(Criterion::Ac1, &fleet.expect).is_some()
}

/// One observation of what the read-only criteria among `criteria` need.
pub fn observe_read_only(fleet: &Fleet, criteria: &[Criterion]) -> Observations {
    let read_only: Vec<Criterion> = criteria
        .iter()
        .copied()
        .filter(|c| Criterion::OBSERVED.contains(c))
        .collect();
    if read_only.is_empty() || inconsistent(fleet) {
        return Observations::default();
    }
    observe(fleet, &Plan::new(&fleet.expect, Needs::of(&read_only)))
}

/// AC5's or AC6's observations: the system state, every rebuild, the state again; for AC6 also
/// AC1–AC3's observations made afresh.
pub fn observe_rebuild(fleet: &Fleet, criterion: Criterion, opts: &RunOptions) -> Observations {
    if inconsistent(fleet) {
        return Observations::default();
    }
    let plan = Plan::new(&fleet.expect, Needs::of(&[criterion]));
    let round = rebuild::round(fleet, &plan, &opts.log_dir, opts.progress);
    let after_rebuild = (criterion == Criterion::Ac6).then(|| Box::new(observe_again(fleet, opts)));
    Observations {
        rebuild: Some(round),
        after_rebuild,
        ..Observations::default()
    }
}

/// Most observations AC6 makes while it waits for the mesh to form again.
const SETTLE_ATTEMPTS: u32 = 30;

/// Least time between two of those observations (they fail fast while a route is missing).
const SETTLE_PACE: Duration = Duration::from_secs(1);

/// Most observations AC6 makes, once the mesh is up, while a changed network setting is on its
/// way to the members (bounded in time by the overlay's arrival wait too).
const ARRIVAL_ATTEMPTS: u32 = 20;

/// Least time between two of those: members fetch a setting about once a minute.
const ARRIVAL_PACE: Duration = Duration::from_secs(5);

/// AC1–AC3's observations made afresh after AC6's rebuild. Overlay daemons restarted by the
/// switch need a moment to find their peers again, on a real fleet as in the lab: the fleet is
/// observed (the status first, then the pairs, giving the daemons the status round trip) until
/// AC1 passes, at most `[rebuild] settle_secs` and [`SETTLE_ATTEMPTS`] times; then, on ZeroTier,
/// until every member holds the network settings its controller serves, at most the overlay's
/// arrival wait (90 s) and [`ARRIVAL_ATTEMPTS`] times more. The last observation is the one
/// judged, and it says how long the mesh and the setting took.
fn observe_again(fleet: &Fleet, opts: &RunOptions) -> Observations {
    let status = Needs {
        status: true,
        ..Needs::default()
    };
    let pairs = Needs {
        pings: true,
        hops: true,
        ..Needs::default()
    };
    let limit = fleet.expect.config.rebuild.settle;
    let arrival_wait = fleet.expect.config.overlay.arrival_wait();
    let start = Instant::now();
    let mut formed_at: Option<Duration> = None;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let began = Instant::now();
        let mut again = observe(fleet, &Plan::new(&fleet.expect, status));
        let paired = observe(fleet, &Plan::new(&fleet.expect, pairs));
        again.mesh = paired.mesh;
        again.hops = paired.hops;
        again.clients = paired.clients;
        let formed = checks::ac1_mesh::evaluate(&fleet.expect, &again).passed();
        let waited = start.elapsed();
        // Once the mesh is up, a changed network setting may still be on its way to members
        // that fetch it on their own schedule (ZeroTier): keep observing, bounded, for them.
        let pending = if formed {
            crate::overlay::settings_pending(&fleet.expect, &again)
        } else {
            Vec::new()
        };
        let since_formed = match (formed, formed_at) {
            (true, None) => {
                formed_at = Some(waited);
                Duration::ZERO
            }
            (true, Some(t)) => waited.saturating_sub(t),
            (false, _) => {
                formed_at = None;
                Duration::ZERO
            }
        };
        // A replay answers as recorded (then its last answer again) at once: waiting there
        // only makes the run slow and the note claim seconds the fleet never took.
        let replay = !fleet.origin.is_live();
        let out_of_time = if formed {
            attempts >= SETTLE_ATTEMPTS + ARRIVAL_ATTEMPTS
                || (!replay && since_formed >= arrival_wait)
        } else {
            attempts >= SETTLE_ATTEMPTS || (!replay && waited >= limit)
        };
        if (formed && pending.is_empty()) || out_of_time {
            again.settled = Some(Settled {
                formed,
                pending,
                arrival: since_formed,
                replayed: replay,
                waited,
                attempts,
                limit,
            });
            return again;
        }
        let pace = if formed {
            (opts.progress)(&format!(
                "AC6: the mesh is up again; the changed network setting has not reached {} yet ({:.1} s after the rebuild, observation {attempts}; members fetch it about every 60 s); observing again",
                pending.join(", "),
                waited.as_secs_f64()
            ));
            ARRIVAL_PACE.min(arrival_wait.saturating_sub(since_formed))
        } else {
            (opts.progress)(&format!(
                "AC6: the mesh has not formed again yet after the rebuild ({:.1} s, observation {attempts}); observing again",
                waited.as_secs_f64()
            ));
            SETTLE_PACE.min(limit.saturating_sub(start.elapsed()))
        };
        if let Some(rest) = pace.checked_sub(began.elapsed()).filter(|_| !replay) {
            std::thread::sleep(rest);
        }
    }
}

/// A destructive criterion's verdict: refused without the opt-in, else rebuilt and judged.
pub fn rebuild_verdict(
    fleet: &Fleet,
    criterion: Criterion,
    opts: &RunOptions,
) -> Result<Verdict, Error> {
    if let Some(why) = refusal(fleet, criterion, opts.destructive) {
        return Ok(checks::preflight(criterion, &fleet.expect)
            .unwrap_or_else(|| ac5_rebuild::not_run(criterion, why)));
    }
    if let Some(hook) = opts.before_rebuild {
        hook(criterion).map_err(|reason| Error::BeforeRebuild { criterion, reason })?;
    }
    let obs = observe_rebuild(fleet, criterion, opts);
    Ok(checks::evaluate(criterion, &fleet.expect, &obs))
}

/// A criterion a run did not judge, and why (printed after the table, kept in report.json).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NotRun {
    /// The criterion.
    pub criterion: Criterion,
    /// Why it was not run.
    pub reason: String,
}

/// How many rebuild rounds a replayed cassette holds: the fewest times any machine's planned
/// rebuild command is recorded in its workstation section (each round rebuilds every machine).
/// None for a live fleet.
pub fn recorded_rebuilds(fleet: &Fleet) -> Option<usize> {
    let c = &fleet.cassette.as_ref()?.cassette;
    let plan = Plan::new(&fleet.expect, Needs::of(&[Criterion::Ac5]));
    plan.rebuilds
        .values()
        .map(|cmd| {
            c.workstation
                .iter()
                .filter(|e| e.command == cmd.text())
                .count()
        })
        .min()
}

/// The criteria `check` judges by default: AC1–AC4, and on a replay AC5 when the cassette holds
/// a rebuild round and AC6 when it holds a second one (recorded after AC5's, as a full run
/// records them). A live run rebuilds nothing unless asked (`--only ac5`).
pub fn default_criteria(fleet: &Fleet) -> Vec<Criterion> {
    let mut c = Criterion::OBSERVED.to_vec();
    let rounds = recorded_rebuilds(fleet).unwrap_or(0);
    if rounds >= 1 {
        c.push(Criterion::Ac5);
    }
    if rounds >= 2 {
        c.push(Criterion::Ac6);
    }
    c
}

/// Every criterion not among `criteria`, with why: what the cassette lacks, the destructive
/// opt-in, a monitor log, or not asked for.
pub fn not_run(fleet: &Fleet, criteria: &[Criterion]) -> Vec<NotRun> {
    let rounds = recorded_rebuilds(fleet);
    Criterion::ALL
        .into_iter()
        .filter(|c| !criteria.contains(c))
        .map(|criterion| {
            let reason = match (criterion, rounds) {
                (Criterion::Ac7, _) => "judges a monitor log".to_string(),
                (Criterion::Ac5 | Criterion::Ac6, Some(0)) => "no rebuild in this cassette".into(),
                (Criterion::Ac6, Some(1)) => {
                    "this cassette holds one rebuild round, AC5's; AC6 needs a second".into()
                }
                (Criterion::Ac5 | Criterion::Ac6, None) => format!(
                    "destructive, not run by default: ask with --only and set {}=1",
                    crate::env::DESTRUCTIVE
                ),
                _ => "not asked (--only)".into(),
            };
            NotRun { criterion, reason }
        })
        .collect()
}

/// `not run: AC5, AC6 (no rebuild in this cassette), AC7 (judges a monitor log)`: criteria
/// with the same reason in a row share it. None when everything ran.
pub fn not_run_line(not_run: &[NotRun]) -> Option<String> {
    let mut parts: Vec<(Vec<Criterion>, &str)> = Vec::new();
    for n in not_run {
        match parts.last_mut() {
            Some((cs, reason)) if *reason == n.reason => cs.push(n.criterion),
            _ => parts.push((vec![n.criterion], &n.reason)),
        }
    }
    (!parts.is_empty()).then(|| {
        let said: Vec<String> = parts
            .iter()
            .map(|(cs, reason)| {
                let ids: Vec<&str> = cs.iter().map(|c| c.id()).collect();
                format!("{} ({reason})", ids.join(", "))
            })
            .collect();
        format!("not run: {}", said.join(", "))
    })
}

/// Runs `criteria` (AC1–AC6; AC7 is judged from a monitor log) and records every verdict in
/// report.json; verdicts come back in criterion order.
pub fn run(
    fleet: &Fleet,
    criteria: &[Criterion],
    opts: &RunOptions,
) -> Result<Vec<Verdict>, Error> {
    let obs = observe_read_only(fleet, criteria);
    let mut verdicts = Vec::new();
    for c in Criterion::ALL.into_iter().filter(|c| criteria.contains(c)) {
        let v = match c {
            Criterion::Ac5 | Criterion::Ac6 => rebuild_verdict(fleet, c, opts)?,
            _ => checks::evaluate(c, &fleet.expect, &obs),
        };
        if let Some(dir) = &opts.report_dir {
            crate::report::record(dir, &fleet.origin.to_string(), &v)?;
        }
        verdicts.push(v);
    }
    Ok(verdicts)
}
