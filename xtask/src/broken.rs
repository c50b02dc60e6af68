//! The broken-fleet corpus, `tests/cassettes/broken/`: each cassette derives from a healthy
//! recording (the story fleet, recorded on the ZeroTier lab, or the yggdrasil lab's for the
//! yggdrasil and rebuild faults) with ONE fault and
//! names the criterion, finding code and machine it must fail on (tests/verdicts.rs asserts it).
//! Replacements are computed from the base cassette, so they still match after it is
//! re-recorded.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clan_coordination::transport::cassette::{
    AlsoFails, Cassette, Entry, Expectation, Replacement,
};
use regex::{NoExpand, Regex};
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::json::{self, object, Json, Result};

// A path, so that tests/generated.rs (which includes this file by path) finds it too.
#[path = "broken/ssh.rs"]
mod ssh;

/// The corpus directory, relative to the crate root.
pub const DIR: &str = "tests/cassettes/broken";

const H: &str = "hetzner-vm";
const G: &str = "gcp-vm";

/// One broken fleet: a single fault and the failure it must cause.
pub struct Fault {
    /// File name without `.json`.
    pub name: &'static str,
    /// What is broken.
    pub description: &'static str,
    /// The criterion that must fail.
    pub criterion: &'static str,
    /// The finding code it must show.
    pub code: &'static str,
    /// The machine that finding must name.
    pub machine: &'static str,
    /// The fault, as changes to the base cassette.
    pub replace: Vec<Replacement>,
    /// Further criteria the fault legitimately fails, each with its code.
    pub also: &'static [(&'static str, &'static str)],
}

/// A healthy cassette the faults are cut from.
struct Base {
    cassette: Cassette,
    /// The cassette's file (its `machines_file` is relative to it).
    path: PathBuf,
}

impl Base {
    fn load(path: &Path) -> Result<Base> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let cassette =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Base {
            cassette,
            path: path.to_path_buf(),
        })
    }

    /// `machine`'s address in the recording's machines.toml.
    fn address(&self, machine: &str) -> Result<String> {
        let file = self
            .cassette
            .machines_file
            .as_deref()
            .ok_or("no machines_file")?;
        let path = self.path.parent().unwrap_or(Path::new(".")).join(file);
        let cfg = clan_coordination::config::load(&path)?;
        let m = cfg
            .machine(machine)
            .ok_or_else(|| format!("{}: no machine {machine}", path.display()))?;
        Ok(m.address.to_string())
    }

    /// How many echoes `machine`'s ping asks for (its `-c`).
    fn ping_count(&self, machine: &str) -> Result<usize> {
        let cmd = &self.cmd(machine, "ping -6")?.command;
        let n = Regex::new(r" -c (\d+) ")?
            .captures(cmd)
            .ok_or_else(|| format!("{machine}: no -c in {cmd:?}"))?;
        Ok(n[1].parse()?)
    }

    /// Replacements making every recording of `machine`'s `peers -j` show every path to the peer
    /// of `role` (PLANET, LEAF) last heard `secs` before that recording's latest send on any
    /// path, as a link cut that long leaves it.
    fn silent_paths(&self, machine: &str, role: &str, secs: u64) -> Result<Vec<Pair>> {
        let mut pairs: Vec<Pair> = Vec::new();
        for e in self
            .entries(machine)?
            .iter()
            .filter(|e| e.command == "zerotier-cli -j peers")
        {
            let list = Json::parse(&e.output.stdout)?;
            let mut now = 0;
            let mut heard = BTreeSet::new();
            for p in list.items()? {
                let mine = p.get("role")?.str()? == role;
                for path in p.get("paths")?.items()? {
                    now = now.max(path.get("lastSend")?.f64()? as u64);
                    if mine {
                        heard.insert(path.get("lastReceive")?.f64()? as u64);
                    }
                }
            }
            let then = now.saturating_sub(secs * 1000);
            for t in heard {
                let from = format!("\"lastReceive\": {t},");
                // A value two recordings share keeps the first recording's silence.
                if !pairs.iter().any(|(f, _)| *f == from) {
                    pairs.push(pair(from, format!("\"lastReceive\": {then},")));
                }
            }
        }
        if pairs.is_empty() {
            return Err(format!("{machine}: no {role} path in the recorded peers").into());
        }
        Ok(pairs)
    }

    /// `machine`'s ping to `ip` losing every echo, as iputils prints it.
    fn loss(&self, machine: &str, ip: &str) -> Result<String> {
        let n = self.ping_count(machine)?;
        let cmd = &self.cmd(machine, "ping -6")?.command;
        let interval: f64 = Regex::new(r" -i ([\d.]+) ")?
            .captures(cmd)
            .ok_or_else(|| format!("{machine}: no -i in {cmd:?}"))?[1]
            .parse()?;
        // iputils' total: the intervals between the echoes, and a little (816 ms for 5 at 0.2 s).
        let total = (n.saturating_sub(1) as f64 * interval * 1000.0) as u64 + 16;
        Ok(format!("PING {ip}({ip}) 56 data bytes\n\n--- {ip} ping statistics ---\n{n} packets transmitted, 0 received, 100% packet loss, time {total}ms\n\n"))
    }

    /// Every recording of `machine`.
    fn entries(&self, machine: &str) -> Result<&[Entry]> {
        Ok(self
            .cassette
            .machines
            .get(machine)
            .ok_or_else(|| format!("no machine {machine}"))?)
    }

    /// The first recording of `machine` whose command starts with `prefix`.
    fn cmd(&self, machine: &str, prefix: &str) -> Result<&Entry> {
        self.find(machine, |c| c.starts_with(prefix))
            .ok_or_else(|| format!("{machine} ran no command starting with {prefix:?}").into())
    }

    fn find(&self, machine: &str, f: impl Fn(&str) -> bool) -> Option<&Entry> {
        self.entries(machine).ok()?.iter().find(|e| f(&e.command))
    }

    fn stdout(&self, machine: &str, prefix: &str) -> Result<&str> {
        Ok(&self.cmd(machine, prefix)?.output.stdout)
    }

    /// A replacement of `machine`'s command starting with `prefix` (exact command in the file).
    fn r(&self, machine: &str, prefix: &str) -> Result<Replacement> {
        Ok(replacement(machine, &self.cmd(machine, prefix)?.command))
    }

    /// The overlay address of `machine` (its first assigned ZeroTier address).
    fn zt_ip(&self, machine: &str) -> Result<String> {
        let nets = Json::parse(self.stdout(machine, "zerotier-cli -j listnetworks")?)?;
        let a = nets.items()?.first().ok_or("no network")?;
        let a = a
            .get("assignedAddresses")?
            .items()?
            .first()
            .ok_or("no address")?;
        Ok(a.str()?.split('/').next().unwrap_or_default().to_string())
    }

    /// Replacements making every recording of `machine`'s ping answer with the echo times
    /// `times` gives (from each echo's index and recorded time, as iputils prints them), and
    /// iputils' summary line of them.
    fn slow_ping(&self, machine: &str, times: impl Fn(usize, &str) -> String) -> Result<Vec<Pair>> {
        let echo = Regex::new(r"(?m)^\d+ bytes from .* time=([\d.]+) ms$")?;
        let time = Regex::new(r"time=[\d.]+ ms")?;
        let prefix = &self.cmd(machine, "ping -6")?.command;
        let mut pairs: Vec<Pair> = Vec::new();
        let mut add = |from: String, to: String| {
            if from != to && !pairs.iter().any(|(f, _)| *f == from) {
                pairs.push((from, to));
            }
        };
        for e in self
            .entries(machine)?
            .iter()
            .filter(|e| &e.command == prefix)
        {
            let out = &e.output.stdout;
            let mut ms = Vec::new();
            for (i, c) in echo.captures_iter(out).enumerate() {
                let t = times(i, &c[1]);
                ms.push(t.parse::<f64>()?);
                let to = time.replace_all(&c[0], NoExpand(&format!("time={t} ms")));
                add(c[0].to_string(), to.into_owned());
            }
            if ms.is_empty() {
                // A ping that lost every echo (the mesh re-forming after a rebuild) stays lost.
                continue;
            }
            let n = ms.len() as f64;
            let avg = ms.iter().sum::<f64>() / n;
            let mdev = (ms.iter().map(|x| x * x).sum::<f64>() / n - avg * avg)
                .max(0.0)
                .sqrt();
            let min = ms.iter().copied().fold(f64::INFINITY, f64::min);
            let max = ms.iter().copied().fold(0.0, f64::max);
            add(
                found(r"rtt min/avg/max/mdev = .* ms", out)?,
                format!("rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms"),
            );
        }
        if pairs.is_empty() {
            return Err(format!("{machine}: no echoes in any recorded ping").into());
        }
        Ok(pairs)
    }

    /// `machine`'s `systemctl show` output with block `idx`'s properties set to `props`.
    fn units(&self, machine: &str, idx: usize, props: &[(&str, &str)]) -> Result<String> {
        let out = self.stdout(machine, "systemctl show")?;
        let mut blocks: Vec<String> = out
            .trim_matches('\n')
            .split("\n\n")
            .map(String::from)
            .collect();
        let block = blocks.get_mut(idx).ok_or("too few units")?;
        let mut kv: Vec<(String, String)> = block
            .lines()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        for (k, v) in props {
            match kv.iter_mut().find(|(x, _)| x == k) {
                Some((_, old)) => *old = v.to_string(),
                None => kv.push((k.to_string(), v.to_string())),
            }
        }
        *block = kv
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n");
        Ok(blocks.join("\n\n") + "\n")
    }
}

