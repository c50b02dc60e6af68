//! Runs a [`Plan`] on the fleet, one batch per machine and machines in parallel, and returns typed
//! [`Observations`] with each command and exit status kept so a verdict can quote them. The one
//! follow-up round trip is the host certificate whose path `sshd -T` names.

pub mod machine;

use std::collections::BTreeMap;

use crate::expectations::Expectations;
use crate::fleet::Fleet;
use crate::overlay;
use crate::plan::{self, Plan, Probe, Step};
use crate::probe::ping::{parse_ping, PingError, PingSummary};
use crate::probe::ssh::{parse_client_view, parse_hop, ClientView, Hop};
use crate::rebuild::RebuildRound;
use crate::transport::{Cmd, Output};

pub use crate::seen::Seen;
pub use machine::MachineStatus;

/// A ping from one machine to another's overlay address.
pub type PingSeen = Seen<Result<PingSummary, PingError>>;

/// An SSH hop from A to B's overlay address, run by A's own OpenSSH client.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HopSeen {
    /// The hop.
    pub hop: Seen<Hop>,
    /// What `hostname` printed.
    pub hostname: String,
}

/// Everything seen in one observation of the fleet (what the plan asked for).
#[derive(Debug, Clone, Default)]
pub struct Observations {
    /// Per machine status (AC1–AC4).
    pub status: BTreeMap<String, MachineStatus>,
    /// Pings over every ordered pair (AC1).
    pub mesh: BTreeMap<(String, String), PingSeen>,
    /// SSH hops over every ordered pair (AC2).
    pub hops: BTreeMap<(String, String), HopSeen>,
    /// Each machine as an SSH client, observed with its hops: its clock and the CA lines of
    /// the known_hosts files the hop reads (AC2).
    pub clients: BTreeMap<String, Seen<ClientView>>,
    /// The rebuilds and the system state around them (AC5, AC6).
    pub rebuild: Option<RebuildRound>,
    /// AC1–AC3's observations made again after the rebuild (AC6).
    pub after_rebuild: Option<Box<Observations>>,
    /// For an observation made after a rebuild: how long the mesh took to form again.
    pub settled: Option<Settled>,
}

/// How the wait for the mesh after AC6's rebuild ended.
#[derive(Debug, Clone)]
pub struct Settled {
    /// AC1 passed on the last observation.
    pub formed: bool,
    /// Members that still held other network settings than the controller serves at the last
    /// observation (ZeroTier), and how long after the mesh had formed AC6 waited for them.
    pub pending: Vec<String>,
    /// From the mesh forming to the last observation.
    pub arrival: std::time::Duration,
    /// Replayed from a cassette: the times are the replay's, not the fleet's.
    pub replayed: bool,
    /// From the first observation after the rebuild to the start of the last.
    pub waited: std::time::Duration,
    /// Observations made.
    pub attempts: u32,
    /// `[rebuild] settle_secs`.
    pub limit: std::time::Duration,
}

impl Settled {
    /// When AC6 stopped waiting, in words (a replay has no times of its own).
    pub fn when(&self) -> String {
        if self.replayed {
            format!("by the last of {} recorded observations", self.attempts)
        } else {
            format!("{:.0} s after the rebuild", self.waited.as_secs_f64())
        }
    }

    /// The line AC6's verdict prints.
    pub fn note(&self) -> String {
        let (secs, n) = (self.waited.as_secs_f64(), self.attempts);
        if self.formed && !self.pending.is_empty() {
            return format!(
                "after the rebuild the mesh formed again, but the changed network setting had still not reached {} {} ({n} observations): the findings are the last observation's",
                self.pending.join(", "),
                self.when()
            );
        }
        if self.formed && n > 1 && self.replayed {
            return format!("after the rebuild the mesh formed again and the changed network setting reached every member by the last of {n} recorded observations");
        }
        if self.formed && self.arrival > std::time::Duration::ZERO {
            return format!("after the rebuild the mesh formed again and the changed network setting reached every member within {secs:.1} s ({n} observations)");
        }
        match (self.formed, n) {
            (true, 1) => "after the rebuild the mesh was up at the first observation".into(),
            (true, _) => format!("after the rebuild the mesh formed again within {secs:.1} s ({n} observations)"),
            (false, _) => format!(
                "after the rebuild the mesh had not formed again after {secs:.1} s ({n} observations; [rebuild] settle_secs = {}): the findings are the last observation's",
                self.limit.as_secs()
            ),
        }
    }
}

/// What one machine answered to its part of the plan.
struct Answers {
    status: Option<MachineStatus>,
    pings: Vec<(String, PingSeen)>,
    hops: Vec<(String, HopSeen)>,
    client: Option<Seen<ClientView>>,
}

