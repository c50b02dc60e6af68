//! One monitor round: per machine, on its own session and in parallel with the others, the
//! overlay's status, a journal scan, pings to every peer and the SSH hop over each path whose
//! pings passed. Every command is timed and its transport error kept as such, so the round
//! tells what the machines saw (a ping that ran and lost its echoes) from what the harness could
//! not ask (its session stalled, dropped or was refused: an observer gap).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::session::SessionSample;
use super::{HopSample, MachineSample, PairSample, Round};
use crate::fleet::Fleet;
use crate::plan::{Needs, Plan, Probe, Step};
use crate::probe::ping::parse_ping;
use crate::probe::ssh::{parse_hop, HopClass};
use crate::seen::Seen;
use crate::transport::{Cmd, Output};

/// `journalctl -o json` (parsed by `probe::journal`) for the overlay daemon and sshd since a
/// time; says when the machine has no journal of its own (no journald socket: a machine without
/// systemd). Only the fields the monitor reads are asked for.
const JOURNAL_SCRIPT: &str = r#"since="$1"; shift
if ! command -v journalctl >/dev/null 2>&1 || ! [ -S /run/systemd/journal/socket ]; then echo "__no_journal__"; exit 0; fi
out=$(journalctl --no-pager -q -o json --all --output-fields=MESSAGE,PRIORITY,SYSLOG_IDENTIFIER,SYSLOG_PID,_COMM,_PID,_HOSTNAME,_SYSTEMD_UNIT -p warning --since "@$since" $(for u in "$@"; do printf -- '-u %s ' "$u"; done) 2>&1)
said=$(printf '%s\n' "$out" | grep -v '^{')
case "$said" in *"No journal files were found"*|*"No such file or directory"*) echo "__no_journal__" ;; *) printf '%s\n' "$out" | grep -v -e '^-- No entries --' -e '^$' | head -n 50 || true ;; esac"#;

/// The journal scan of a round: warnings and worse of the watched units and sshd since `since`
/// (epoch seconds).
pub fn journal_cmd(fleet: &Fleet, since: f64) -> Cmd {
    let mut units = crate::plan::watched_units(&fleet.expect);
    units.push("sshd.service".into());
    Cmd::sh(JOURNAL_SCRIPT)
        .arg(format!("{}", since.floor() as u64))
        .args(units)
}

/// What one machine's session gave in a round.
struct Seen1 {
    machine: MachineSample,
    pairs: Vec<PairSample>,
    hops: Vec<HopSample>,
    /// The longest the harness waited on one call there (what a reconnect cost).
    slowest: Duration,
}

/// The harness's calls on one machine's session: each timed, each transport failure recorded.
struct Session<'a> {
    fleet: &'a Fleet,
    machine: &'a str,
    sample: SessionSample,
    slowest: Duration,
}

impl Session<'_> {
    fn deadline(&self, cmd: &Cmd) -> Duration {
        cmd.deadline()
            .unwrap_or(self.fleet.expect.config.ssh.command_timeout)
    }

    fn run(&mut self, what: &str, cmd: &Cmd) -> Option<Output> {
        let t = Instant::now();
        let r = self.fleet.run(self.machine, cmd);
        let waited = t.elapsed();
        self.slowest = self.slowest.max(waited);
        match r {
            Ok(o) => Some(o),
            Err(e) => {
                let deadline = self.deadline(cmd);
                self.sample.failed(what, &e, waited, deadline);
                None
            }
        }
    }

    /// Runs `steps` in one round trip; an answer per step, or None where it could not run.
    fn run_many(&mut self, steps: &[&Step], what: impl Fn(&Step) -> String) -> Vec<Option<Output>> {
        let cmds: Vec<Cmd> = steps.iter().map(|s| s.cmd.clone()).collect();
        let t = Instant::now();
        let outs = self.fleet.run_many(self.machine, &cmds);
        let waited = t.elapsed();
        self.slowest = self.slowest.max(waited);
        outs.into_iter()
            .zip(steps)
            .map(|(r, step)| match r {
                Ok(o) => Some(o),
                Err(e) => {
                    let deadline = self.deadline(&step.cmd);
                    self.sample.failed(&what(step), &e, waited, deadline);
                    None
                }
            })
            .collect()
    }
}

fn targets<'a>(plan: &'a Plan, m: &str, hop: bool) -> Vec<(&'a str, &'a Step)> {
    plan.machines
        .get(m)
        .into_iter()
        .flatten()
        .filter_map(|s| match &s.probe {
            Probe::Ping(to) if !hop => Some((to.as_str(), s)),
            Probe::Hop(to) if hop => Some((to.as_str(), s)),
            _ => None,
        })
        .collect()
}

