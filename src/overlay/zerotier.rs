//! ZeroTier, as clan-core's `zerotier` service runs it: `zerotierone.service`, one network per
//! instance whose controller role names the controller, addresses by clan's rfc4193 formula.

pub mod settings;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

use serde::Serialize;

use crate::expectations::Expectations;
use crate::observe::Observations;
use crate::oracle::zerotier::split_rfc4193;
use crate::probe::systemd::UnitState;
use crate::probe::zerotier::{
    parse_info, parse_listnetworks, parse_member_files, parse_network_files, parse_peers,
    ControllerMember, Info, Network, NodeStatus, PathClass, Peer, ServedNetwork,
    MEMBER_FILES_SCRIPT, NETWORK_FILES_SCRIPT, ROOT_SILENT_MS,
};
use crate::seen::Seen;
use crate::transport::{Cmd, Output};
use crate::verdict::{probe_failed, Finding, Severity};

/// The daemon's unit on NixOS.
pub const UNIT: &str = "zerotierone.service";

/// What `zerotier-cli -j` reported on one machine.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// `zerotier-cli -j info`.
    pub info: Seen<Info>,
    /// `zerotier-cli -j listnetworks`.
    pub networks: Seen<Vec<Network>>,
    /// `zerotier-cli -j peers`.
    pub peers: Seen<Vec<Peer>>,
    /// The controller's member records (empty on a machine that is no controller).
    pub members: Seen<Vec<ControllerMember>>,
    /// The networks the controller serves, from its records (empty on a machine that is no
    /// controller; a cassette recorded before the harness read them has no answer: UNCHECKED).
    pub served: Seen<Vec<ServedNetwork>>,
}

/// `info`, `listnetworks`, `peers`, and the controller's member records.
pub fn status_cmds() -> Vec<Cmd> {
    let mut cmds: Vec<Cmd> = ["info", "listnetworks", "peers"]
        .into_iter()
        .map(|what| Cmd::new("zerotier-cli").args(["-j", what]))
        .collect();
    cmds.push(Cmd::sh(MEMBER_FILES_SCRIPT));
    cmds.push(Cmd::sh(NETWORK_FILES_SCRIPT));
    cmds
}

/// Reads the answers to [`status_cmds`].
pub fn read_status(answers: Vec<(Cmd, Result<Output, String>)>) -> Status {
    let mut it = answers.into_iter();
    let mut next = || {
        it.next()
            .unwrap_or_else(|| (Cmd::new("zerotier-cli"), Err("not run".to_string())))
    };
    let pe = |e: crate::probe::ProbeError| e.to_string();
    let (c, r) = next();
    let info = Seen::of(&c, r, |o| parse_info(&o.combined()).map_err(pe));
    let (c, r) = next();
    let networks = Seen::of(&c, r, |o| parse_listnetworks(&o.combined()).map_err(pe));
    let (c, r) = next();
    let peers = Seen::of(&c, r, |o| parse_peers(&o.combined()).map_err(pe));
    let (c, r) = next();
    let members = Seen::of(&c, r, |o| parse_member_files(&o.stdout).map_err(pe));
    let (c, r) = next();
    let served = Seen::of(&c, r, |o| parse_network_files(&o.stdout).map_err(pe));
    Status {
        info,
        networks,
        peers,
        members,
        served,
    }
}

/// The monitor's reading of `info`.
pub fn monitor_status(out: &Output) -> Result<(), String> {
    let i = parse_info(&out.combined()).map_err(|e| e.to_string())?;
    if i.status == NodeStatus::Offline {
        Err(format!("node {} offline", i.address))
    } else {
        Ok(())
    }
}

/// The zerotier instance `machine` is a member of (any role).
fn instance_of(exp: &Expectations, machine: &str) -> Option<String> {
    exp.inventory
        .instances_of("zerotier")
        .find(|(_, i)| {
            i.roles
                .values()
                .any(|r| r.members.iter().any(|m| m == machine))
        })
        .map(|(n, _)| n.clone())
}

