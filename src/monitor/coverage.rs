//! Coverage per machine: stretches of rounds in which the harness could not ask a machine (its
//! own session stalled, dropped or was refused). Such a stretch is a gap in what was observed,
//! not an overlay outage: it breaks AC7's coverage rule only when the machine went unobserved
//! for longer than the rule allows, and what the other machines saw of it meanwhile (their pings
//! to it) is kept as evidence.

use serde::Serialize;

use super::session::SessionSample;
use super::Round;

/// Consecutive rounds in which the harness could not ask one machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObserverGap {
    /// The machine.
    pub machine: String,
    /// First such round.
    pub first_round: u64,
    /// Its start (epoch s).
    pub start: f64,
    /// The next round that observed the machine, or the last gap round's end.
    pub end: f64,
    /// Still unobserved at the end of the log.
    pub ongoing: bool,
    /// Rounds in the stretch.
    pub rounds: u64,
    /// What the harness saw of its session in the first of them.
    pub session: SessionSample,
    /// Time without a round observing the machine: from the last one before the stretch (or
    /// the stretch's start) to the first one after it (or the log's end).
    pub unobserved: f64,
    /// The longest the coverage rule allows here (see [`allowed`]).
    pub allowed: f64,
    /// `unobserved` is longer than `allowed`.
    pub breaks_coverage: bool,
    /// Pings to the machine from machines the harness did reach, in these rounds: answered.
    pub pings_to_answered: u64,
    /// ... and failed.
    pub pings_to_failed: u64,
}

/// The longest time a machine may go unobserved, as the fleet's own gap rule bounds the time
/// between rounds: two intervals, or two of the slowest round around the stretch when it outlasted
/// the interval (a round that waited on a stalled session starts the next one late), plus half an
/// interval of slack for the jitter of round starts. One round in which the harness's session to
/// a machine stalled stays within it; two in a row do not.
pub fn allowed(every: f64, slowest_round: f64) -> f64 {
    2.0 * every.max(slowest_round) + 0.5 * every
}

/// Every machine's unobserved stretches, in time order.
pub fn observer_gaps(rounds: &[Round]) -> Vec<ObserverGap> {
    let every = rounds.first().map_or(0.0, |r| r.every_secs);
    let log_end = rounds.last().map_or(0.0, |r| r.ts + r.secs);
    let mut machines: Vec<&String> = rounds.iter().flat_map(|r| r.machines.keys()).collect();
    machines.sort();
    machines.dedup();
    let mut out = Vec::new();
    for m in machines {
        let mut open: Option<ObserverGap> = None;
        let mut last_seen: Option<(f64, f64)> = None;
        let mut slowest = 0.0_f64;
        for r in rounds {
            let gap = r.observer_gaps().into_iter().find(|(g, _)| g == m);
            match (gap, open.as_mut()) {
                (Some((_, session)), None) => {
                    slowest = last_seen.map_or(0.0, |(_, secs)| secs);
                    open = Some(ObserverGap {
                        machine: m.clone(),
                        first_round: r.round,
                        start: r.ts,
                        end: r.ts + r.secs,
                        ongoing: true,
                        rounds: 0,
                        session,
                        unobserved: 0.0,
                        allowed: 0.0,
                        breaks_coverage: false,
                        pings_to_answered: 0,
                        pings_to_failed: 0,
                    });
                }
                (Some(_), Some(_)) => {}
                (None, Some(g)) => {
                    g.end = r.ts;
                    g.ongoing = false;
                    g.unobserved = r.ts - last_seen.map_or(g.start, |(ts, _)| ts);
                    g.allowed = allowed(every, slowest);
                    out.push(open.take());
                }
                (None, None) => {}
            }
            if let Some(g) = open.as_mut() {
                slowest = slowest.max(r.secs);
                g.rounds += 1;
                g.end = r.ts + r.secs;
                for p in r
                    .pairs
                    .iter()
                    .filter(|p| &p.to == m && !r.pair_unobserved(p))
                {
                    if p.loss == 0.0 && p.error.is_none() {
                        g.pings_to_answered += 1;
                    } else {
                        g.pings_to_failed += 1;
                    }
                }
            } else {
                last_seen = Some((r.ts, r.secs));
            }
        }
        if let Some(mut g) = open {
            g.unobserved = log_end - last_seen.map_or(g.start, |(ts, _)| ts);
            g.allowed = allowed(every, slowest);
            out.push(Some(g));
        }
    }
    let mut gaps: Vec<ObserverGap> = out.into_iter().flatten().collect();
    for g in &mut gaps {
        g.breaks_coverage = g.unobserved > g.allowed + 1e-6;
    }
    gaps.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.machine.cmp(&b.machine)));
    gaps
}
