//! Verdicts. Each criterion module turns observations and expectations into findings; none runs a
//! command. A failing finding reads: criterion → machine and direction → command → exit → output
//! excerpt → expected → likely cause.

mod ac1_causes;
pub mod ac1_mesh;
pub mod ac2_ssh;
pub mod ac3_services;
pub mod ac4_shared;
pub mod ac5_rebuild;
pub mod ac6_coordination;
pub mod ac7_stability;
pub mod coverage;
pub mod roots;

pub use crate::verdict::{probe_failed, probe_unchecked, Finding, Outcome, Severity, Verdict};

use crate::expectations::Expectations;
use crate::names::Criterion;
use crate::observe::Observations;

/// Judges one criterion: the repo's own consistency first, then the observations against the
/// expectations. Pure: the same observations give the same verdict, live or replayed. AC7 is
/// judged from a monitor log instead ([`ac7_stability`]).
///
/// Fails closed: a failure that made other checks impossible is named once and what depended
/// on it is UNCHECKED ([`roots`]); inventory machines machines.toml leaves out are UNCHECKED
/// ([`coverage`]); a verdict with UNCHECKED findings or no check at all does not pass.
pub fn evaluate(criterion: Criterion, exp: &Expectations, obs: &Observations) -> Verdict {
    if let Some(v) = preflight(criterion, exp) {
        return v;
    }
    let v = judge(criterion, exp, obs);
    if criterion == Criterion::Ac7 {
        return v;
    }
    let mut findings = roots::fold(exp, obs, v.findings);
    let mut notes = v.notes;
    coverage::add(criterion, exp, &mut findings, &mut notes);
    Verdict::new(criterion, findings, notes)
}

/// The criterion's own judgement.
fn judge(criterion: Criterion, exp: &Expectations, obs: &Observations) -> Verdict {
    match criterion {
        Criterion::Ac1 => ac1_mesh::evaluate(exp, obs),
        Criterion::Ac2 => ac2_ssh::evaluate(exp, obs),
        Criterion::Ac3 => ac3_services::evaluate(exp, obs),
        Criterion::Ac4 => ac4_shared::evaluate(exp, obs),
        Criterion::Ac5 => ac5_rebuild::evaluate(exp, obs),
        Criterion::Ac6 => ac6_coordination::evaluate(exp, obs),
        Criterion::Ac7 => ac5_rebuild::not_run(
            criterion,
            "AC7 judges a monitor log, not one observation (see ac7_stability)".into(),
        ),
    }
}

/// The offline pre-flight every criterion runs first: when the clan repo contradicts itself
/// (`clan-coord oracle` errors), the criterion fails with those inconsistencies before any SSH.
pub fn preflight(criterion: Criterion, exp: &Expectations) -> Option<Verdict> {
    let mut issues = crate::oracle::lint::lint(&exp.oracle, Some(&exp.inventory), &exp.domain);
    if let Some(peers) = &exp.exports {
        issues.extend(crate::oracle::exports::cross_check(&exp.oracle, peers));
    }
    let errors: Vec<Finding> = issues
        .iter()
        .filter(|i| i.level == crate::oracle::lint::Level::Error)
        .map(|i| {
            Finding::new(Severity::Fail, "oracle.inconsistent", &i.machine, format!("clan repo rule {}", i.rule))
                .seen(format!("{} (files: {})", i.problem, i.files.join(", ")))
                .expected(i.should.clone())
                .cause(format!(
                    "the clan repo {} contradicts itself, so no machine was contacted; fix the repo (`clan-coord oracle {}` lists every inconsistency)",
                    exp.oracle.dir.display(),
                    exp.oracle.dir.display()
                ))
        })
        .collect();
    (!errors.is_empty()).then(|| {
        Verdict::new(
            criterion,
            errors,
            vec!["pre-flight: the clan repo is inconsistent; checks not run".into()],
        )
    })
}