/// The rfc4193 address the vars give `machine` on its instance's network.
pub fn expected_address(exp: &Expectations, machine: &str) -> Option<Ipv6Addr> {
    let instance = instance_of(exp, machine).unwrap_or_default();
    exp.oracle.zerotier_ip(machine, &instance).map(|s| s.value)
}

/// The code and cause of a network status other than OK. The cause leaves out what the run
/// refutes: a controller seen online and pinging the member is not "down".
fn status_cause(status: &str, controller: &str, facts: &ControllerFacts) -> (&'static str, String) {
    match status {
        "ACCESS_DENIED" => ("zt.access-denied", format!("ACCESS_DENIED: the controller has not authorised this member; redeploy the controller (`clan machines update {controller}`) so its auto-accept unit admits the member's IP")),
        "REQUESTING_CONFIGURATION" => {
            let cause = match (&facts.node, facts.pinged) {
                (Some(node), true) if node == "ONLINE" => format!("REQUESTING_CONFIGURATION although the controller {controller} is ONLINE and answers this member's overlay pings in this run: it does not serve this network (controller state lost or the network deleted on it), or this member's clock is far off"),
                (Some(node), _) if node != "ONLINE" => format!("REQUESTING_CONFIGURATION: the controller {controller} reports its own node {node} in this run, so it cannot hand out the network config"),
                (None, _) => format!("REQUESTING_CONFIGURATION: the controller {controller} does not answer; its own status could not be read in this run either (down or unreachable)"),
                _ => format!("REQUESTING_CONFIGURATION: the controller {controller} does not answer this member (UDP 9993 between them blocked, the controller's network state lost, or clock skew)"),
            };
            ("zt.requesting-configuration", cause)
        }
        "NOT_FOUND" => ("zt.not-found", "NOT_FOUND: the controller does not know this network id (controller vars regenerated? the network was recreated)".to_string()),
        "PORT_ERROR" => ("zt.port-error", "PORT_ERROR: the zt tap device could not be created (TUN missing or permissions)".to_string()),
        _ => ("zt.status", format!("network status {status}")),
    }
}

/// What the run saw of an instance's controller, for a member's cause.
struct ControllerFacts {
    /// Its node status (`ONLINE`, ...), if its `info` was read.
    node: Option<String>,
    /// The member and the controller pinged each other without loss.
    pinged: bool,
}

impl ControllerFacts {
    fn of(obs: &Observations, controller: &str, member: &str) -> ControllerFacts {
        let node = obs
            .status
            .get(controller)
            .and_then(|s| s.overlay.zerotier())
            .and_then(|z| z.info.ok())
            .map(|i| status_word(i).to_string());
        let pinged = super::pinged_both_ways(obs, member).contains(&controller);
        ControllerFacts { node, pinged }
    }
}

fn status_word(i: &Info) -> &'static str {
    match i.status {
        NodeStatus::Online => "ONLINE",
        NodeStatus::Offline => "OFFLINE",
        NodeStatus::Tunneled => "TUNNELED",
    }
}

/// What `zerotier-cli` itself reports of the node being up: networks OK with their addresses.
pub fn self_report(st: &Status) -> Option<String> {
    let list = st.networks.ok()?;
    let ok: Vec<String> = list
        .iter()
        .filter(|n| n.status == "OK")
        .map(|n| {
            let addrs: Vec<String> = n.assigned.iter().map(|(a, _)| a.to_string()).collect();
            format!("{} OK with {}", n.id, addrs.join(", "))
        })
        .collect();
    (!ok.is_empty()).then(|| format!("zerotier-cli reports network {}", ok.join("; ")))
}