type Pair = (String, String);

fn pair(from: impl Into<String>, to: impl Into<String>) -> Pair {
    (from.into(), to.into())
}

/// How long zt-root-silent's root has been silent: past ZeroTier's own path expiry (243 s: a
/// root is contacted every 224 s, plus the 19 s alive window), before `online` turns false
/// (500 s).
const SILENT_S: u64 = 250;

/// The first match of `re` in `text`.
fn found(re: &str, text: &str) -> Result<String> {
    Ok(Regex::new(re)?
        .find(text)
        .ok_or_else(|| format!("no match for {re}"))?
        .as_str()
        .to_string())
}

/// `info -j` of a node whose UDP is blocked and whose TCP fallback relay is allowed and active.
fn tunneled() -> Vec<Pair> {
    vec![
        pair(
            "\"allowTcpFallbackRelay\": false",
            "\"allowTcpFallbackRelay\": true",
        ),
        pair(
            "\"tcpFallbackActive\": false",
            "\"tcpFallbackActive\": true",
        ),
    ]
}

/// ZeroTier's rfc4193 address of `node` in network `nwid`: fd, the network id, 9993, the node.
fn rfc4193(nwid: &str, node: &str) -> String {
    let hex = format!("fd{nwid}9993{node}");
    let groups: Vec<&str> = (0..8).map(|i| &hex[i * 4..i * 4 + 4]).collect();
    groups.join(":")
}

/// A replacement of `machine`'s exact `command` that changes nothing yet.
fn replacement(machine: &str, command: &str) -> Replacement {
    Replacement {
        machine: machine.into(),
        command: Some(command.into()),
        command_contains: None,
        stdout: None,
        stdout_replace: Vec::new(),
        stderr: None,
        exit: None,
        error: None,
    }
}

/// Builder steps on a replacement.
trait With {
    fn stdout(self, s: impl Into<String>) -> Self;
    fn stdout_replace(self, pairs: Vec<Pair>) -> Self;
    fn stderr(self, s: impl Into<String>) -> Self;
    fn exit(self, code: i32) -> Self;
    fn error(self, words: impl Into<String>) -> Self;
}

impl With for Replacement {
    fn stdout(mut self, s: impl Into<String>) -> Self {
        self.stdout = Some(s.into());
        self
    }
    fn stdout_replace(mut self, pairs: Vec<Pair>) -> Self {
        self.stdout_replace = pairs;
        self
    }
    fn stderr(mut self, s: impl Into<String>) -> Self {
        self.stderr = Some(s.into());
        self
    }
    fn exit(mut self, code: i32) -> Self {
        self.exit = Some(Some(code));
        self
    }
    fn error(mut self, words: impl Into<String>) -> Self {
        self.error = Some(words.into());
        self
    }
}

/// Order of the units in `systemctl show` of the story fleet: emergency-access, sshd,
/// zerotier-autoaccept-*, zerotierone.
const AUTOACCEPT: usize = 2;
/// ... and of the lab: emergency-access, sshd, yggdrasil.
const YGG: usize = 2;

