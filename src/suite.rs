//! The suite runner: the one place where I/O meets the pure verdicts. For the criteria asked, it
//! does the pre-flight, observes the fleet once (one batch per machine), honours the destructive
//! opt-in, rebuilds and observes again for AC5/AC6, judges, and writes the report.

use std::path::PathBuf;

use crate::checks::{self, ac5_rebuild, Verdict};
use crate::error::Error;
use crate::fleet::Fleet;
use crate::names::Criterion;
use crate::observe::{observe, Observations};
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
    // AC6 observes AC1–AC3 again: the status first, then the pairs, in that order as before the
    // plan existed (the restarted overlay daemons get the status round trip to peer again).
    let after_rebuild = (criterion == Criterion::Ac6).then(|| {
        let status = Needs {
            status: true,
            ..Needs::default()
        };
        let pairs = Needs {
            pings: true,
            hops: true,
            ..Needs::default()
        };
        let mut again = observe(fleet, &Plan::new(&fleet.expect, status));
        let paired = observe(fleet, &Plan::new(&fleet.expect, pairs));
        again.mesh = paired.mesh;
        again.hops = paired.hops;
        Box::new(again)
    });
    Observations {
        rebuild: Some(round),
        after_rebuild,
        ..Observations::default()
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
