//! One root cause, its dependents unchecked. When the harness cannot reach a machine, every
//! probe of that machine fails with the transport's error; when a probe cannot run, the probes
//! after it often fail with the same words. A verdict names such a failure once (machine,
//! command, exit, the output's own words, a cause read from those words) and marks what depended
//! on it UNCHECKED, instead of failing the same error fifteen times.

use std::collections::BTreeMap;

use super::{Finding, Severity};
use crate::expectations::Expectations;
use crate::observe::{MachineStatus, Observations};
use crate::overlay::OverlayStatus;
use crate::seen::Seen;

/// The words of a command that never ran (the transport failed: no exit, no output), if `s`
/// is one. A probe that ran and failed has an exit status or output of its own.
pub fn never_ran<T>(s: &Seen<T>) -> Option<&str> {
    match &s.value {
        Err(e) if s.exit.is_none() && s.excerpt.is_empty() && !s.command.is_empty() => Some(e),
        _ => None,
    }
}

/// One command a machine was asked to run: its command line and, if it never ran, why.
struct Asked<'a> {
    command: &'a str,
    never_ran: Option<&'a str>,
}

fn asked<T>(s: &Seen<T>) -> Option<Asked<'_>> {
    (!s.command.is_empty()).then(|| Asked {
        command: &s.command,
        never_ran: never_ran(s),
    })
}

/// Every command of `st`, in the order the plan sends them.
fn status_commands(st: &MachineStatus) -> Vec<Asked<'_>> {
    let mut v = Vec::new();
    match &st.overlay {
        OverlayStatus::Zerotier(z) => {
            v.extend([asked(&z.info), asked(&z.networks), asked(&z.peers)]);
        }
        OverlayStatus::Yggdrasil(y) => v.extend([asked(&y.me), asked(&y.peers)]),
    }
    v.extend([
        asked(&st.units),
        asked(&st.sshd),
        asked(&st.cert_authorities),
        asked(&st.kernel_params),
        asked(&st.secrets_vars),
    ]);
    v.extend(st.users.values().map(asked));
    v.extend(st.shared.values().map(asked));
    v.extend(st.host_cert.as_ref().map(asked));
    v.into_iter().flatten().collect()
}

/// A machine the harness could not run a single command on.
#[derive(Debug, Clone)]
pub struct Unreachable {
    /// The machine.
    pub machine: String,
    /// The first command it was asked to run.
    pub command: String,
    /// The transport's words.
    pub words: String,
}

impl Unreachable {
    /// How dependents name it: `gcp-vm: the harness cannot reach it (connection refused)`.
    pub fn label(&self) -> String {
        format!(
            "{}: the harness cannot reach it ({})",
            self.machine,
            classify(&self.words).0
        )
    }

    /// The one failing finding that names it.
    pub fn finding(&self, exp: &Expectations) -> Finding {
        let m = &self.machine;
        let (target, user) = exp.config.machine(m).map_or_else(
            || (m.clone(), exp.config.ssh.user.clone()),
            |c| (format!("{}:{}", c.address, c.port), c.user.clone()),
        );
        let mut f = Finding::new(
            Severity::Fail,
            "machine.unreachable",
            m,
            "the harness's SSH session",
        )
        .seen(self.words.clone())
        .expected(format!(
            "the harness logs in to {m} at {target} as {user} and runs its probes"
        ))
        .cause(
            classify(&self.words)
                .1
                .replace("{m}", m)
                .replace("{target}", &target),
        );
        f.command = self.command.clone();
        f
    }
}