#[rustfmt::skip]
fn story_faults(b: &Base, real: &ssh::Real) -> Result<Vec<Fault>> {
    let gcp_ip = b.zt_ip(G)?;
    let known_hosts = b.stdout(G, "cat /etc/ssh/ssh_known_hosts")?;
    let ca_line = known_hosts.lines().find(|l| l.starts_with("@cert-authority")).ok_or("no CA line")?;
    let nets = Json::parse(b.stdout(G, "zerotier-cli -j listnetworks")?)?;
    let nwid = nets.items()?.first().ok_or("no network")?.get("id")?.str()?.to_string();
    let shadow = b.stdout(G, "sh -c 'u=")?;
    let sshd = b.stdout(G, "sshd -T")?;
    let other_ca = "AAAAC3NzaC1lZDI1NTE5AAAAIE0v1Yq3bwqBPhS1KcmuAdKrKUtYyBEOCzPW3tu0Kb9R";
    let ssh::Existing { foreign_ca, principal_hop, user_key_hop, no_ca, ca_differs } = ssh::existing(b, real, ca_line, other_ca)?;
    let status = |from: &str, to: &str| vec![pair(format!("\"status\": \"{from}\""), format!("\"status\": \"{to}\""))];
    // The controller's member records with gcp-vm deauthorised (the lab's zt-deauthorize).
    let het_ip = b.zt_ip(H)?;
    let gcp_node = Json::parse(b.stdout(G, "zerotier-cli -j info")?)?.get("address")?.str()?.to_string();
    // gcp-vm's member record on the controller: deauthorised (the lab's zt-deauthorize), or
    // absent (a new peer the controller never admitted).
    let member_cmd = b.find(H, |c| c.contains("/member/*.json")).ok_or("no member records")?.command.clone();
    let members = b.find(H, |c| c == member_cmd).map(|e| e.output.stdout.as_str()).unwrap_or_default();
    let is_gcp = |l: &str| l.contains(&format!("\"id\":\"{gcp_node}\""));
    let records: String = members.lines().map(|l| if is_gcp(l) { l.replace("\"authorized\":true", "\"authorized\":false") } else { l.to_string() } + "\n").collect();
    let records_without_gcp: String = members.lines().filter(|l| !is_gcp(l)).map(|l| l.to_string() + "\n").collect();
    let gcp_addr = b.address(G)?;
    let timeout = |ip: &str| format!("ssh: connect to host {ip} port 22: Connection timed out\n");
    // No overlay traffic between gcp-vm and hetzner-vm: every ping lost, every hop timed out,
    // both ways (what the lab's zt-deauthorize showed at once).
    let cut_off = || -> Result<Vec<Replacement>> {
        Ok(vec![
            b.r(H, "ping -6")?.exit(1).stdout(b.loss(H, &gcp_ip)?), b.r(G, "ping -6")?.exit(1).stdout(b.loss(G, &het_ip)?),
            b.r(H, "ssh -v")?.exit(255).stdout("").stderr(timeout(&gcp_ip)), b.r(G, "ssh -v")?.exit(255).stdout("").stderr(timeout(&het_ip)),
        ])
    };
    // Another network of the same controller (its id starts with the controller's node id).
    let new_nwid = format!("{}e66e31", &nwid[..10]);
    Ok(vec![
        Fault { name: "zt-access-denied", description: "gcp-vm's network membership not authorised by the controller (new peer, controller not redeployed): no traffic either way over the overlay, as the ZeroTier lab's zt-deauthorize showed",
            criterion: "AC1", code: "zt.access-denied", machine: G, also: &[("AC2", "ssh.timeout"), ("AC6", "zt.access-denied")],
            replace: [vec![b.r(G, "zerotier-cli -j listnetworks")?.stdout_replace(status("OK", "ACCESS_DENIED")),
                replacement(H, &member_cmd).stdout(records_without_gcp)], cut_off()?].concat() },
        Fault { name: "zt-requesting-configuration", description: "gcp-vm's request for the network's configuration is never answered by the controller (a controller that drops it): no traffic either way over the overlay",
            criterion: "AC1", code: "zt.requesting-configuration", machine: G, also: &[("AC2", "ssh.timeout"), ("AC6", "zt.requesting-configuration")],
            replace: [vec![b.r(G, "zerotier-cli -j listnetworks")?.stdout_replace(status("OK", "REQUESTING_CONFIGURATION"))], cut_off()?].concat() },
        Fault { name: "zt-offline", description: "gcp-vm's ZeroTier node is OFFLINE",
            criterion: "AC1", code: "zt.offline", machine: G, also: &[("AC6", "zt.offline")],
            replace: vec![b.r(G, "zerotier-cli -j info")?.stdout_replace(vec![pair("\"online\": true", "\"online\": false")])] },
        Fault { name: "zt-tunneled-high-rtt", description: "gcp-vm tunnels through ZeroTier's TCP fallback relay (UDP blocked, the relay allowed) and its pings take about 380 ms",
            criterion: "AC1", code: "mesh.rtt-high", machine: G, also: &[("AC6", "mesh.rtt-high")],
            replace: vec![
                b.r(G, "zerotier-cli -j info")?.stdout_replace(tunneled()),
                b.r(G, "zerotier-cli -j peers")?.stdout_replace(vec![pair("\"tunneled\": false", "\"tunneled\": true")]),
                b.r(G, "ping -6")?.stdout_replace(b.slow_ping(G, |i, _| ["402", "371", "381"][i % 3].into())?),
            ] },
        Fault { name: "zt-node-id-mismatch", description: "gcp-vm's daemon still runs an old identity after new vars (not restarted)",
            criterion: "AC1", code: "zt.node-id-mismatch", machine: G, also: &[("AC6", "zt.node-id-mismatch")],
            replace: vec![b.r(G, "zerotier-cli -j info")?.stdout_replace(vec![pair(format!("\"address\": \"{gcp_node}\""), "\"address\": \"5d21b7c0e4\""), pair(format!("\"publicIdentity\": \"{gcp_node}:"), "\"publicIdentity\": \"5d21b7c0e4:")])] },
        Fault { name: "mesh-loss-one-direction", description: "hetzner-vm → gcp-vm loses every echo (one direction only)",
            criterion: "AC1", code: "mesh.loss", machine: H, also: &[("AC6", "mesh.loss")],
            replace: vec![b.r(H, "ping -6")?.exit(1).stdout(b.loss(H, &gcp_ip)?)] },
        Fault { name: "zt-deauthorized", description: "the controller deauthorised gcp-vm: pings and SSH fail both ways at once while gcp-vm's listnetworks still says OK (ZeroTier keeps its cached config about 45 s; as the ZeroTier lab's zt-deauthorize shows)",
            criterion: "AC1", code: "mesh.loss", machine: G, also: &[("AC2", "ssh.timeout"), ("AC6", "mesh.loss")],
            replace: [vec![replacement(H, &member_cmd).stdout(records)], cut_off()?].concat() },
        Fault { name: "zt-root-silent", description: "ZeroTier's UDP between gcp-vm and hetzner-vm (the lab's controller and only root) dropped for 250 s by a firewall, SSH to both still answering: gcp-vm's root has answered nothing for 250 s (past ZeroTier's 243 s path expiry, before its 500 s offline timeout) while gcp-vm kept sending, yet `info` still says online (ZeroTier waits 500 s for an upstream); pings and hops fail both ways. The lab test makes the same silence by stopping the controller (tests/fixtures/zerotier/peers-json-root-silent-170s-1.14.1-lab.txt)",
            criterion: "AC1", code: "zt.root-silent", machine: G, also: &[("AC2", "ssh.timeout"), ("AC6", "ssh.timeout")],
            replace: [vec![
                b.r(G, "zerotier-cli -j peers")?.stdout_replace(b.silent_paths(G, "PLANET", SILENT_S)?),
                b.r(H, "zerotier-cli -j peers")?.stdout_replace(b.silent_paths(H, "LEAF", SILENT_S)?),
            ], cut_off()?].concat() },
        Fault { name: "mesh-one-slow-echo", description: "gcp-vm's second echo to hetzner-vm takes 264 ms (a busy moment), the others as recorded, in every ping of the run",
            criterion: "AC1", code: "mesh.rtt-high", machine: G, also: &[("AC6", "mesh.rtt-high")],
            replace: vec![b.r(G, "ping -6")?.stdout_replace(b.slow_ping(G, |i, t| if i == 1 { "264".into() } else { t.into() })?)] },
        Fault { name: "mesh-rtt-250", description: "gcp-vm → hetzner-vm RTT about 250 ms, above the 200 ms threshold, in every ping of the run",
            criterion: "AC1", code: "mesh.rtt-high", machine: G, also: &[("AC6", "mesh.rtt-high")],
            replace: vec![b.r(G, "ping -6")?.stdout_replace(b.slow_ping(G, |i, _| ["254", "247", "249"][i % 3].into())?)] },
        Fault { name: "ssh-foreign-ca", description: "gcp-vm serves a host certificate signed by a foreign (ECDSA) CA (real ssh -v and ssh-keygen -L of such a certificate)",
            criterion: "AC2", code: "ssh.foreign-ca", machine: G, also: &[("AC6", "ssh.foreign-ca")],
            replace: foreign_ca },
        Fault { name: "ssh-principal-mismatch", description: "gcp-vm's certificate names gcp-vm.zt, not gcp-vm.clan",
            criterion: "AC2", code: "ssh.principal-mismatch", machine: G, also: &[("AC6", "ssh.principal-mismatch")],
            replace: vec![b.r(G, "ssh-keygen -L")?.stdout_replace(vec![pair("gcp-vm.clan", "gcp-vm.zt")]), principal_hop] },
        Fault { name: "ssh-user-key-refused", description: "hetzner-vm does not authorise gcp-vm's root key",
            criterion: "AC2", code: "ssh.user-key-refused", machine: G, also: &[("AC6", "ssh.user-key-refused")],
            replace: vec![user_key_hop] },
        Fault { name: "users-root-hash-mismatch", description: "root's shadow hash on gcp-vm differs from the deployed user-password-hash",
            criterion: "AC3", code: "users.hash-mismatch", machine: G, also: &[("AC6", "users.hash-mismatch")],
            replace: vec![b.r(G, "sh -c 'u=")?.stdout_replace(vec![pair("shadow ", format!("shadow {}\nignored ", "1".repeat(64)))])] },
        Fault { name: "shared-var-differs", description: "gcp-vm holds another version of the shared user-password-root hash",
            criterion: "AC4", code: "shared.secret-differs", machine: G, also: &[],
            replace: vec![b.r(G, "sh -c 'for f in")?.stdout(format!("/run/secrets-for-users/vars/shared/user-password-root/user-password-hash {}\n", "2".repeat(64)))] },
        Fault { name: "zt-autoaccept-missing", description: "the controller has no auto-accept unit (pre-2026 clan-core unit name, or not the controller)",
            criterion: "AC1", code: "zt.autoaccept-missing", machine: H, also: &[("AC6", "zt.autoaccept-missing")],
            replace: vec![b.r(H, "systemctl show")?.stdout(b.units(H, AUTOACCEPT, &[("LoadState", "not-found"), ("ActiveState", "inactive")])?)] },
        Fault { name: "zt-autoaccept-failed", description: "the controller's auto-accept run exited 1",
            criterion: "AC1", code: "zt.autoaccept-failed", machine: H, also: &[("AC6", "zt.autoaccept-failed")],
            replace: vec![b.r(H, "systemctl show")?.stdout(b.units(H, AUTOACCEPT, &[("Result", "exit-code"), ("ExecMainStatus", "1"), ("ActiveState", "failed"), ("SubState", "failed")])?)] },
        Fault { name: "zt-network-recreated", description: "gcp-vm is joined to a network the controller recreated (a new id, the same controller), not the repo's; its address is the new network's",
            criterion: "AC1", code: "zt.not-joined", machine: G, also: &[("AC3", "zt.member"), ("AC4", "shared.network-id-differs"), ("AC6", "zt.not-joined")],
            replace: vec![b.r(G, "zerotier-cli -j listnetworks")?.stdout_replace(vec![pair(nwid.as_str(), new_nwid.as_str()), pair(gcp_ip.as_str(), rfc4193(&new_nwid, &gcp_node))])] },
        Fault { name: "zt-address-mismatch", description: "the controller assigned gcp-vm its address in another network of the controller's (an old one) on the repo's network",
            criterion: "AC1", code: "zt.address-mismatch", machine: G, also: &[("AC6", "zt.address-mismatch")],
            replace: vec![b.r(G, "zerotier-cli -j listnetworks")?.stdout_replace(vec![pair(gcp_ip.as_str(), rfc4193(&new_nwid, &gcp_node))])] },
        Fault { name: "sshd-no-cert", description: "gcp-vm's sshd serves no host certificate (certificates off)",
            criterion: "AC3", code: "sshd.no-cert", machine: G, also: &[("AC2", "ssh.no-host-cert"), ("AC6", "sshd.no-cert")],
            replace: vec![b.r(G, "sshd -T")?.stdout(sshd.lines().filter(|l| !l.starts_with("hostcertificate")).collect::<Vec<_>>().join("\n") + "\n")] },
        Fault { name: "sshd-password-auth", description: "gcp-vm's sshd accepts passwords (configuration drift)",
            criterion: "AC3", code: "sshd.password-auth", machine: G, also: &[("AC6", "sshd.password-auth")],
            replace: vec![b.r(G, "sshd -T")?.stdout_replace(vec![pair("passwordauthentication no", "passwordauthentication yes")])] },
        Fault { name: "sshd-client-no-ca", description: "gcp-vm's /etc/ssh/ssh_known_hosts lacks the @cert-authority line",
            criterion: "AC3", code: "sshd.client-no-ca", machine: G, also: &[("AC2", "ssh.no-ca-line"), ("AC4", "shared.ca-absent"), ("AC6", "sshd.client-no-ca")],
            replace: [vec![b.r(G, "cat /etc/ssh/ssh_known_hosts")?.stdout_replace(vec![pair(format!("{ca_line}\n"), "")])], no_ca].concat() },
        Fault { name: "shared-ca-differs", description: "gcp-vm trusts another CA than the clan's shared openssh-ca",
            criterion: "AC4", code: "shared.ca-differs", machine: G, also: &[("AC2", "ssh.client-other-ca"), ("AC3", "sshd.client-no-ca"), ("AC6", "ssh.client-other-ca")],
            replace: [vec![b.r(G, "cat /etc/ssh/ssh_known_hosts")?.stdout_replace(vec![pair(ca_line.split_whitespace().last().unwrap_or_default(), other_ca)])], ca_differs].concat() },
        Fault { name: "ssh-not-host-cert", description: "gcp-vm's HostCertificate is a user certificate (signed without -h)",
            criterion: "AC2", code: "ssh.not-host-cert", machine: G, also: &[("AC6", "ssh.not-host-cert")],
            replace: vec![b.r(G, "ssh-keygen -L")?.stdout_replace(vec![pair("host certificate", "user certificate")])] },
        Fault { name: "ea-no-systemd-initrd", description: "gcp-vm boots the scripted initrd, so emergency access has no effect",
            criterion: "AC3", code: "ea.no-systemd-initrd", machine: G, also: &[("AC6", "ea.no-systemd-initrd")],
            replace: vec![b.r(G, "cat /run/current-system/kernel-params")?.stdout_replace(vec![pair("root=fstab ", "")])] },
        Fault { name: "users-hash-missing", description: "gcp-vm has no deployed user-password-root hash (secrets not uploaded)",
            criterion: "AC3", code: "users.hash-missing", machine: G, also: &[("AC6", "users.hash-missing")],
            replace: vec![b.r(G, "sh -c 'u=")?.stdout(shadow.split("file ").next().unwrap_or_default())] },
        Fault { name: "shared-secret-missing", description: "gcp-vm lacks the shared user-password-root secret file",
            criterion: "AC4", code: "shared.secret-missing", machine: G, also: &[],
            replace: vec![b.r(G, "sh -c 'for f in")?.stdout("")] },
        Fault { name: "role-leak", description: "gcp-vm, a ZeroTier peer, also runs the controller's auto-accept unit",
            criterion: "AC3", code: "role.leak", machine: G, also: &[("AC6", "role.leak")],
            replace: vec![b.r(G, "systemctl show")?.stdout(b.units(G, AUTOACCEPT, &[("LoadState", "loaded")])?)] },
        Fault { name: "mesh-no-route", description: "gcp-vm has no route to hetzner-vm's overlay address (interface down)",
            criterion: "AC1", code: "mesh.no-route", machine: G, also: &[("AC6", "mesh.no-route")],
            replace: vec![b.r(G, "ping -6")?.exit(2).stdout("").stderr("ping: connect: Network is unreachable\n")] },
        Fault { name: "ssh-wrong-host", description: "hetzner-vm's hop to gcp-vm's overlay address lands on another machine",
            criterion: "AC2", code: "ssh.wrong-host", machine: H, also: &[("AC6", "ssh.wrong-host")],
            replace: vec![b.r(H, "ssh -v")?.stdout("old-gcp-vm\n")] },
        Fault { name: "users-no-password", description: "root on gcp-vm has no password hash in /etc/shadow",
            criterion: "AC3", code: "users.no-password", machine: G, also: &[("AC6", "users.no-password")],
            replace: vec![b.r(G, "sh -c 'u=")?.stdout_replace(vec![pair(
                format!("shadow {}", shadow.split("shadow ").nth(1).and_then(|s| s.split_whitespace().next()).ok_or("no shadow hash")?),
                "shadow e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")])] },
        Fault { name: "zt-cli-no-token", description: "zerotier-cli on gcp-vm cannot read the daemon's auth token, so info, listnetworks and peers all fail with its words: AC1 names it once, AC3's membership and AC4's network id are UNCHECKED",
            criterion: "AC1", code: "probe.failed", machine: G, also: &[("AC3", "zt.member"), ("AC4", "shared.network-id"), ("AC6", "probe.failed")],
            replace: ["info", "listnetworks", "peers"].into_iter().map(|c| Ok(b.r(G, &format!("zerotier-cli -j {c}"))?.exit(1).stdout("").stderr("zerotier-cli: missing authentication token and authtoken.secret not found (or readable) in /var/lib/zerotier-one\n"))).collect::<Result<Vec<_>>>()? },
        Fault { name: "inventory-changed", description: "the inventory drops gcp-vm from emergency-access: the instance names hetzner-vm instead of the tag all (clan-core's evaluation as recorded, changed; snapshot not reviewed)",
            criterion: "AC3", code: "inventory.changed", machine: G, also: &[("AC6", "inventory.changed")],
            replace: vec![inventory_changed(b)?] },
        // Fail closed, one root cause (issue 13).
        Fault { name: "zt-offline-tunneled", description: "gcp-vm's ZeroTier node is offline (\"online\": false) while its TCP fallback relay is active: offline is offline, not a TUNNELED warning",
            criterion: "AC1", code: "zt.offline", machine: G, also: &[("AC6", "zt.offline")],
            replace: vec![b.r(G, "zerotier-cli -j info")?.stdout_replace([vec![pair("\"online\": true", "\"online\": false")], tunneled()].concat())] },
        Fault { name: "machine-unreachable", description: "sshd on gcp-vm is stopped: the harness's connection is refused (the transport's words, recorded against a closed port) and so is hetzner-vm's hop; named once per criterion, gcp-vm's own checks UNCHECKED",
            criterion: "AC1", code: "machine.unreachable", machine: G, also: &[("AC2", "machine.unreachable"), ("AC3", "machine.unreachable"), ("AC4", "machine.unreachable"), ("AC5", "machine.unreachable"), ("AC6", "machine.unreachable")],
            replace: unreachable(b, G, &format!("cannot connect to {gcp_addr}:22 (waited 84.144µs): Connection refused (os error 111)"), vec![
                b.r(H, "ssh -v")?.exit(255).stdout("").stderr(format!("OpenSSH_10.0p2, OpenSSL 3.4.1 11 Feb 2025\ndebug1: Reading configuration data /etc/ssh/ssh_config\ndebug1: Connecting to {gcp_ip} [{gcp_ip}] port 22.\ndebug1: connect to address {gcp_ip} port 22: Connection refused\nssh: connect to host {gcp_ip} port 22: Connection refused\n")),
            ])? },
        Fault { name: "root-keys-emptied", description: "root's authorized keys on gcp-vm were emptied: the harness's login and hetzner-vm's hop are refused; AC2 fails ssh.user-key-refused once, the CA line and host certificate of gcp-vm, never read, are UNCHECKED",
            criterion: "AC2", code: "ssh.user-key-refused", machine: G, also: &[("AC1", "machine.unreachable"), ("AC3", "machine.unreachable"), ("AC4", "machine.unreachable"), ("AC5", "machine.unreachable"), ("AC6", "ssh.user-key-refused")],
            replace: unreachable(b, G, "authentication as root failed with ssh-agent: [Session(-18)] Username/PublicKey combination invalid", vec![
                b.r(H, "ssh -v")?.exit(255).stdout("").stderr(format!("debug1: Host 'gcp-vm.clan' is known and matches the ED25519-CERT host certificate.\ndebug1: Authentications that can continue: publickey\ndebug1: No more authentication methods to try.\nroot@{gcp_ip}: Permission denied (publickey).\n")),
            ])? },
        Fault { name: "machines-toml-omits-gcp", description: "machines.toml lists hetzner-vm only; the inventory also has gcp-vm: every check of gcp-vm is UNCHECKED \"not in machines.toml\", no criterion passes",
            criterion: "AC1", code: "fleet.not-configured", machine: G, also: &[("AC2", "fleet.not-configured"), ("AC3", "fleet.not-configured"), ("AC4", "fleet.not-configured"), ("AC5", "fleet.not-configured"), ("AC6", "fleet.not-configured")],
            replace: vec![] },
    ])
}