/// Why `a` and `b` cannot talk when a controller's records say one of them is not authorised:
/// a revoked membership stops traffic at once, while the member's own `listnetworks` keeps
/// saying OK for about 45 s (measured on ZeroTier 1.14.1). None when no controller said so.
pub fn revoked_membership(obs: &Observations, a: &str, b: &str) -> Option<String> {
    let node = |m: &str| {
        obs.status
            .get(m)
            .and_then(|s| s.overlay.zerotier())
            .and_then(|z| z.info.ok())
            .map(|i| i.address)
    };
    for (c, st) in &obs.status {
        let Some(members) = st.overlay.zerotier().and_then(|z| z.members.ok()) else {
            continue;
        };
        for m in [a, b] {
            let Some(id) = node(m) else { continue };
            if let Some(rec) = members.iter().find(|r| r.id == id && !r.authorized) {
                return Some(format!(
                    "the controller {c} holds {m}'s membership of network {} (node {id}) as not authorised: it was deauthorised, so traffic between {a} and {b} stops at once, while {m}'s own `zerotier-cli listnetworks` keeps saying OK for about 45 s; authorise it again on {c} (`zerotier-members allow {id}`, or restart the instance's zerotier-autoaccept unit)",
                    rec.network
                ));
            }
        }
    }
    None
}

/// The machines of an instance (any role) that are in the fleet, sorted, each once.
pub(crate) fn fleet_members<'a>(
    inst: &'a crate::inventory::ResolvedInstance,
    in_fleet: &[&str],
) -> Vec<&'a str> {
    let mut members: Vec<&str> = inst
        .roles
        .values()
        .flat_map(|r| r.members.iter().map(String::as_str))
        .filter(|x| in_fleet.contains(x))
        .collect();
    members.sort();
    members.dedup();
    members
}

/// AC1's finding on the node's own status: ONLINE passes, TUNNELED warns (UDP blocked, the
/// relay carries it), and `"online": false` fails even with the TCP fallback active.
fn node_status(exp: &Expectations, obs: &Observations, m: &str, st: &Status, i: &Info) -> Finding {
    let info = &st.info;
    let base = |sev, code| {
        Finding::new(sev, code, m, "ZeroTier node status")
            .evidence(info)
            .expected("ONLINE")
    };
    match i.status {
        NodeStatus::Online => match silent_roots(st) {
            Some(roots) => root_silent(exp, obs, m, st, &roots),
            None => Finding::new(Severity::Pass, "zt.online", m, "ZeroTier node online")
                .evidence(info)
                .seen("ONLINE")
                .expected("ONLINE"),
        },
        NodeStatus::Tunneled => base(Severity::Warn, "zt.tunneled")
            .seen("TUNNELED (online, tcpFallbackActive true)")
            .cause(
                "UDP is blocked: traffic goes through the TCP fallback relay, expect high latency",
            ),
        NodeStatus::Offline => {
            let reached = super::pinged_both_ways(obs, m);
            let seen = if i.tcp_fallback {
                "OFFLINE (\"online\": false, \"tcpFallbackActive\": true)"
            } else {
                "OFFLINE (\"online\": false)"
            };
            let roots = if i.tcp_fallback {
                "the node reaches no ZeroTier root even through the TCP fallback relay: UDP 9993 is blocked and the relay (TCP 443) does not get through either"
            } else {
                "the node reaches no ZeroTier root"
            };
            let cause = match (reached.is_empty(), i.tcp_fallback) {
                (true, false) => format!("{roots}: outbound UDP 9993 blocked, or the host has no network"),
                (true, true) => roots.to_string(),
                (false, _) => format!("{roots}; its overlay pings with {} passed in this run, so the host has network and paths already open still carry traffic, but no new peer is found and its network config cannot refresh (outbound UDP 9993 to the roots blocked?)", reached.join(", ")),
            };
            base(Severity::Fail, "zt.offline").seen(seen).cause(cause)
        }
    }
}

