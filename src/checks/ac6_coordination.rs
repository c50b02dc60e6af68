//! AC6: a service-instance setting change propagates and the services still coordinate. After
//! the rebuild (as AC5 judges it), the watched daemons must be running since the switch — their
//! live state, not only their config: `clan machines update` does not restart services when only
//! vars or settings change — and the mesh (AC1), the SSH hops (AC2) and the role probes (AC3) are
//! observed afresh and must pass. On ZeroTier, every member must also hold the network settings
//! the controller now serves (the instance setting reached them: nothing is pushed).

use std::collections::BTreeMap;

use super::{ac1_mesh, ac2_ssh, ac3_services, ac5_rebuild, Finding, Severity, Verdict};
use crate::expectations::Expectations;
use crate::names::Criterion;
use crate::observe::Observations;
use crate::rebuild::RebuildRound;

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
                None => {
                    let cause = match b.units.get(unit).and_then(|u| u.age) {
                        Some(age) => format!("{unit} was running before the rebuild (for {age:.1}s) and did not come back after the switch: see `journalctl -u {unit}` on {m}"),
                        None => format!("{unit} was not running before the rebuild either, and the switch did not start it: see `journalctl -u {unit}` on {m}"),
                    };
                    f.push(Finding::new(Severity::Fail, "coord.unit-down", m, unit.clone()).seen("not running after the rebuild").expected("running").cause(cause))
                }
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
    let restarted = restarted_units(r);
    for v in &after {
        for x in &v.findings {
            let mut x = x.clone();
            x.subject = format!("after rebuild, {}: {}", v.criterion, x.subject);
            if x.severity == Severity::Fail {
                if let Some(cause) = after_cause(exp, &x, &restarted) {
                    x.cause = cause;
                }
            }
            f.push(x);
        }
    }
    if let Some(again) = &obs.after_rebuild {
        let when = again.settled.as_ref().map_or_else(
            || "at the observation after the rebuild".into(),
            |s| s.when(),
        );
        f.extend(crate::overlay::settings_findings(exp, again, &when));
    }
    let notes = obs
        .after_rebuild
        .as_ref()
        .and_then(|a| a.settled.as_ref())
        .map(|s| s.note())
        .into_iter()
        .collect();
    Verdict::new(Criterion::Ac6, f, notes)
}

/// Per machine, the overlay unit's live state right after the switch: how long it had run, and
/// whether it started after the switch (50 ms of clock slack). None: not running.
type Live = BTreeMap<String, Option<(f64, bool)>>;

fn restarted_units(r: &RebuildRound) -> BTreeMap<String, Live> {
    r.after
        .iter()
        .filter_map(|(m, s)| Some((m.clone(), s.ok()?)))
        .map(|(m, a)| {
            let since = a.now - a.switched + 0.05;
            let units = a
                .units
                .iter()
                .map(|(u, l)| (u.clone(), l.age.map(|age| (age, age <= since))))
                .collect();
            (m, units)
        })
        .collect()
}

/// A cause for a finding re-observed after the rebuild that the state probe right after the
/// switch contradicts or narrows: the overlay daemon restarted (so "not restarted" is ruled
/// out), running then and failed now, or the peers' daemons running.
fn after_cause(exp: &Expectations, x: &Finding, live: &BTreeMap<String, Live>) -> Option<String> {
    let unit = exp.config.overlay.unit();
    let m = x.machine.as_str();
    let state = |machine: &str| live.get(machine).and_then(|u| u.get(unit)).copied();
    match x.code {
        "ygg.address-mismatch" | "zt.node-id-mismatch" => match state(m)? {
            Some((age, true)) => Some(format!(
                "{unit} on {m} was restarted after the switch ({age:.1}s before the state probe) and still runs another identity than the vars name: the key deployed on {m} is not the one in the clan repo's vars (a stale deployed secret, or the key was regenerated on the machine)"
            )),
            _ => None,
        },
        "ygg.unit" | "zt.unit" => state(m)?.map(|(age, _)| format!(
            "{unit} was running on {m} right after the switch (for {age:.1}s at the state probe) and is not running at this later observation: it failed after the rebuild started it: see `journalctl -u {unit}` on {m}"
        )),
        "ygg.no-peers" => {
            let peers: Vec<&str> = live
                .iter()
                .filter(|(p, u)| p.as_str() != m && u.get(unit).is_some_and(|l| l.is_some()))
                .map(|(p, _)| p.as_str())
                .collect();
            (!peers.is_empty()).then(|| format!(
                "{m}'s daemon reaches none of its configured peers although {unit} was running on {} after the switch (the state probe): not the peers' daemons; the underlay link, or Peers/listen ports that no longer match after the change",
                peers.join(", ")
            ))
        }
        _ => None,
    }
}
