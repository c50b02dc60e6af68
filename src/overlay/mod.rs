//! One home for what the harness knows of each overlay: the commands its status probe runs, its
//! systemd unit, a machine's expected address from the clan repo's vars, how its status is read,
//! what AC1 judges per node, and how a path between two machines is described. Observe, the
//! checks, the monitor and the rebuild probe all ask here.
//!
//! Adding an overlay kind: a file here beside `zerotier.rs` (its commands, status type, expected
//! address and node findings), its parser in `src/probe/`, a variant of `config::OverlayKind`,
//! and one arm per `match` below.

pub mod yggdrasil;
pub mod zerotier;

use std::net::Ipv6Addr;

use serde::Serialize;

pub use crate::config::OverlayKind;
use crate::expectations::Expectations;
use crate::observe::Observations;
use crate::probe::systemd::UnitState;
use crate::seen::Seen;
use crate::transport::{Cmd, Output};
use crate::verdict::Finding;

/// What the overlay's daemon reported on one machine.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum OverlayStatus {
    /// `zerotier-cli -j info`, `listnetworks`, `peers`.
    Zerotier(Box<zerotier::Status>),
    /// `yggdrasilctl -json getSelf`, `getPeers`.
    Yggdrasil(yggdrasil::Status),
}

impl OverlayStatus {
    /// The ZeroTier readings, on a ZeroTier fleet.
    pub fn zerotier(&self) -> Option<&zerotier::Status> {
        match self {
            OverlayStatus::Zerotier(z) => Some(z),
            OverlayStatus::Yggdrasil(_) => None,
        }
    }
    /// The yggdrasil readings, on a yggdrasil fleet.
    pub fn yggdrasil(&self) -> Option<&yggdrasil::Status> {
        match self {
            OverlayStatus::Yggdrasil(y) => Some(y),
            OverlayStatus::Zerotier(_) => None,
        }
    }
}

impl OverlayKind {
    /// The clan-core service module whose instances run this overlay.
    pub fn module(self) -> &'static str {
        match self {
            OverlayKind::Zerotier => "zerotier",
            OverlayKind::Yggdrasil => "yggdrasil",
        }
    }

    /// The overlay daemon's unit, as NixOS names it.
    pub fn unit(self) -> &'static str {
        match self {
            OverlayKind::Zerotier => zerotier::UNIT,
            OverlayKind::Yggdrasil => yggdrasil::UNIT,
        }
    }

    /// The status probe's commands, in the order [`OverlayKind::read_status`] takes them.
    pub fn status_cmds(self) -> Vec<Cmd> {
        match self {
            OverlayKind::Zerotier => zerotier::status_cmds(),
            OverlayKind::Yggdrasil => yggdrasil::status_cmds(),
        }
    }

    /// Reads the answers to [`OverlayKind::status_cmds`], in order.
    pub fn read_status(self, answers: Vec<(Cmd, Result<Output, String>)>) -> OverlayStatus {
        match self {
            OverlayKind::Zerotier => {
                OverlayStatus::Zerotier(Box::new(zerotier::read_status(answers)))
            }
            OverlayKind::Yggdrasil => OverlayStatus::Yggdrasil(yggdrasil::read_status(answers)),
        }
    }

    /// The monitor's one status command per round (the first status command).
    pub fn monitor_cmd(self) -> Cmd {
        self.status_cmds()
            .into_iter()
            .next()
            .unwrap_or_else(|| Cmd::new("true"))
    }

    /// The monitor's reading of that command: `ok`, or what is wrong.
    pub fn monitor_status(self, out: &Output) -> String {
        let r = match self {
            OverlayKind::Zerotier => zerotier::monitor_status(out),
            OverlayKind::Yggdrasil => yggdrasil::monitor_status(out),
        };
        match r {
            Ok(()) => "ok".into(),
            Err(e) => e,
        }
    }
}

/// A machine's expected overlay address from the clan repo's vars (machines.toml may override it:
/// see [`Expectations::overlay_address`]).
pub fn expected_address(exp: &Expectations, machine: &str) -> Option<Ipv6Addr> {
    if let Some(a) = exp.config.machine(machine).and_then(|m| m.overlay_address) {
        return Some(a);
    }
    match exp.config.overlay {
        OverlayKind::Zerotier => zerotier::expected_address(exp, machine),
        OverlayKind::Yggdrasil => yggdrasil::expected_address(exp, machine),
    }
}