/// AC1 for one machine: the node is online and runs the identity its vars name; per zerotier
/// instance it is a member of, the network is joined with status OK and the computed address; on
/// the instance's controller, the auto-accept unit ran.
pub fn node_findings(
    exp: &Expectations,
    obs: &Observations,
    m: &str,
    st: &Status,
    units: &Seen<BTreeMap<String, UnitState>>,
    f: &mut Vec<Finding>,
) {
    let in_fleet = exp.machines();
    let mut info_checked = false;
    for (iname, inst) in exp.inventory.instances_of("zerotier") {
        let controllers: Vec<&String> = inst
            .roles
            .get("controller")
            .map(|r| r.members.iter().collect())
            .unwrap_or_default();
        let controller = controllers.first().map_or("the controller", |c| c.as_str());
        let members = fleet_members(inst, &in_fleet);
        if !members.contains(&m) {
            continue;
        }
        let Some(net) = exp.oracle.zerotier_network(iname) else {
            // Said once per instance: by its controller, else by its first member.
            let speaker = if controllers.is_empty() {
                members.first().copied()
            } else {
                controllers.first().map(|c| c.as_str())
            };
            if speaker == Some(m) {
                f.push(Finding::new(Severity::Fail, "oracle.missing", controller, format!("network id of instance {iname}")).seen("no zerotier network id in the clan repo vars").expected("vars/shared/zerotier-network-<instance>/network-id or vars/per-machine/<controller>/zerotier/zerotier-network-id").cause("vars not generated: run `clan vars generate`"));
            }
            continue;
        };
        let nwid = net.id.value;
        let expected_ip = super::expected_address(exp, m);
        let expected_node = expected_ip.and_then(split_rfc4193).map(|(_, n)| n);
        let info = &st.info;
        if !info_checked {
            info_checked = true;
            match info.ok() {
                None => f.push(probe_failed(
                    m,
                    "ZeroTier daemon",
                    info,
                    "zerotier-cli answers with the node status",
                )),
                Some(i) => {
                    f.push(node_status(exp, obs, m, st, i));
                    if i.status == NodeStatus::Online && st.peers.ok().is_none() {
                        let why = st.peers.value.as_ref().err().cloned().unwrap_or_default();
                        f.push(Finding::new(Severity::Unchecked, "zt.roots-unseen", m, "whether its ZeroTier roots answer").evidence(&st.peers).seen(format!("`zerotier-cli -j peers` could not be read: {why}")).expected(format!("a root answering within {} s", ROOT_SILENT_MS / 1000)).cause("ZeroTier's own ONLINE holds for 500 s after its roots go quiet, so without `peers` whether they still answer is not judged"));
                    }
                    match expected_node {
                        Some(n) if n != i.address => f.push(Finding::new(Severity::Fail, "zt.node-id-mismatch", m, "running node id").evidence(info).seen(format!("daemon runs as node {}", i.address)).expected(format!("node {n} (from the vars address {})", expected_ip.map(|a| a.to_string()).unwrap_or_default())).cause("zerotierone runs with an old identity: new vars were deployed but the daemon was not restarted (clan machines update does not restart it); run `systemctl restart zerotierone.service`")),
                        Some(n) => f.push(Finding::new(Severity::Pass, "zt.node-id", m, "running node id").seen(i.address.to_string()).expected(n.to_string())),
                        None => f.push(Finding::new(Severity::Fail, "oracle.missing", m, "expected ZeroTier address").seen("no zerotier ip var for this machine").expected(format!("vars for instance {iname}")).cause("vars not generated for this machine: run `clan vars generate`")),
                    }
                }
            }
        }
        let nets = &st.networks;
        match nets.ok() {
            None => f.push(probe_failed(m, "ZeroTier networks", nets, &format!("network {nwid} listed"))),
            Some(list) => match list.iter().find(|n| n.id == nwid) {
                None => f.push(Finding::new(Severity::Fail, "zt.not-joined", m, format!("network {iname}")).evidence(nets).seen(format!("joined: [{}]", list.iter().map(|n| format!("{} {}", n.id, n.status)).collect::<Vec<_>>().join(", "))).expected(format!("network {nwid} with status OK")).cause("the machine has not joined the fleet's network: wrong network id in its config (recreated network?) or zerotierone not configured")),
                Some(n) if n.status != "OK" => {
                    let (code, cause) = status_cause(&n.status, controller, &ControllerFacts::of(obs, controller, m));
                    f.push(Finding::new(Severity::Fail, code, m, format!("network {iname} status")).evidence(nets).seen(format!("{} {}", n.id, n.status)).expected(format!("{nwid} OK")).cause(cause));
                }
                Some(n) => {
                    f.push(Finding::new(Severity::Pass, "zt.network-ok", m, format!("network {iname} status")).seen("OK").expected("OK"));
                    let assigned: Vec<Ipv6Addr> = n.assigned.iter().filter_map(|(a, _)| match a { IpAddr::V6(v) => Some(*v), _ => None }).collect();
                    match expected_ip {
                        Some(e) if assigned.contains(&e) => f.push(Finding::new(Severity::Pass, "zt.address", m, "assigned address").seen(e.to_string()).expected(e.to_string())),
                        Some(e) => {
                            let embedded = assigned.iter().filter_map(|a| split_rfc4193(*a)).map(|(nw, node)| format!("network {nw}, node {node}")).collect::<Vec<_>>().join("; ");
                            f.push(Finding::new(Severity::Fail, "zt.address-mismatch", m, "assigned address").evidence(nets).seen(format!("{:?} ({embedded})", assigned)).expected(format!("{e} (rfc4193 of {nwid} and the node id)")).cause(address_cause(&assigned, nwid, expected_node, controller)));
                        }
                        None => {}
                    }
                }
            },
        }
        if controllers.iter().any(|c| c.as_str() == m) {
            let unit = exp.oracle.autoaccept_unit(iname);
            match units.ok().and_then(|u| u.get(&unit)) {
                None => f.push(probe_failed(m, &format!("{unit} state"), units, "LoadState=loaded, Result=success")),
                Some(u) if !u.loaded() => f.push(Finding::new(Severity::Fail, "zt.autoaccept-missing", m, format!("controller unit {unit}")).evidence(units).seen(format!("LoadState={}", u.get("LoadState"))).expected("LoadState=loaded").cause(format!("{m} is the controller of {iname} in the inventory, but its deployed system has no {unit}: the deployed configuration predates this instance or comes from a clan-core era with another unit name; redeploy {m} (`clan machines update {m}`)"))),
                Some(u) if u.get("Result") != "success" || !matches!(u.get("ExecMainStatus"), "" | "0") => f.push(Finding::new(Severity::Fail, "zt.autoaccept-failed", m, format!("controller unit {unit}")).evidence(units).seen(format!("Result={} ExecMainStatus={}", u.get("Result"), u.get("ExecMainStatus"))).expected("Result=success, ExecMainStatus=0").cause("the auto-accept run failed: members may stay ACCESS_DENIED; see `journalctl -u` of the unit")),
                Some(_) => f.push(Finding::new(Severity::Pass, "zt.autoaccept", m, format!("controller unit {unit}")).seen("loaded, success").expected("loaded, success")),
            }
        }
    }
}