/// Every command of `machine` failing with the transport's words (the batch's, as the live
/// transport reports a failed connect), plus the `also` replacements.
fn unreachable(
    b: &Base,
    machine: &str,
    words: &str,
    also: Vec<Replacement>,
) -> Result<Vec<Replacement>> {
    let mut commands: Vec<&str> = Vec::new();
    for e in b.entries(machine)? {
        if !commands.contains(&e.command.as_str()) {
            commands.push(&e.command);
        }
    }
    let mut out: Vec<Replacement> = commands
        .into_iter()
        .map(|c| {
            replacement(machine, c).error(format!(
                "{machine}: `{c}` failed on the SSH channel: batch failed: {machine}: {words}"
            ))
        })
        .collect();
    out.extend(also);
    Ok(out)
}

/// Faults of the yggdrasil overlay and of rebuilds, cut from the run recorded on the healthy lab.
#[rustfmt::skip]
/// Faults cut from the ZeroTier lab's recording (real ZeroTier 1.14.1, AC6's MTU change).
fn zt_lab_faults(b: &Base) -> Result<Vec<Fault>> {
    // gcp-vm's listnetworks as recorded: the MTU before AC6's change (the first recording) and
    // after it (the last).
    let lists: Vec<&str> = b.entries(G)?.iter().filter(|e| e.command == "zerotier-cli -j listnetworks").map(|e| e.output.stdout.as_str()).collect();
    let re = Regex::new(r#""mtu": (\d+)"#)?;
    let mtu = |t: &str| re.captures(t).map(|c| c[1].to_string());
    let (Some(old), Some(new)) = (lists.first().and_then(|t| mtu(t)), lists.last().and_then(|t| mtu(t))) else {
        return Err(format!("{G}: no listnetworks recording with an mtu").into());
    };
    if old == new {
        return Err(format!("{G}: the recorded MTU did not change ({old}): not a recording of AC6's change").into());
    }
    // clan's own export of gcp-vm's address (the recorded `nix eval` of clan.exports), changed.
    let exports = b.cassette.workstation.iter().find(|e| e.command.contains("#clan.exports")).ok_or("no recorded clan.exports")?;
    let gcp_ip = Regex::new(r#"zerotier::gcp-vm".*?"plain":"([0-9a-f:]+)"#)?.captures(&exports.output.stdout).map(|c| c[1].to_string()).ok_or("no gcp-vm export")?;
    Ok(vec![
        Fault { name: "zt-export-differs", description: "clan.exports (clan's own view, which its networking and `clan ssh` use) gives gcp-vm another ZeroTier address than the vars: the pre-flight fails every criterion before any machine is contacted",
            criterion: "AC1", code: "oracle.inconsistent", machine: G,
            also: &[("AC2", "oracle.inconsistent"), ("AC3", "oracle.inconsistent"), ("AC4", "oracle.inconsistent"), ("AC5", "oracle.inconsistent"), ("AC6", "oracle.inconsistent")],
            replace: vec![replacement("workstation", &exports.command).stdout_replace(vec![pair(gcp_ip.as_str(), "fd00::1")])] },
        Fault { name: "zt-setting-not-arrived", description: "the zerotier instance's MTU changed and the controller serves it, but gcp-vm still holds the network config from before the change (it has not fetched it yet): derived from the ZeroTier lab's recording",
            criterion: "AC6", code: "zt.settings-not-arrived", machine: G, also: &[],
            replace: vec![b.r(G, "zerotier-cli -j listnetworks")?.stdout_replace(vec![pair(format!("\"mtu\": {new}"), format!("\"mtu\": {old}"))])] },
    ])
}

fn lab_faults(b: &Base) -> Result<Vec<Fault>> {
    let gself = Json::parse(b.stdout(G, "yggdrasilctl -json getSelf")?)?;
    let mut units: Vec<String> = b
        .stdout(G, "systemctl show")?
        .trim_matches('\n')
        .split("\n\n")
        .map(String::from)
        .collect();
    let ygg = units.get_mut(YGG).ok_or("too few units")?;
    *ygg = ygg
        .replace("ActiveState=active", "ActiveState=failed")
        .replace("SubState=running", "SubState=failed")
        .replace("Result=success", "Result=exit-code");
    let state = &b
        .find(G, |c| c.starts_with("sh -c ") && c.contains("profile-path"))
        .ok_or("no state probe")?
        .command;
    // gcp-vm's state probe as recorded: before and after AC5's rebuild, before and after AC6's.
    let recs: Vec<&str> = b
        .entries(G)?
        .iter()
        .filter(|e| &e.command == state)
        .map(|e| e.output.stdout.as_str())
        .collect();
    let [before5, after5, _before6, after6] = recs.as_slice() else {
        return Err(format!("{G}: {} recordings of the state probe, not 4", recs.len()).into());
    };
    // Lines of the recordings after a rebuild (each once), changed by `to`.
    let after = |prefix: &str, to: &dyn Fn(&str) -> String| -> Vec<Pair> {
        let lines: BTreeSet<&str> = [after5, after6]
            .iter()
            .flat_map(|t| t.lines())
            .filter(|l| l.starts_with(prefix))
            .collect();
        lines.iter().map(|l| pair(*l, to(l))).collect()
    };
    let word = |l: &str, i: usize| l.split_whitespace().nth(i).unwrap_or_default().to_string();
    let unit_down = after("unit ", &|l| {
        format!("unit {} 0 - {}", word(l, 1), word(l, 4))
    });
    let artefact_missing = after("file ", &|l| format!("{} {} -", word(l, 0), word(l, 1)));
    let old_current = before5
        .lines()
        .find(|l| l.starts_with("current "))
        .ok_or("no current line")?
        .to_string();
    let not_switched = after("current ", &|_| old_current.clone());
    // Every recording of gcp-vm's state probe (before/after each round), line by line.
    let lines: BTreeSet<&str> = recs.iter().flat_map(|t| t.lines()).collect();
    let pairs = |prefix: &str, to: &dyn Fn(&str) -> String| -> Vec<Pair> {
        let mut p: Vec<Pair> = lines
            .iter()
            .filter(|l| l.starts_with(prefix))
            .map(|l| pair(*l, to(l)))
            .collect();
        p.sort();
        p
    };
    let no_generation: Vec<Pair> = pairs("profile system-", &|_| "profile system-1-link".into())
        .into_iter()
        .filter(|(l, _)| l != "profile system-1-link")
        .collect();
    let rebuild_g = b
        .cassette
        .workstation
        .iter()
        .find(|e| e.command.ends_with(&format!(" {G}")))
        .ok_or("no rebuild of gcp-vm")?;
    let state_r = || replacement(G, state);
    Ok(vec![
        Fault { name: "rebuild-unit-down", description: "yggdrasil.service on gcp-vm ran before the rebuild and is not running after it",
            criterion: "AC6", code: "coord.unit-down", machine: G, also: &[],
            replace: vec![state_r().stdout_replace(unit_down)] },
        Fault { name: "rebuild-artefact-missing", description: "gcp-vm's new generation lacks /etc/nix/nix.conf",
            criterion: "AC5", code: "rebuild.artefact-missing", machine: G, also: &[],
            replace: vec![state_r().stdout_replace(artefact_missing)] },
        Fault { name: "rebuild-no-generation", description: "gcp-vm switched systems without registering a new profile generation",
            criterion: "AC5", code: "rebuild.no-generation", machine: G, also: &[("AC6", "rebuild.no-generation")],
            replace: vec![state_r().stdout_replace(no_generation)] },
        Fault { name: "rebuild-not-switched", description: "gcp-vm registered its new generations but still runs the system it ran before the rebuilds",
            criterion: "AC5", code: "rebuild.not-switched", machine: G, also: &[("AC6", "rebuild.not-switched")],
            replace: vec![state_r().stdout_replace(not_switched)] },
        Fault { name: "rebuild-failed", description: "gcp-vm's rebuild fails to evaluate (its yggdrasil_port override is not a port), so it keeps running its previous system",
            criterion: "AC5", code: "rebuild.failed", machine: G, also: &[("AC6", "rebuild.failed")],
            replace: vec![
                replacement("workstation", &rebuild_g.command).exit(2)
                    .stdout("evaluating the configuration of gcp-vm (/tmp/clan-coord-lab/clan/lab-config.json)\n")
                    .stderr("error: lab: lab rebuild gcp-vm: error: A definition for option `services.yggdrasil.settings.Listen' of gcp-vm is not a port number: 70000\n"),
                state_r().stdout(*before5),
            ] },
        Fault { name: "ygg-address-mismatch", description: "gcp-vm's yggdrasil runs another key than its vars (new vars, daemon not restarted)",
            criterion: "AC1", code: "ygg.address-mismatch", machine: G, also: &[("AC6", "ygg.address-mismatch")],
            replace: vec![b.r(G, "yggdrasilctl -json getSelf")?.stdout_replace(vec![pair(gself.get("address")?.str()?, "203:1111:2222:3333:4444:5555:6666:7777")])] },
        Fault { name: "ygg-key-mismatch", description: "gcp-vm's publicKey var does not belong to its address var",
            criterion: "AC1", code: "ygg.key-mismatch", machine: G, also: &[("AC6", "ygg.key-mismatch")],
            replace: vec![b.r(G, "yggdrasilctl -json getSelf")?.stdout_replace(vec![pair(gself.get("key")?.str()?, "ab".repeat(32))])] },
        Fault { name: "ygg-no-peers", description: "gcp-vm's yggdrasil reaches none of its peers",
            criterion: "AC1", code: "ygg.no-peers", machine: G, also: &[("AC6", "ygg.no-peers")],
            replace: vec![b.r(G, "yggdrasilctl -json getPeers")?.stdout("{\n  \"peers\": []\n}\n")] },
        Fault { name: "ygg-unit-failed", description: "yggdrasil.service on gcp-vm has failed",
            criterion: "AC3", code: "ygg.unit", machine: G, also: &[("AC6", "ygg.unit")],
            replace: vec![b.r(G, "systemctl show")?.stdout(units.join("\n\n") + "\n")] },
    ])
}

/// A broken cassette as written: `format`, `description`, `derive_from`, `expect`, `replace`,
/// then `machines_file` if any (the key order the corpus has always had).
struct BrokenFile<'a> {
    fault: &'a Fault,
    derive_from: &'a str,
    machines_file: Option<&'a str>,
}

impl Serialize for BrokenFile<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.fault;
        let expect = Expectation {
            criterion: f.criterion.into(),
            code: f.code.into(),
            machine: f.machine.into(),
            also: f
                .also
                .iter()
                .map(|(c, k)| AlsoFails {
                    criterion: (*c).into(),
                    code: (*k).into(),
                })
                .collect(),
        };
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("format", &clan_coordination::transport::cassette::FORMAT)?;
        m.serialize_entry("description", f.description)?;
        m.serialize_entry("derive_from", self.derive_from)?;
        m.serialize_entry("expect", &expect)?;
        let replace: Vec<Ordered> = f.replace.iter().map(Ordered).collect();
        m.serialize_entry("replace", &replace)?;
        if let Some(mf) = self.machines_file {
            m.serialize_entry("machines_file", mf)?;
        }
        m.end()
    }
}

