//! What a monitor log says: coverage, gaps, disconnections per direction (start, end,
//! duration), loss and RTT percentiles per direction, checkpoints. Pure: rounds in, summary out.

use std::collections::BTreeMap;

use serde::Serialize;

pub use super::coverage::{allowed, ObserverGap};
use super::Round;

/// A stretch of consecutive bad rounds for one direction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outage {
    /// Source.
    pub from: String,
    /// Destination.
    pub to: String,
    /// First bad round's start (epoch s).
    pub start: f64,
    /// First good round's start after it, or the last bad round's end if it never recovered.
    pub end: f64,
    /// Still down at the end of the log.
    pub ongoing: bool,
    /// Bad rounds.
    pub rounds: u64,
    /// What the first bad round saw.
    pub first: String,
    /// Least and largest loss of its rounds (%): below 100 throughout, echoes still got through.
    pub loss: [f64; 2],
    /// Its rounds in which the reverse direction (`to` → `from`) ran and answered.
    pub reverse_answered: u64,
    /// Its rounds in which the harness's own session to `to` failed too.
    pub target_unobserved: u64,
    /// Overlay status of either machine that was not `ok` during it (first per machine).
    pub status: Vec<String>,
}

/// Per direction statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Direction {
    /// Source.
    pub from: String,
    /// Destination.
    pub to: String,
    /// Rounds with a measurement.
    pub samples: u64,
    /// Rounds in which the ping did not run: the harness could not ask `from` (observer gap).
    pub unobserved: u64,
    /// Rounds with loss or an error.
    pub bad_rounds: u64,
    /// Mean loss (%).
    pub mean_loss: f64,
    /// RTT percentiles of the per-round averages (ms): p50, p95, p99, max.
    pub rtt: Option<[f64; 4]>,
}

/// A time without rounds longer than two intervals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gap {
    /// Last round before it.
    pub after: f64,
    /// First round after it.
    pub until: f64,
}

/// A checkpoint (0, ¼, ½, ¾ and the whole span: hours 0/6/12/18/24 of a day).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checkpoint {
    /// Offset from the start (s).
    pub offset: f64,
    /// The round covering it (within one interval), if any.
    pub round: Option<u64>,
}

/// The whole log, summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Rounds.
    pub rounds: u64,
    /// First round start.
    pub start: f64,
    /// Last round end.
    pub end: f64,
    /// Interval the log was planned with.
    pub every: f64,
    /// Span required of it.
    pub required: f64,
    /// Span the monitor was started for (`--for`, its first round's plan).
    pub planned: f64,
    /// Checkpoints.
    pub checkpoints: Vec<Checkpoint>,
    /// Gaps.
    pub gaps: Vec<Gap>,
    /// Disconnections: failed pings from machines the harness did ask.
    pub outages: Vec<Outage>,
    /// Stretches in which the harness could not ask a machine (not disconnections).
    pub observer_gaps: Vec<ObserverGap>,
    /// Per direction.
    pub directions: Vec<Direction>,
    /// Rounds with errors other than a pair's loss (journal, SSH hop, overlay status), first line each.
    pub error_rounds: Vec<(u64, f64, String)>,
    /// Rounds where a session was re-established.
    pub reconnects: Vec<(u64, Vec<String>)>,
    /// Machines without a journal of their own (the scan could not run there).
    pub journal_absent: Vec<String>,
}