fn ping_sample(from: &str, to: &str, step: &Step, out: Option<Output>) -> PairSample {
    let mut p = PairSample {
        from: from.into(),
        to: to.into(),
        loss: 100.0,
        rtt_avg: None,
        rtt_max: None,
        error: None,
        observer_gap: false,
    };
    let Some(out) = out else {
        p.observer_gap = true;
        p.error = Some(format!(
            "not observed: the harness's session to {from} failed, the ping did not run"
        ));
        return p;
    };
    // Parsed as the checks parse it (output holding a secret is withheld, not parsed).
    let seen = Seen::of(&step.cmd, Ok(out), |o| Ok(parse_ping(&o.combined())));
    match seen.value {
        Ok(Ok(s)) => {
            p.loss = s.loss_percent;
            p.rtt_avg = s.rtt.map(|r| r.avg);
            p.rtt_max = s.rtt.map(|r| r.max);
        }
        Ok(Err(e)) => p.error = Some(e.to_string()),
        Err(e) => p.error = Some(e),
    }
    p
}

fn hop_sample(from: &str, to: &str, out: Option<Output>) -> HopSample {
    let (ok, detail, observer_gap) = match out {
        None => (
            false,
            format!("not observed: the harness's session to {from} failed, the hop did not run"),
            true,
        ),
        Some(o) => {
            let hostname = o.stdout.trim().to_string();
            let hop = parse_hop(&o.stderr, o.exit);
            if hop.class == HopClass::CertificateVerified && hostname == to {
                (true, "certificate verified".to_string(), false)
            } else {
                (
                    false,
                    format!("{:?}, hostname {hostname:?}", hop.class),
                    false,
                )
            }
        }
    };
    HopSample {
        from: from.into(),
        to: to.into(),
        ok,
        detail,
        observer_gap,
    }
}

/// One machine's part of the round.
fn machine(fleet: &Fleet, plan: &Plan, m: &str, since: f64) -> Seen1 {
    let mut s = Session {
        fleet,
        machine: m,
        sample: SessionSample::default(),
        slowest: Duration::ZERO,
    };
    let mut sample = MachineSample::default();
    let overlay = fleet.expect.config.overlay;
    match s.run("overlay status", &overlay.monitor_cmd()) {
        Some(out) => {
            sample.reachable = true;
            sample.overlay = overlay.monitor_status(&out);
        }
        None => sample.overlay = "not observed".into(),
    }
    if sample.reachable {
        match s.run("journal scan", &journal_cmd(fleet, since)) {
            Some(out) if out.stdout.trim() == "__no_journal__" => sample.journal_absent = true,
            Some(out) => {
                sample.journal = crate::probe::journal::parse(&out.stdout)
                    .iter()
                    .take(50)
                    .map(crate::probe::journal::Line::text)
                    .collect()
            }
            None => {}
        }
    }
    // Pings run even after a failed status: the session may answer again (reconnected).
    let pings = targets(plan, m, false);
    let steps: Vec<&Step> = pings.iter().map(|(_, s)| *s).collect();
    let outs = s.run_many(&steps, |st| match &st.probe {
        Probe::Ping(to) => format!("ping → {to}"),
        _ => String::new(),
    });
    let pairs: Vec<PairSample> = pings
        .iter()
        .zip(outs)
        .map(|((to, step), out)| ping_sample(m, to, step, out))
        .collect();
    // Hops only over paths that just passed their pings: the others could only time out.
    let up = |to: &str| {
        pairs
            .iter()
            .any(|p| p.to == to && p.loss == 0.0 && p.error.is_none())
    };
    let mut hops = Vec::new();
    let mut run = Vec::new();
    for (to, step) in targets(plan, m, true) {
        if up(to) {
            run.push((to, step));
        } else {
            let gap = pairs.iter().any(|p| p.to == to && p.observer_gap);
            hops.push(HopSample {
                from: m.into(),
                to: to.into(),
                ok: false,
                detail: if gap {
                    format!(
                        "not observed: the harness's session to {m} failed, the hop did not run"
                    )
                } else {
                    "skipped: the overlay path failed its pings in this round".into()
                },
                observer_gap: gap,
            });
        }
    }
    let steps: Vec<&Step> = run.iter().map(|(_, s)| *s).collect();
    let outs = s.run_many(&steps, |st| match &st.probe {
        Probe::Hop(to) => format!("ssh hop → {to}"),
        _ => String::new(),
    });
    hops.extend(
        run.iter()
            .zip(outs)
            .map(|((to, _), out)| hop_sample(m, to, out)),
    );
    sample.session = Some(s.sample);
    Seen1 {
        machine: sample,
        pairs,
        hops,
        slowest: s.slowest,
    }
}