/// A replacement as written: `machine`, `command`, `command_contains`, `exit`, `stdout`,
/// `stdout_replace`, `stderr`, `error`, each only when set.
struct Ordered<'a>(&'a Replacement);

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("machine", &r.machine)?;
        if let Some(c) = &r.command {
            m.serialize_entry("command", c)?;
        }
        if let Some(c) = &r.command_contains {
            m.serialize_entry("command_contains", c)?;
        }
        if let Some(x) = &r.exit {
            m.serialize_entry("exit", x)?;
        }
        if let Some(x) = &r.stdout {
            m.serialize_entry("stdout", x)?;
        }
        if !r.stdout_replace.is_empty() {
            m.serialize_entry("stdout_replace", &r.stdout_replace)?;
        }
        if let Some(x) = &r.stderr {
            m.serialize_entry("stderr", x)?;
        }
        if let Some(x) = &r.error {
            m.serialize_entry("error", x)?;
        }
        m.end()
    }
}

/// The recorded evaluation of the inventory with emergency-access given to hetzner-vm by name
/// instead of to every machine by the tag `all`.
fn inventory_changed(b: &Base) -> Result<Replacement> {
    let eval = b
        .cassette
        .workstation
        .iter()
        .find(|e| e.command.contains("inventorySerialization"))
        .ok_or("no recorded evaluation of the inventory")?;
    let inv = Json::parse(&eval.output.stdout)?;
    let ea = inv.get("instances")?.get("emergency-access")?;
    let from = json::to_string(ea, None)?;
    if !eval.output.stdout.contains(&from) {
        return Err("emergency-access does not re-serialise as nix printed it".into());
    }
    let mut to = ea.clone();
    let role = to.get_mut("roles")?.get_mut("default")?;
    let settings = role.get("tags")?.get("all")?.clone();
    role.set("machines", object([(H, settings)]))?;
    role.set("tags", Json::Object(Vec::new()))?;
    // clan-core names where a setting came from: now the machine's entry, not the tag's.
    let to = json::to_string(&to, None)?.replace(
        "roles.default.tags.all.settings",
        &format!("roles.default.machines.{H}.settings"),
    );
    Ok(replacement("workstation", &eval.command).stdout_replace(vec![pair(from, to)]))
}