/// What a transport error's words say, as (short kind, likely cause with `{m}` and `{target}`
/// to fill in). Each cause follows from the words: a timeout is not a stopped daemon, a local
/// "Network is unreachable" is the workstation's route, not the machine.
pub fn classify(words: &str) -> (&'static str, &'static str) {
    let w = words.to_ascii_lowercase();
    if w.contains("connection refused") {
        ("connection refused", "{target} refused the TCP connection: nothing listens there, so sshd is stopped on {m} or machines.toml names the wrong address or port")
    } else if w.contains("network is unreachable") {
        ("network unreachable", "the workstation has no route to {target} (its own routing table, VPN or network namespace), which says nothing about {m} itself")
    } else if w.contains("no route to host") || w.contains("host is unreachable") {
        ("no route to host", "a router or the local network reported {target} unreachable: {m} is down or off its network, or a firewall rejects the path")
    } else if w.contains("no ssh banner") {
        ("no SSH banner", "{target} accepted TCP but sent no SSH banner: sshd on {m} is hung, or another program holds the port; restart sshd from the console")
    } else if w.contains("ssh handshake with") {
        (
            "SSH handshake stalled",
            "sshd on {m} sent its banner but stalled in the key exchange: it is overloaded or hung",
        )
    } else if w.contains("timed out") || w.contains("os error 110") {
        ("connect timed out", "no answer from {target} before the connect timeout: {m} is down, or a firewall drops SSH on the way (a stopped sshd would refuse, not time out)")
    } else if w.contains("authentication as") {
        ("authentication refused", "{m} refused the harness's key: the login user's authorized_keys on {m} no longer holds the workstation's key (emptied or replaced), or the agent or identity_file holds another key")
    } else if w.contains("host key mismatch") {
        ("host key mismatch", "{m} presents another host key than the clan repo names: reinstalled without its vars host key, or another machine answers at {target}")
    } else if w.contains("no trusted host key") || w.contains("host certificate") {
        ("host not trusted", "the harness has no way to authenticate {m}'s host key (see the words): fix the repo's host key vars or machines.toml's known_hosts")
    } else if w.contains("did not finish within") {
        ("commands timed out", "every command on {m} ran past its deadline: the machine is overloaded or its session hangs")
    } else {
        (
            "transport error",
            "the harness could not run commands on {m}: see the words",
        )
    }
}

/// Machines whose every command, in the observation judged, never ran: the status probes,
/// pings and hops (AC1–AC4, AC6), and the system state read around a rebuild (AC5, AC6).
pub fn unreachable(obs: &Observations) -> BTreeMap<String, Unreachable> {
    let mut out = BTreeMap::new();
    let mut machines: Vec<&String> = obs.status.keys().collect();
    if let Some(r) = &obs.rebuild {
        machines.extend(r.before.keys().chain(r.after.keys()));
    }
    machines.sort();
    machines.dedup();
    for m in machines {
        let mut asked = obs.status.get(m).map(status_commands).unwrap_or_default();
        if let Some(r) = &obs.rebuild {
            asked.extend(
                [r.before.get(m), r.after.get(m)]
                    .into_iter()
                    .flatten()
                    .filter_map(self::asked),
            );
        }
        asked.extend(
            obs.mesh
                .iter()
                .filter(|((a, _), _)| a == m)
                .filter_map(|(_, s)| self::asked(s)),
        );
        asked.extend(
            obs.hops
                .iter()
                .filter(|((a, _), _)| a == m)
                .filter_map(|(_, h)| self::asked(&h.hop)),
        );
        if asked.is_empty() || asked.iter().any(|a| a.never_ran.is_none()) {
            continue;
        }
        // The status probes come first in this list; a later "backing off" repeats the first.
        let root = asked
            .iter()
            .find(|a| !a.never_ran.unwrap_or_default().contains("backing off"))
            .unwrap_or(&asked[0]);
        out.insert(
            m.clone(),
            Unreachable {
                machine: m.clone(),
                command: root.command.to_string(),
                words: root.never_ran.unwrap_or_default().to_string(),
            },
        );
    }
    out
}

/// Folds repeated failures into one root each: a finding made from a command that never ran on
/// an unreachable machine becomes an UNCHECKED dependent of that machine's one
/// `machine.unreachable` failure; of several `probe.failed` findings on one machine with the
/// same words, the first stays the failure and the others depend on it.
pub fn fold(exp: &Expectations, obs: &Observations, findings: Vec<Finding>) -> Vec<Finding> {
    let mut down = unreachable(obs);
    if let Some(after) = &obs.after_rebuild {
        down.extend(unreachable(after));
    }
    let mut used: Vec<&Unreachable> = Vec::new();
    let mut roots: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut out = Vec::with_capacity(findings.len());
    for f in findings {
        let ran_not = f.exit.is_none() && !f.command.is_empty();
        if let (Severity::Fail | Severity::Warn | Severity::Unchecked, true, Some(u)) =
            (f.severity, ran_not, down.get(&f.machine))
        {
            if !used.iter().any(|x| x.machine == u.machine) {
                used.push(u);
            }
            out.push(f.depends_on(u.label()));
            continue;
        }
        if f.severity == Severity::Fail && f.code == "probe.failed" {
            let key = (f.machine.clone(), f.seen.clone());
            if let Some(root) = roots.get(&key) {
                out.push(f.depends_on(root.clone()));
                continue;
            }
            let exit = f
                .exit
                .map_or("no exit".to_string(), |e| format!("exit {e}"));
            let root = if f.command.is_empty() {
                format!("{}: {}", f.machine, f.subject)
            } else {
                format!("{}: `{}` ({exit})", f.machine, f.command)
            };
            roots.insert(key, root);
        }
        out.push(f);
    }
    out.extend(used.into_iter().map(|u| u.finding(exp)));
    out
}
