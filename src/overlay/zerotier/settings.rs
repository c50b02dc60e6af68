//! AC6 on ZeroTier: a zerotier instance setting changed in the clan repo reaches every member.
//! clan-core's controller role writes the instance's network settings into the controller's
//! network record (`controller.d/network/<nwid>.json`) before the daemon starts. ZeroTier pushes
//! nothing: each member fetches its network config from the controller on its own schedule
//! (`ZT_NETWORK_AUTOCONF_DELAY`, 60 s in 1.14.1; measured 57 s in the lab). So the change has
//! arrived when every member holds what the controller's record serves.

use std::time::Duration;

use crate::expectations::Expectations;
use crate::observe::Observations;
use crate::probe::zerotier::NetSettings;
use crate::probe::zerotier_ids::NetworkId;
use crate::verdict::{Finding, Severity};

/// How long AC6 waits, once the mesh has formed again, for the members to fetch the new config:
/// ZeroTier's 60 s request interval and a margin for a loaded controller.
pub const ARRIVAL_WAIT: Duration = Duration::from_secs(90);

/// One instance's network as its controller serves it, or why that could not be seen.
struct Served<'a> {
    instance: &'a str,
    controller: &'a str,
    nwid: NetworkId,
    settings: Result<NetSettings, String>,
    members: Vec<&'a str>,
}

fn served<'a>(exp: &'a Expectations, obs: &'a Observations) -> Vec<Served<'a>> {
    let in_fleet = exp.machines();
    let mut out = Vec::new();
    for (iname, inst) in exp.inventory.instances_of("zerotier") {
        let Some(controller) = inst
            .roles
            .get("controller")
            .and_then(|r| r.members.first())
            .filter(|c| in_fleet.contains(&c.as_str()))
        else {
            continue;
        };
        let Some(net) = exp.oracle.zerotier_network(iname) else {
            continue; // AC1 names the missing network id
        };
        let nwid = net.id.value;
        let members = super::fleet_members(inst, &in_fleet);
        let status = obs
            .status
            .get(controller.as_str())
            .and_then(|s| s.overlay.zerotier());
        let settings = match status.map(|z| &z.served) {
            None => Err(format!("the status of {controller} was not read")),
            Some(seen) => match &seen.value {
                Err(e) => Err(format!("its network records could not be read: {e}")),
                Ok(list) => list
                    .iter()
                    .find(|n| n.id == nwid)
                    .map(|n| n.settings)
                    .ok_or_else(|| format!("it holds no record of network {nwid}")),
            },
        };
        out.push(Served {
            instance: iname,
            controller,
            nwid,
            settings,
            members,
        });
    }
    out
}

/// What member `m` holds of network `nwid`: its settings, or why they are not there to compare.
fn held(obs: &Observations, m: &str, nwid: NetworkId) -> Result<NetSettings, String> {
    let z = obs
        .status
        .get(m)
        .and_then(|s| s.overlay.zerotier())
        .ok_or_else(|| format!("the status of {m} was not read"))?;
    let list = z
        .networks
        .value
        .as_ref()
        .map_err(|e| format!("`zerotier-cli -j listnetworks` failed: {e}"))?;
    let n = list
        .iter()
        .find(|n| n.id == nwid)
        .ok_or_else(|| format!("{m} has not joined network {nwid} (AC1 says why)"))?;
    if n.status != "OK" {
        return Err(format!(
            "network {nwid} is {} on {m} (AC1 says why)",
            n.status
        ));
    }
    n.settings.ok_or_else(|| {
        "listnetworks gave no settings (its text form; the JSON form has them)".into()
    })
}

/// The members still holding other settings than their controller serves: AC6 keeps observing
/// while any is left (bounded by [`ARRIVAL_WAIT`]). What cannot be compared is not waited for.
pub fn pending(exp: &Expectations, obs: &Observations) -> Vec<String> {
    let mut out = Vec::new();
    for s in served(exp, obs) {
        let Ok(want) = s.settings else { continue };
        for m in &s.members {
            if held(obs, m, s.nwid).is_ok_and(|h| h != want) {
                out.push((*m).to_string());
            }
        }
    }
    out
}

/// AC6's findings: per member, the network settings it holds against what its controller serves.
/// `when`: when AC6 stopped waiting, in words.
pub fn findings(exp: &Expectations, obs: &Observations, when: &str) -> Vec<Finding> {
    let mut f = Vec::new();
    for s in served(exp, obs) {
        let subject = format!("network {} settings", s.instance);
        let want = match s.settings {
            Ok(w) => w,
            Err(why) => {
                f.push(Finding::unchecked(
                    "zt.settings",
                    s.controller,
                    format!("{subject} served"),
                    format!("what the controller serves is unknown: {why}"),
                ));
                continue;
            }
        };
        let expected = format!("{want} (what {} serves on {})", s.controller, s.nwid);
        for m in &s.members {
            match held(obs, m, s.nwid) {
                Err(why) => f.push(Finding::unchecked("zt.settings", m, &subject, why)),
                Ok(h) if h == want => f.push(
                    Finding::new(Severity::Pass, "zt.settings", m, &subject)
                        .seen(h.to_string())
                        .expected(&expected),
                ),
                Ok(h) => {
                    let reached = super::super::pinged_both_ways(obs, m).contains(&s.controller);
                    let path = if *m == s.controller {
                        format!("{m} is the controller itself: its own member runs the old config although the record changed, so the daemon has not re-read the record (not restarted after the change: `systemctl restart zerotierone.service` on {m})")
                    } else if reached {
                        format!("{m} and {c} exchange overlay pings in this run, so its config requests can reach {c}: if it persists past a minute, see `journalctl -u zerotierone.service` on {c}", c = s.controller)
                    } else {
                        format!("{m} and {c} exchanged no overlay pings in this run: its config requests do not reach the controller (AC1 says why)", c = s.controller)
                    };
                    f.push(
                        Finding::new(Severity::Fail, "zt.settings-not-arrived", m, &subject)
                            .seen(h.to_string())
                            .expected(&expected)
                            .cause(format!(
                                "{m} still holds the network config from before the change: ZeroTier members fetch it from the controller about every 60 s (nothing is pushed), and it had not arrived {when}; {path}"
                            )),
                    );
                }
            }
        }
    }
    f
}