impl Summary {
    /// end - start.
    pub fn span(&self) -> f64 {
        self.end - self.start
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Per direction while summarising.
#[derive(Default)]
struct Tally {
    samples: u64,
    unobserved: u64,
    bad: u64,
    loss: f64,
    rtts: Vec<f64>,
}

/// An error line that is the harness's own trouble in a log written before sessions were
/// recorded: an unreached machine, a skipped hop, a journal scan or hop the transport failed.
fn legacy_observer_line(r: &Round, e: &str) -> bool {
    let gapped: Vec<String> = r.observer_gaps().into_iter().map(|(m, _)| m).collect();
    let of_gapped = |m: &str| gapped.iter().any(|g| g == m);
    if let Some(rest) = e.strip_prefix("ssh ") {
        let (from, detail) = rest
            .split_once(" → ")
            .and_then(|(f, t)| Some((f, t.split_once(": ")?.1)))
            .unwrap_or(("", ""));
        return detail.starts_with("skipped:") || super::collect::is_transport_error(from, detail);
    }
    match e.split_once(": ") {
        Some((m, rest)) if of_gapped(m) => {
            rest.starts_with("not reached: ") || rest.starts_with("journal: journal scan failed: ")
        }
        _ => false,
    }
}

/// Adds a bad round of `p` to its open outage (opened at this round if none).
fn extend_outage(open: &mut BTreeMap<(String, String), Outage>, r: &Round, p: &super::PairSample) {
    let o = open
        .entry((p.from.clone(), p.to.clone()))
        .or_insert_with(|| Outage {
            from: p.from.clone(),
            to: p.to.clone(),
            start: r.ts,
            end: r.ts + r.secs,
            ongoing: true,
            rounds: 0,
            first: p
                .error
                .clone()
                .unwrap_or_else(|| format!("{}% loss", p.loss)),
            loss: [p.loss, p.loss],
            reverse_answered: 0,
            target_unobserved: 0,
            status: Vec::new(),
        });
    o.rounds += 1;
    o.end = r.ts + r.secs;
    o.loss = [o.loss[0].min(p.loss), o.loss[1].max(p.loss)];
    let reverse = r
        .pairs
        .iter()
        .find(|q| q.from == p.to && q.to == p.from && !r.pair_unobserved(q));
    if reverse.is_some_and(|q| q.loss == 0.0 && q.error.is_none()) {
        o.reverse_answered += 1;
    }
    if r.session(&p.to).is_some_and(|s| s.state.is_gap()) {
        o.target_unobserved += 1;
    }
    for m in [&p.from, &p.to] {
        if let Some(s) = r
            .machines
            .get(m)
            .filter(|s| s.reachable && s.overlay != "ok")
        {
            if !o.status.iter().any(|x| x.starts_with(&format!("{m}: "))) {
                o.status.push(format!("{m}: {}", s.overlay));
            }
        }
    }
}

/// Summarises rounds (in log order) against a required span.
pub fn summarize(rounds: &[Round], required: f64) -> Summary {
    let start = rounds.first().map_or(0.0, |r| r.ts);
    let end = rounds.last().map_or(0.0, |r| r.ts + r.secs);
    let every = rounds.first().map_or(0.0, |r| r.every_secs);
    let mut gaps = Vec::new();
    for w in rounds.windows(2) {
        if w[1].ts - w[0].ts > 2.0 * every.max(w[0].secs) {
            gaps.push(Gap {
                after: w[0].ts,
                until: w[1].ts,
            });
        }
    }
    let checkpoints = [0.0, 0.25, 0.5, 0.75, 1.0]
        .iter()
        .map(|f| {
            let offset = f * required;
            let at = start + offset;
            let round = rounds
                .iter()
                .filter(|r| (r.ts - at).abs() <= every + 1e-6)
                .min_by(|a, b| (a.ts - at).abs().total_cmp(&(b.ts - at).abs()))
                .map(|r| r.round);
            Checkpoint { offset, round }
        })
        .collect();
    let mut outages = Vec::new();
    let mut open: BTreeMap<(String, String), Outage> = BTreeMap::new();
    let mut stats: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut error_rounds = Vec::new();
    let mut reconnects = Vec::new();
    let mut journal_absent: Vec<String> = Vec::new();
    for r in rounds {
        for p in &r.pairs {
            let key = (p.from.clone(), p.to.clone());
            let st = stats.entry(key.clone()).or_default();
            // Not observed is not evidence either way: an open outage stays open over it.
            if r.pair_unobserved(p) {
                st.unobserved += 1;
                continue;
            }
            st.samples += 1;
            st.loss += p.loss;
            if let Some(a) = p.rtt_avg {
                st.rtts.push(a);
            }
            if p.loss > 0.0 || p.error.is_some() {
                st.bad += 1;
                extend_outage(&mut open, r, p);
            } else if let Some(mut o) = open.remove(&key) {
                o.end = r.ts;
                o.ongoing = false;
                outages.push(o);
            }
        }
        let other: Vec<&String> = r
            .errors
            .iter()
            .filter(|e| {
                !r.pairs
                    .iter()
                    .any(|p| e.starts_with(&format!("{} → {}:", p.from, p.to)))
                    && !legacy_observer_line(r, e)
            })
            .collect();
        if let Some(first) = other.first() {
            error_rounds.push((r.round, r.ts, (*first).clone()));
        }
        if !r.reconnects.is_empty() {
            reconnects.push((r.round, r.reconnects.clone()));
        }
        for (m, ms) in &r.machines {
            if ms.journal_absent && !journal_absent.contains(m) {
                journal_absent.push(m.clone());
            }
        }
    }
    outages.extend(open.into_values());
    outages.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.from.cmp(&b.from)));
    let directions = stats
        .into_iter()
        .map(|((from, to), t)| {
            let mut rtts = t.rtts;
            rtts.sort_by(f64::total_cmp);
            let n = t.samples;
            Direction {
                from,
                to,
                samples: n,
                unobserved: t.unobserved,
                bad_rounds: t.bad,
                mean_loss: if n > 0 { t.loss / n as f64 } else { 0.0 },
                rtt: (!rtts.is_empty()).then(|| {
                    [
                        percentile(&rtts, 50.0),
                        percentile(&rtts, 95.0),
                        percentile(&rtts, 99.0),
                        percentile(&rtts, 100.0),
                    ]
                }),
            }
        })
        .collect();
    Summary {
        rounds: rounds.len() as u64,
        start,
        end,
        every,
        required,
        planned: rounds.first().map_or(0.0, |r| r.for_secs),
        checkpoints,
        gaps,
        outages,
        observer_gaps: super::coverage::observer_gaps(rounds),
        directions,
        error_rounds,
        reconnects,
        journal_absent,
    }
}

