//! AC6: a service-instance setting change propagates and the services still coordinate. After
//! the rebuild (as AC5 judges it), the watched daemons must be running since the switch — their
//! live state, not only their config: `clan machines update` does not restart services when only
//! vars or settings change — and the mesh (AC1), the SSH hops (AC2) and the role probes (AC3) are
//! observed afresh and must pass.

use super::{ac1_mesh, ac2_ssh, ac3_services, ac5_rebuild, Finding, Severity, Verdict};
use crate::expectations::Expectations;
use crate::names::Criterion;
use crate::observe::Observations;

/// Judges AC6 from the rebuild round and the criteria re-run afterwards.
pub fn evaluate(exp: &Expectations, obs: &Observations) -> Verdict {
    let r = match ac5_rebuild::round_of(Criterion::Ac6, obs) {
        Ok(r) => r,
        Err(v) => return v,
    };
    let after: Vec<Verdict> = match &obs.after_rebuild {
        Some(again) => vec![
            ac1_mesh::evaluate(exp, again),
            ac2_ssh::evaluate(exp, again),
            ac3_services::evaluate(exp, again),
        ],
        None => vec![ac5_rebuild::not_run(
            Criterion::Ac6,
            "not run: the fleet was not observed again after the rebuild".into(),
        )],
    };
    let mut f = Vec::new();
    ac5_rebuild::machine_findings(exp, r, &mut f);
    for m in exp.machines() {
        let (Some(b), Some(a)) = (
            r.before.get(m).and_then(|s| s.ok()),
            r.after.get(m).and_then(|s| s.ok()),
        ) else {
            continue;
        };
        let closure_changed = a.current != b.current;
        for (unit, live) in &a.units {
            // A restart is due when the unit's definition changed; without unit files to
            // compare, any change of the closure counts.
            let due = match (
                b.units.get(unit).and_then(|u| u.definition.as_ref()),
                &live.definition,
            ) {
                (Some(x), Some(y)) => x != y,
                _ => closure_changed,
            };
            match live.age {
                None => f.push(Finding::new(Severity::Fail, "coord.unit-down", m, unit.clone()).seen("not running after the rebuild").expected("running").cause(format!("{unit} did not come back after the switch: see `journalctl -u {unit}` on {m}"))),
                // Started before the switch (50 ms of clock slack): still the old settings.
                Some(age) if due && age > a.now - a.switched + 0.05 => f.push(
                    Finding::new(Severity::Fail, "coord.not-restarted", m, format!("{unit} live state"))
                        .seen(format!("running for {age:.1}s, since before the switch {:.1}s ago, although its definition changed", a.now - a.switched))
                        .expected("started after the switch to the new generation")
                        .cause(format!("{unit} still runs with the settings from before the rebuild (clan machines update does not restart services when only settings or vars change): `systemctl restart {unit}` on {m}")),
                ),
                Some(age) => f.push(Finding::new(Severity::Pass, "coord.live", m, format!("{unit} live state")).seen(format!("running for {age:.1}s{}", if due { ", started after the switch" } else { ", its definition did not change" })).expected("running the current settings")),
            }
        }
    }
    for v in &after {
        for x in &v.findings {
            let mut x = x.clone();
            x.subject = format!("after rebuild, {}: {}", v.criterion, x.subject);
            f.push(x);
        }
    }
    let notes = obs
        .after_rebuild
        .as_ref()
        .and_then(|a| a.settled)
        .map(|s| s.note())
        .into_iter()
        .collect();
    Verdict::new(Criterion::Ac6, f, notes)
}
