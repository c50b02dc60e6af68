//! Yggdrasil, as clan-core's `yggdrasil` service runs it (and the lab): `yggdrasil.service`, the
//! address and public key in each machine's vars, peerings over the underlay.

use std::net::Ipv6Addr;

use serde::Serialize;

use crate::expectations::Expectations;
use crate::observe::Observations;
use crate::probe::yggdrasil::{parse_peers, parse_self, PeerInfo, SelfInfo};
use crate::seen::Seen;
use crate::transport::{Cmd, Output};
use crate::verdict::{probe_failed, Finding, Severity};

/// The daemon's unit on NixOS.
pub const UNIT: &str = "yggdrasil.service";

/// What `yggdrasilctl -json` reported on one machine.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// `yggdrasilctl -json getSelf`.
    pub me: Seen<SelfInfo>,
    /// `yggdrasilctl -json getPeers`.
    pub peers: Seen<Vec<PeerInfo>>,
}

/// `getSelf`, `getPeers`.
pub fn status_cmds() -> Vec<Cmd> {
    ["getSelf", "getPeers"]
        .into_iter()
        .map(|what| Cmd::new("yggdrasilctl").args(["-json", what]))
        .collect()
}

/// Reads the answers to [`status_cmds`].
pub fn read_status(answers: Vec<(Cmd, Result<Output, String>)>) -> Status {
    let mut it = answers.into_iter();
    let mut next = || {
        it.next()
            .unwrap_or_else(|| (Cmd::new("yggdrasilctl"), Err("not run".to_string())))
    };
    let pe = |e: crate::probe::ProbeError| e.to_string();
    let (c, r) = next();
    let me = Seen::of(&c, r, |o| parse_self(&o.combined()).map_err(pe));
    let (c, r) = next();
    let peers = Seen::of(&c, r, |o| parse_peers(&o.combined()).map_err(pe));
    Status { me, peers }
}

/// The monitor's reading of `getSelf`.
pub fn monitor_status(out: &Output) -> Result<(), String> {
    parse_self(&out.combined())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The address in the machine's `yggdrasil/address` var.
pub fn expected_address(exp: &Expectations, machine: &str) -> Option<Ipv6Addr> {
    exp.oracle
        .machines
        .get(machine)
        .and_then(|m| m.yggdrasil_ip.as_ref())
        .map(|s| s.value)
}

/// AC1 for one machine: the daemon answers, runs the identity the vars name (address and key),
/// and holds at least one underlay peering.
pub fn node_findings(
    exp: &Expectations,
    obs: &Observations,
    m: &str,
    st: &Status,
    f: &mut Vec<Finding>,
) {
    let vars = exp.oracle.machines.get(m);
    let want_ip = vars.and_then(|v| v.yggdrasil_ip.as_ref());
    let want_key = vars.and_then(|v| v.yggdrasil_key.as_ref());
    let me = &st.me;
    match me.ok() {
        None => f.push(probe_failed(
            m,
            "yggdrasil daemon",
            me,
            "yggdrasilctl answers getSelf",
        )),
        Some(s) => match want_ip {
            None => f.push(Finding::new(Severity::Fail, "oracle.missing", m, "expected yggdrasil address").seen("no yggdrasil/address var for this machine").expected(format!("vars/per-machine/{m}/yggdrasil/address/value")).cause("vars not generated for this machine: run `clan vars generate`")),
            Some(w) if w.value != s.address => f.push(Finding::new(Severity::Fail, "ygg.address-mismatch", m, "running yggdrasil identity").evidence(me).seen(format!("address {} (key {})", s.address, s.key)).expected(format!("address {} from {}", w.value, w.path.display())).cause("the daemon runs another private key than the vars name: new vars deployed but yggdrasil.service not restarted, or the key was regenerated on the machine")),
            Some(w) => {
                f.push(Finding::new(Severity::Pass, "ygg.address", m, "running yggdrasil identity").seen(s.address.to_string()).expected(w.value.to_string()));
                if let Some(k) = want_key.filter(|k| k.value != s.key) {
                    f.push(Finding::new(Severity::Fail, "ygg.key-mismatch", m, "yggdrasil public key").evidence(me).seen(s.key.clone()).expected(format!("{} from {}", k.value, k.path.display())).cause("the publicKey var does not belong to the address var: vars edited by hand or half regenerated"));
                }
            }
        },
    }
    let peers = &st.peers;
    match peers.ok() {
        None => f.push(probe_failed(
            m,
            "yggdrasil peers",
            peers,
            "yggdrasilctl answers getPeers",
        )),
        Some(list) if list.is_empty() => f.push(
            Finding::new(Severity::Fail, "ygg.no-peers", m, "yggdrasil peerings")
                .evidence(peers)
                .seen("no connected peer")
                .expected("at least one peering over the underlay")
                .cause(no_peers_cause(obs, m)),
        ),
        Some(list) => f.push(
            Finding::new(Severity::Pass, "ygg.peers", m, "yggdrasil peerings")
                .seen(
                    list.iter()
                        .map(|p| p.remote.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                )
                .expected("at least one peering"),
        ),
    }
}

/// Why getPeers lists no peering; traffic seen in the same run rules out a dead overlay.
fn no_peers_cause(obs: &Observations, m: &str) -> String {
    let reached = super::pinged_both_ways(obs, m);
    if reached.is_empty() {
        "the daemon reaches none of its configured peers: underlay link down, the peers' daemons down, or wrong Peers/listen ports".to_string()
    } else {
        format!("getPeers lists no peering although overlay pings with {} passed in this run: the peerings were down when getPeers ran (a flapping underlay link); re-run, and if it stays, check Peers/listen ports", reached.join(", "))
    }
}

/// Whether `a` peers with `to` directly, to explain loss or slowness.
pub fn path_word(exp: &Expectations, a: &Status, to: &str) -> &'static str {
    let Some(peers) = a.peers.ok() else {
        return "path unknown";
    };
    let to_ip = super::expected_address(exp, to);
    if peers.iter().any(|p| Some(p.address) == to_ip) {
        "direct yggdrasil peering: the delay is on the underlay link between them"
    } else {
        "routed through other yggdrasil nodes (no direct peering)"
    }
}