/// Every file of the corpus (path relative to the crate root, content), from the crate root
/// `root`: one cassette per fault, and the machines.toml `machines-toml-omits-gcp` points at.
pub fn files(root: &Path) -> Result<Vec<(PathBuf, String)>> {
    let dir = Path::new(DIR);
    let mut out = Vec::new();
    let story = Base::load(&root.join(STORY))?;
    let lab = Base::load(&root.join("tests/cassettes/lab/cassette.json"))?;
    let real = ssh::Real::load(root)?;
    let mut story_list = story_faults(&story, &real)?;
    story_list.extend(ssh::faults(&story, &real)?);
    story_list.extend(zt_lab_faults(&story)?);
    for (base, faults) in [
        ("../story-fleet/cassette.json", story_list),
        ("../lab/cassette.json", lab_faults(&lab)?),
    ] {
        for fault in &faults {
            let file = BrokenFile {
                fault,
                derive_from: base,
                machines_file: (fault.name == OMITS)
                    .then_some("machines-toml-omits-gcp/machines.toml"),
            };
            let name = dir.join(format!("{}.json", fault.name));
            out.push((name, json::to_string(&file, Some(1))?));
        }
    }
    out.push(omits_gcp(root, &story)?);
    Ok(out)
}

/// The story fleet: the healthy 2-machine ZeroTier lab, recorded.
const STORY: &str = "tests/cassettes/story-fleet/cassette.json";