/// Runs `plan` on every machine in parallel: one round trip per machine (pings first: their
/// clock, count × interval, is the floor of the whole run; the remote side runs the batch
/// concurrently), plus the host certificate follow-up.
pub fn observe(fleet: &Fleet, plan: &Plan) -> Observations {
    let exp = &fleet.expect;
    let answers = fleet.each(|m| {
        let steps: Vec<&Step> = plan
            .machines
            .get(m)
            .map(|s| s.iter().collect())
            .unwrap_or_default();
        let mut order: Vec<&Step> = steps
            .iter()
            .copied()
            .filter(|s| matches!(s.probe, Probe::Ping(_)))
            .collect();
        order.extend(
            steps
                .iter()
                .copied()
                .filter(|s| matches!(s.probe, Probe::Hop(_) | Probe::ClientView)),
        );
        order.extend(steps.iter().copied().filter(|s| s.probe.is_status()));
        let cmds: Vec<Cmd> = order.iter().map(|s| s.cmd.clone()).collect();
        let outs = fleet.run_many(m, &cmds);
        let results: Vec<(&Step, Result<Output, String>)> = order
            .into_iter()
            .zip(outs.into_iter().map(|r| r.map_err(|e| e.to_string())))
            .collect();
        answers(exp, fleet, m, results)
    });
    let mut obs = Observations::default();
    for (m, a) in answers {
        if let Some(st) = a.status {
            obs.status.insert(m.clone(), st);
        }
        for (to, p) in a.pings {
            obs.mesh.insert((m.clone(), to), p);
        }
        for (to, h) in a.hops {
            obs.hops.insert((m.clone(), to), h);
        }
        if let Some(c) = a.client {
            obs.clients.insert(m.clone(), c);
        }
    }
    // Pairs the plan could not include are said, not dropped.
    for a in exp.machines() {
        for b in exp.machines().into_iter().filter(|b| *b != a) {
            let key = (a.to_string(), b.to_string());
            let why = || match overlay::expected_address(exp, b) {
                None => format!("no overlay address for {b} in the clan repo"),
                Some(_) => "skipped: not in this round's plan".to_string(),
            };
            if plan.needs.pings && !obs.mesh.contains_key(&key) {
                obs.mesh.insert(key.clone(), Seen::not_run(why()));
            }
            if plan.needs.hops && !obs.hops.contains_key(&key) {
                obs.hops.insert(
                    key,
                    HopSeen {
                        hop: Seen::not_run(why()),
                        hostname: String::new(),
                    },
                );
            }
        }
    }
    obs
}

fn answers(
    exp: &Expectations,
    fleet: &Fleet,
    m: &str,
    results: Vec<(&Step, Result<Output, String>)>,
) -> Answers {
    let mut pings = Vec::new();
    let mut hops = Vec::new();
    let mut client = None;
    let mut status = Vec::new();
    for (step, r) in results {
        match &step.probe {
            Probe::Ping(to) => pings.push((
                to.clone(),
                Seen::of(&step.cmd, r, |o| Ok(parse_ping(&o.combined()))),
            )),
            Probe::Hop(to) => hops.push((to.clone(), hop_seen(&step.cmd, r))),
            Probe::ClientView => {
                client = Some(Seen::of(&step.cmd, r, |o| {
                    if o.success() {
                        parse_client_view(&o.stdout).map_err(|e| e.to_string())
                    } else {
                        Err(format!(
                            "the client view script {}: {}",
                            o.exit.map_or_else(
                                || "ended without an exit status".into(),
                                |c| format!("exited {c}")
                            ),
                            crate::redact::excerpt(&o.stderr, 200)
                        ))
                    }
                }))
            }
            _ => status.push((step, r)),
        }
    }
    let status = (!status.is_empty()).then(|| {
        machine::read(exp, status, |cmd| {
            fleet.run(m, cmd).map_err(|e| e.to_string())
        })
    });
    Answers {
        status,
        pings,
        hops,
        client,
    }
}

/// The hop's evidence: `ssh -v`'s stderr without its `debug` lines as the excerpt.
fn hop_seen(cmd: &Cmd, r: Result<Output, String>) -> HopSeen {
    let hostname = r
        .as_ref()
        .map(|o| o.stdout.trim().to_string())
        .unwrap_or_default();
    let hop = Seen::with_excerpt(
        cmd,
        r,
        |o| {
            crate::redact::excerpt(
                &o.stderr
                    .lines()
                    .filter(|l| !l.starts_with("debug"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                300,
            )
        },
        |o| Ok(parse_hop(&o.stderr, o.exit)),
    );
    HopSeen { hop, hostname }
}

/// Observes what `criteria` need on the whole fleet (the plan made here).
pub fn observe_for(fleet: &Fleet, needs: plan::Needs) -> Observations {
    observe(fleet, &Plan::new(&fleet.expect, needs))
}