/// The node's roots (PLANET, MOON) when it lists some and every one is silent.
fn silent_roots(st: &Status) -> Option<Vec<&Peer>> {
    let roots: Vec<&Peer> = st
        .peers
        .ok()?
        .iter()
        .filter(|p| matches!(p.role.as_str(), "PLANET" | "MOON"))
        .collect();
    let silent =
        |p: &&Peer| p.path == PathClass::Silent && p.silent_ms.is_some_and(|l| l >= ROOT_SILENT_MS);
    (!roots.is_empty() && roots.iter().all(silent)).then_some(roots)
}

/// ONLINE by ZeroTier's word while no root answers: ZeroTier keeps `"online": true` for 500 s
/// (`ZT_PEER_ACTIVITY_TIMEOUT`) after the last packet from a root, so `peers` is the evidence.
fn root_silent(
    exp: &Expectations,
    obs: &Observations,
    m: &str,
    st: &Status,
    roots: &[&Peer],
) -> Finding {
    let secs = roots
        .iter()
        .filter_map(|p| p.silent_ms)
        .min()
        .unwrap_or(ROOT_SILENT_MS)
        / 1000;
    let machine_of = |p: &Peer| {
        exp.machines().into_iter().find(|o| {
            expected_address(exp, o)
                .and_then(split_rfc4193)
                .map(|(_, n)| n)
                == Some(p.address)
        })
    };
    let names: Vec<String> = roots
        .iter()
        .map(|p| match machine_of(p) {
            Some(o) => format!("{} ({o}, {})", p.address, p.role),
            None => format!("{} ({})", p.address, p.role),
        })
        .collect();
    // A root that is a fleet machine: what this run saw of its daemon.
    let fleet_root = roots.iter().find_map(|p| machine_of(p));
    let why = match fleet_root {
        Some(r) => match obs.status.get(r).and_then(|s| s.overlay.zerotier()).map(|z| &z.info) {
            Some(seen) if seen.ok().is_none() => format!(
                "its root is {r}, whose ZeroTier status could not be read in this run ({}): its daemon is down or unreachable",
                crate::probe::excerpt(&seen.excerpt, 100)
            ),
            _ => format!("its root is {r}: UDP 9993 between them is blocked, or {r}'s daemon stopped answering"),
        },
        None => "the root's daemon is down, or UDP 9993 to it is blocked".to_string(),
    };
    let reached = super::pinged_both_ways(obs, m);
    let after = if reached.is_empty() {
        "; no new peer is found and the network config cannot refresh".to_string()
    } else {
        format!(", so paths already open still carry traffic (its pings with {} passed in this run), but no new peer is found and the network config cannot refresh", reached.join(", "))
    };
    Finding::new(Severity::Fail, "zt.root-silent", m, "ZeroTier node status")
        .evidence(&st.peers)
        .seen(format!(
            "ONLINE by its own word, but its root {} answered nothing for {secs} s while it kept sending (`peers`: its lastReceive {secs} s behind the node's latest send)",
            names.join(", ")
        ))
        .expected(format!("ONLINE, with a root answering within {} s (a node contacts a root it has a path to every 224 s)", ROOT_SILENT_MS / 1000))
        .cause(format!(
            "{why}; ZeroTier keeps saying online for 500 s after the last packet from its roots{after}"
        ))
}