/// The fleet whose machines.toml leaves out one inventory machine.
const OMITS: &str = "machines-toml-omits-gcp";

/// machines-toml-omits-gcp's machines.toml: the story's, without gcp-vm's `[[machine]]`, its
/// clan repo named from the broken fleet's directory.
fn omits_gcp(root: &Path, story: &Base) -> Result<(PathBuf, String)> {
    let text = std::fs::read_to_string(root.join("tests/cassettes/story-fleet/machines.toml"))?;
    let gcp = format!(
        "\n[[machine]]\nname = \"gcp-vm\"\naddress = \"{}\"\n",
        story.address(G)?
    );
    if !text.contains(&gcp) {
        return Err("the story's machines.toml has no gcp-vm entry to leave out".into());
    }
    let toml = text
        .replace(&gcp, "")
        .replace(
            "clan_dir = \"clan\"",
            "clan_dir = \"../../story-fleet/clan\"",
        )
        .replace(
            "inventory_json = \"clan/",
            "inventory_json = \"../../story-fleet/clan/",
        );
    Ok((Path::new(DIR).join(OMITS).join("machines.toml"), toml))
}

/// Writes the corpus under `root`.
pub fn write(root: &Path) -> Result<()> {
    let files = files(root)?;
    std::fs::create_dir_all(root.join(DIR).join(OMITS))?;
    for (path, text) in &files {
        std::fs::write(root.join(path), text)?;
    }
    let cassettes = files
        .iter()
        .filter(|(p, _)| p.parent() == Some(Path::new(DIR)));
    println!("wrote {} broken cassettes in {DIR}", cassettes.count());
    Ok(())
}