/// Seconds as `1h02m03s`.
pub fn dur(s: f64) -> String {
    let t = s.max(0.0).round() as u64;
    match t {
        t if t >= 3600 => format!("{}h{:02}m{:02}s", t / 3600, t % 3600 / 60, t % 60),
        t if t >= 60 => format!("{}m{:02}s", t / 60, t % 60),
        t => format!("{t}s"),
    }
}

/// UTC time of day of an epoch time, `HH:MM:SS`.
pub fn clock(ts: f64) -> String {
    let s = ts.max(0.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
}

/// The summary as text.
pub fn render(s: &Summary) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{} rounds every {}, span {} of {} required (from {} UTC)",
        s.rounds,
        dur(s.every),
        dur(s.span()),
        dur(s.required),
        clock(s.start)
    );
    for c in &s.checkpoints {
        let _ = writeln!(
            t,
            "  checkpoint +{}: {}",
            dur(c.offset),
            c.round
                .map_or("NOT COVERED".to_string(), |r| format!("round {r}"))
        );
    }
    for g in &s.gaps {
        let _ = writeln!(
            t,
            "  gap: no round from +{} to +{} ({})",
            dur(g.after - s.start),
            dur(g.until - s.start),
            dur(g.until - g.after)
        );
    }
    for g in &s.observer_gaps {
        let _ = writeln!(
            t,
            "  observer gap {}: +{} to +{}{} ({} rounds): {}; the overlay was not observed from it (not a disconnection){}",
            g.machine,
            dur(g.start - s.start),
            dur(g.end - s.start),
            if g.ongoing { " (ongoing)" } else { "" },
            g.rounds,
            g.session.describe(&g.machine),
            if g.breaks_coverage {
                format!("; unobserved {}, more than the {} coverage allows", dur(g.unobserved), dur(g.allowed))
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(t, "  per direction:");
    t.push_str(&super::tables::directions(s).text("    "));
    if s.outages.is_empty() {
        let _ = writeln!(t, "  disconnections: none");
    } else {
        let _ = writeln!(t, "  disconnections:");
        t.push_str(&super::tables::disconnections(s).text("    "));
    }
    // A line repeating every round (a skipped hop, a journal error) reads once, with a count.
    for l in super::tables::folded(s, &s.error_rounds) {
        let _ = writeln!(t, "  {l}");
    }
    let mut reconnected: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (n, ms) in &s.reconnects {
        reconnected.entry(ms.join(", ")).or_default().push(*n);
    }
    for (ms, rounds) in reconnected {
        let shown: Vec<String> = rounds.iter().take(5).map(u64::to_string).collect();
        let more = if rounds.len() > 5 { ", ..." } else { "" };
        let _ = writeln!(
            t,
            "  reconnected {ms} in {} round(s): {}{more}",
            rounds.len(),
            shown.join(", ")
        );
    }
    if !s.journal_absent.is_empty() {
        let _ = writeln!(
            t,
            "  no journal (journald not running) on: {}; journal errors were not scanned there",
            s.journal_absent.join(", ")
        );
    }
    t
}