/// AC1's per-node findings for one machine: the daemon answers, runs the identity the vars name,
/// has joined and peers as it should. `obs` is the rest of the run, so that a cause does not
/// contradict what else was seen (a node that reports offline while its pings passed).
pub fn node_findings(
    exp: &Expectations,
    obs: &Observations,
    machine: &str,
    status: &OverlayStatus,
    units: &Seen<std::collections::BTreeMap<String, UnitState>>,
    f: &mut Vec<Finding>,
) {
    match status {
        OverlayStatus::Zerotier(z) => zerotier::node_findings(exp, obs, machine, z, units, f),
        OverlayStatus::Yggdrasil(y) => yggdrasil::node_findings(exp, obs, machine, y, f),
    }
}

/// What the overlay daemon on a machine itself reports of its side being up, in words (for a
/// cause that must not blame what the daemon shows working), if it reports so.
pub fn self_report(status: &OverlayStatus) -> Option<String> {
    match status {
        OverlayStatus::Zerotier(z) => zerotier::self_report(z),
        OverlayStatus::Yggdrasil(y) => {
            y.me.ok()
                .map(|me| format!("yggdrasilctl reports its address {}", me.address))
        }
    }
}

/// The overlay addresses a machine's daemon reports it holds, if it reported them.
pub fn held_addresses(status: &OverlayStatus) -> Option<Vec<Ipv6Addr>> {
    match status {
        OverlayStatus::Zerotier(z) => z.networks.ok().map(|nets| {
            nets.iter()
                .flat_map(|n| n.assigned.iter())
                .filter_map(|(a, _)| match a {
                    std::net::IpAddr::V6(v6) => Some(*v6),
                    std::net::IpAddr::V4(_) => None,
                })
                .collect()
        }),
        OverlayStatus::Yggdrasil(y) => y.me.ok().map(|me| vec![me.address]),
    }
}

/// AC6: the members still holding other network settings than the overlay's controller serves
/// (ZeroTier: fetched about every 60 s, nothing pushed). Yggdrasil has no served settings.
pub fn settings_pending(exp: &Expectations, obs: &Observations) -> Vec<String> {
    match exp.config.overlay {
        OverlayKind::Zerotier => zerotier::settings::pending(exp, obs),
        OverlayKind::Yggdrasil => Vec::new(),
    }
}

/// AC6: per member, the network settings it holds against what the controller serves.
pub fn settings_findings(exp: &Expectations, obs: &Observations, when: &str) -> Vec<Finding> {
    match exp.config.overlay {
        OverlayKind::Zerotier => zerotier::settings::findings(exp, obs, when),
        OverlayKind::Yggdrasil => Vec::new(),
    }
}

impl OverlayKind {
    /// How long AC6 waits, once the mesh has formed again, for the members to fetch a changed
    /// network setting from the controller.
    pub fn arrival_wait(self) -> std::time::Duration {
        match self {
            OverlayKind::Zerotier => zerotier::settings::ARRIVAL_WAIT,
            OverlayKind::Yggdrasil => std::time::Duration::ZERO,
        }
    }
}

/// Machines `m` exchanged overlay pings with, without loss, both ways, in this run.
pub fn pinged_both_ways<'a>(obs: &'a Observations, m: &str) -> Vec<&'a str> {
    let clean = |a: &str, b: &str| {
        obs.mesh
            .get(&(a.to_string(), b.to_string()))
            .and_then(|s| s.ok())
            .and_then(|r| r.as_ref().ok())
            .is_some_and(|p| p.transmitted > 0 && p.received == p.transmitted)
    };
    obs.mesh
        .keys()
        .filter(|(a, b)| a == m && clean(a, b) && clean(b, a))
        .map(|(_, b)| b.as_str())
        .collect()
}

/// How the path from `a` to `b` runs, in words, to explain loss or slowness.
pub fn path_word(
    exp: &Expectations,
    a: Option<&OverlayStatus>,
    b: Option<&OverlayStatus>,
    to: &str,
) -> &'static str {
    match (a, b) {
        (Some(OverlayStatus::Zerotier(x)), y) => {
            zerotier::path_word(exp, x, y.and_then(OverlayStatus::zerotier), to)
        }
        (Some(OverlayStatus::Yggdrasil(x)), _) => yggdrasil::path_word(exp, x, to),
        (None, _) => "path unknown",
    }
}