/// Runs one round across the fleet.
pub fn round(fleet: &Fleet, n: u64, since: f64, for_secs: f64, every_secs: f64) -> Round {
    let start = Instant::now();
    let ts = super::now();
    let before = fleet.reconnects();
    let plan = Plan::new(
        &fleet.expect,
        Needs {
            pings: true,
            hops: true,
            ..Needs::default()
        },
    );
    let mut seen = fleet.each(|m| machine(fleet, &plan, m, since));
    let after = fleet.reconnects();
    let reconnects: Vec<String> = after
        .iter()
        .filter(|(m, n)| before.get(*m).is_some_and(|b| *n > b))
        .map(|(m, _)| m.clone())
        .collect();
    let mut pairs = Vec::new();
    let mut hops = Vec::new();
    let mut machines = BTreeMap::new();
    for (m, mut s) in std::mem::take(&mut seen) {
        if let Some(sess) = s.machine.session.as_mut() {
            // Re-established and then answered: what the reconnect cost is the longest call.
            if !sess.state.is_gap() && reconnects.contains(&m) {
                sess.state = super::session::SessionState::Reconnected;
                sess.waited = Some((s.slowest.as_secs_f64() * 10.0).round() / 10.0);
            }
        }
        pairs.append(&mut s.pairs);
        hops.append(&mut s.hops);
        machines.insert(m, s.machine);
    }
    // Pairs the plan has no ping for (no overlay address in the repo) are said, not dropped.
    for a in fleet.machines() {
        for b in fleet.machines().into_iter().filter(|b| *b != a) {
            if !pairs.iter().any(|p| p.from == a && p.to == b) {
                pairs.push(PairSample {
                    from: a.into(),
                    to: b.into(),
                    loss: 100.0,
                    rtt_avg: None,
                    rtt_max: None,
                    error: Some(format!("no overlay address for {b} in the clan repo")),
                    observer_gap: false,
                });
            }
        }
    }
    pairs.sort_by(|x, y| (&x.from, &x.to).cmp(&(&y.from, &y.to)));
    hops.sort_by(|x, y| (&x.from, &x.to).cmp(&(&y.from, &y.to)));
    let errors = errors(&machines, &pairs, &hops);
    // Remote texts are withheld here, once, before the round is logged or shown.
    Round {
        round: n,
        ts,
        secs: start.elapsed().as_secs_f64(),
        for_secs,
        every_secs,
        pairs,
        hops,
        machines,
        errors,
        reconnects,
    }
    .redacted()
}

/// The round's error lines: what the machines themselves showed to be wrong (overlay status,
/// journal, lost echoes, failed hops). What the harness could not ask is not an error of the
/// fleet: it is in each machine's `session`.
fn errors(
    machines: &BTreeMap<String, MachineSample>,
    pairs: &[PairSample],
    hops: &[HopSample],
) -> Vec<String> {
    let mut errors = Vec::new();
    for (m, s) in machines {
        if s.reachable && s.overlay != "ok" {
            errors.push(format!("{m}: overlay: {}", s.overlay));
        }
        errors.extend(s.journal.iter().map(|l| format!("{m}: journal: {l}")));
    }
    for p in pairs.iter().filter(|p| !p.observer_gap) {
        if p.loss > 0.0 || p.error.is_some() {
            errors.push(format!(
                "{} → {}: {}% loss{}",
                p.from,
                p.to,
                p.loss,
                p.error
                    .as_ref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ));
        }
    }
    // A hop skipped because its path failed is the pings' failure, already said above.
    for h in hops
        .iter()
        .filter(|h| !h.ok && !h.observer_gap && !h.detail.starts_with("skipped:"))
    {
        errors.push(format!("ssh {} → {}: {}", h.from, h.to, h.detail));
    }
    errors
}

/// Used by the legacy reader: a transport error's text for a machine.
pub(super) fn is_transport_error(machine: &str, text: &str) -> bool {
    // Every remote transport error names its machine first (`gcp-vm: …`); the old monitor
    // wrote `gcp-vm not reached over SSH: …` for pings from an unreached machine.
    text.starts_with(&format!("{machine}: "))
        || text.starts_with(&format!("{machine} not reached over SSH"))
}