/// Why the assigned address is not the vars': read from the parts the address embeds.
fn address_cause(
    assigned: &[Ipv6Addr],
    nwid: crate::probe::zerotier_ids::NetworkId,
    node: Option<crate::probe::zerotier_ids::NodeId>,
    controller: &str,
) -> String {
    let parts: Vec<_> = assigned.iter().filter_map(|a| split_rfc4193(*a)).collect();
    if let Some((nw, _)) = parts.iter().find(|(nw, n)| *nw != nwid && Some(*n) == node) {
        format!("the assigned address embeds network {nw}, not {nwid} that the node is joined to (its node id is right): the controller {controller} hands out another network's range (a recreated network's stale state); redeploy the controller and have the member rejoin")
    } else if let Some((_, n)) = parts.iter().find(|(nw, n)| *nw == nwid && Some(*n) != node) {
        format!("the assigned address embeds node {n}, not the node id the vars name: the vars were regenerated after the controller admitted the member, or the member runs an old identity")
    } else if parts.is_empty() {
        "no assigned address is an rfc4193 address of a ZeroTier network: the controller assigns from a manual pool instead of clan's rfc4193 scheme".to_string()
    } else {
        "the address the controller assigned is not the one the vars name".to_string()
    }
}

/// The path class `peers` reports from `a` to `to`, and whether either end tunnels.
pub fn path_word(exp: &Expectations, a: &Status, b: Option<&Status>, to: &str) -> &'static str {
    let path = a.peers.ok().and_then(|peers| {
        let node = super::expected_address(exp, to)
            .and_then(split_rfc4193)
            .map(|(_, n)| n)?;
        peers.iter().find(|p| p.address == node).map(|p| p.path)
    });
    let tunnels = |s: Option<&Status>| {
        s.and_then(|s| s.info.ok())
            .is_some_and(|i| i.status == NodeStatus::Tunneled)
    };
    match (path, tunnels(Some(a)) || tunnels(b)) {
        (Some(PathClass::Tunneled), _) | (_, true) => {
            "tunneled through the TCP fallback relay (UDP blocked)"
        }
        (Some(PathClass::Relay), _) => {
            "relayed through a ZeroTier root (no direct UDP path: NAT or firewall)"
        }
        (Some(PathClass::Direct), _) => "direct UDP path",
        (Some(PathClass::Silent), _) => {
            "a UDP path ZeroTier still lists as active, but nothing came back on it for over 19 s while it kept sending (the far end's daemon or link is down)"
        }
        (None, _) => "path unknown",
    }
}
