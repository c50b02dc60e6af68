//! AC7: 24 hours without disconnections or errors, checked at least at hours 0, 6, 12, 18, 24.
//! Judged from a monitor log (`clan-coord monitor`): the span covers the required duration,
//! every checkpoint has a round within one interval, there is no gap, every machine was observed
//! (a stretch in which the harness's own session to a machine failed is a coverage gap of that
//! machine, failing only beyond the coverage rule, never a disconnection), no disconnection in
//! any direction (a failed ping from a machine the harness did ask) and no round with errors.

use std::path::Path;

/// A round with an error line: (round, epoch s, the line).
type ErrorRound = (u64, f64, String);

use super::{Finding, Severity, Verdict};
use crate::monitor::analysis::{dur, summarize, ObserverGap, Outage, Summary};
use crate::monitor::read_log;
use crate::names::Criterion;
use crate::probe::ping::PingError;

/// Reads and judges a log against a required span (seconds).
pub fn run(log: &Path, required: f64) -> Verdict {
    match read_log(log) {
        Err(e) => Verdict::new(
            Criterion::Ac7,
            vec![
                Finding::new(Severity::Fail, "ac7.no-log", "workstation", "monitor log")
                    .seen(e)
                    .expected("a monitor log")
                    .cause("run `clan-coord monitor --for 24h --every 5m --log FILE` first"),
            ],
            vec![],
        ),
        Ok(rounds) if rounds.is_empty() => Verdict::new(
            Criterion::Ac7,
            vec![
                Finding::new(Severity::Fail, "ac7.no-log", "workstation", "monitor log")
                    .seen(format!("{} has no rounds", log.display()))
                    .expected("a monitor log")
                    .cause("run `clan-coord monitor --for 24h --every 5m --log FILE` first"),
            ],
            vec![],
        ),
        Ok(rounds) => evaluate(&summarize(&rounds, required)),
    }
}

/// Judges a summary.
pub fn evaluate(s: &Summary) -> Verdict {
    let mut f = Vec::new();
    let at = |ts: f64| format!("+{}", dur(ts - s.start));
    span(s, &mut f);
    for c in &s.checkpoints {
        match c.round {
            Some(r) => f.push(
                Finding::new(
                    Severity::Pass,
                    "ac7.checkpoint",
                    "fleet",
                    format!("checkpoint +{}", dur(c.offset)),
                )
                .seen(format!("round {r}"))
                .expected("a round within one interval"),
            ),
            None => f.push(
                Finding::new(
                    Severity::Fail,
                    "ac7.checkpoint-missed",
                    "fleet",
                    format!("checkpoint +{}", dur(c.offset)),
                )
                .seen("no round within one interval")
                .expected(format!(
                    "a round within {} of +{}",
                    dur(s.every),
                    dur(c.offset)
                ))
                .cause(checkpoint_cause(s, s.start + c.offset)),
            ),
        }
    }
    for g in &s.gaps {
        f.push(
            Finding::new(Severity::Fail, "ac7.gap", "fleet", "rounds")
                .seen(format!(
                    "no round from {} to {} ({})",
                    at(g.after),
                    at(g.until),
                    dur(g.until - g.after)
                ))
                .expected(format!("a round every {}", dur(s.every)))
                .cause("no round was started in between: the monitor was not running (stopped, or the workstation suspended), so the fleet was not observed then; resume it with the same --log"),
        );
    }
    for g in &s.observer_gaps {
        f.push(observer_gap(s, g));
    }
    for o in &s.outages {
        f.push(
            Finding::new(
                Severity::Fail,
                "ac7.disconnection",
                &o.from,
                "overlay connectivity",
            )
            .to(&o.to)
            .seen(format!(
                "{} from {} to {}{} ({}, {} rounds): {}",
                if o.loss[1] < 100.0 { "lossy" } else { "down" },
                at(o.start),
                at(o.end),
                if o.ongoing {
                    ", still down at the end"
                } else {
                    ""
                },
                dur(o.end - o.start),
                o.rounds,
                o.first
            ))
            .expected("no loss in any round")
            .cause(outage_cause(o)),
        );
    }
    // One finding per message, however many rounds repeated it (timestamps and pids aside): a
    // warning logged every round of a day is one fact, seen 288 times.
    let mut groups: Vec<(String, Vec<&ErrorRound>)> = Vec::new();
    for r in &s.error_rounds {
        let key = crate::monitor::tables::shape(&r.2);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(r),
            None => groups.push((key, vec![r])),
        }
    }
    for (_, rounds) in &groups {
        let (n, ts, e) = rounds[0];
        let line = ErrorLine::parse(e);
        let (subject, again) = match rounds.last() {
            Some((last, last_ts, _)) if rounds.len() > 1 => (
                format!("rounds {n} to {last} ({} rounds)", rounds.len()),
                format!(
                    " (the same message in {} more rounds, the last at {})",
                    rounds.len() - 1,
                    at(*last_ts)
                ),
            ),
            _ => (format!("round {n}"), String::new()),
        };
        let mut x = Finding::new(Severity::Fail, "ac7.errors", line.machine(), subject)
            .seen(format!("{}: {e}{again}", at(*ts)))
            .expected("no errors")
            .cause(line.cause());
        if let ErrorLine::Hop { to, .. } = &line {
            x = x.to(to);
        }
        f.push(x);
    }
    let broken = s.observer_gaps.iter().any(|g| g.breaks_coverage);
    if s.outages.is_empty() && s.error_rounds.is_empty() && s.gaps.is_empty() && !broken {
        let unobserved: u64 = s.observer_gaps.iter().map(|g| g.rounds).sum();
        f.push(
            Finding::new(Severity::Pass, "ac7.clean", "fleet", "every round")
                .seen(if unobserved == 0 {
                    format!("{} rounds without loss or errors", s.rounds)
                } else {
                    format!("{} rounds without loss or errors ({unobserved} machine-round(s) not observed, within the coverage rule)", s.rounds)
                })
                .expected("no loss, no errors"),
        );
    }
    let notes = s
        .directions
        .iter()
        .map(|d| {
            format!(
                "{} → {}: {} samples{}, RTT p50/p95/max {}",
                d.from,
                d.to,
                d.samples,
                if d.unobserved > 0 {
                    format!(" ({} not observed)", d.unobserved)
                } else {
                    String::new()
                },
                d.rtt.map_or("-".into(), |r| format!(
                    "{:.1}/{:.1}/{:.1} ms",
                    r[0], r[1], r[3]
                ))
            )
        })
        .collect();
    Verdict::new(Criterion::Ac7, f, notes)
}

/// The span: long enough, or how far the monitor's own plan got.
fn span(s: &Summary, f: &mut Vec<Finding>) {
    if s.span() + s.every + 1e-6 >= s.required {
        f.push(
            Finding::new(Severity::Pass, "ac7.span", "fleet", "monitored span")
                .seen(dur(s.span()))
                .expected(format!("at least {}", dur(s.required))),
        );
        return;
    }
    let cause = if s.planned + s.every + 1e-6 < s.required {
        format!(
            "the monitor was started for {} (--for), shorter than the {} required: run it again with --for {} and a new --log",
            dur(s.planned),
            dur(s.required),
            dur(s.required)
        )
    } else {
        format!(
            "its plan of {} is not complete: the monitor stopped at +{} or is still running; resume it with the same --log",
            dur(s.planned),
            dur(s.span())
        )
    };
    f.push(
        Finding::new(Severity::Fail, "ac7.short-span", "fleet", "monitored span")
            .seen(format!("{} over {} rounds", dur(s.span()), s.rounds))
            .expected(format!("at least {}", dur(s.required)))
            .cause(cause),
    );
}

/// Why no round covers the checkpoint at `ts`: the log ended before it, or a gap spans it.
fn checkpoint_cause(s: &Summary, ts: f64) -> String {
    let at = |t: f64| format!("+{}", dur(t - s.start));
    if ts > s.end + s.every {
        return format!(
            "the log ends at {}, before this checkpoint: the monitor stopped or is still running",
            at(s.end)
        );
    }
    match s.gaps.iter().find(|g| g.after <= ts && ts <= g.until) {
        Some(g) => format!(
            "it falls in the gap without rounds from {} to {}: the monitor was not running then",
            at(g.after),
            at(g.until)
        ),
        None => "no round started within one interval of it (rounds started late)".into(),
    }
}

/// An observer gap: coverage, never a disconnection. It fails AC7 only when it breaks the
/// coverage rule ([`crate::monitor::coverage::allowed`]).
fn observer_gap(s: &Summary, g: &ObserverGap) -> Finding {
    let at = |ts: f64| format!("+{}", dur(ts - s.start));
    let m = &g.machine;
    let evidence = match (g.pings_to_answered, g.pings_to_failed) {
        (0, 0) => String::new(),
        (a, 0) => format!("; meanwhile {a} ping(s) to {m} from machines the harness did reach answered, so its overlay was up"),
        (0, b) => format!("; meanwhile {b} ping(s) to {m} from machines the harness did reach failed too (see the disconnections): {m} itself may have been down"),
        (a, b) => format!("; meanwhile pings to {m} from machines the harness did reach: {a} answered, {b} failed"),
    };
    let seen =
        format!(
        "round {} ({}): {}; {} round(s) until {}{}, {m} unobserved for {}; not asked: {}{evidence}",
        g.first_round,
        at(g.start),
        g.session.describe(m),
        g.rounds,
        at(g.end),
        if g.ongoing { " (still at the end)" } else { "" },
        dur(g.unobserved),
        if g.session.missed.is_empty() { "-".to_string() } else { g.session.missed.join(", ") },
    );
    let what = format!(
        "observer gap: {}; the overlay was not observed from {m} then (not an overlay disconnection: a disconnection needs a failed ping from a machine that did answer)",
        g.session.summary(m)
    );
    let (severity, code, cause) = if g.breaks_coverage {
        (
            Severity::Fail,
            "ac7.coverage-gap",
            format!("{what}; {m} went unobserved for {}, more than the {} the coverage rule allows, so AC7 cannot vouch for that time: fix the harness's access to {m} (management network, sshd) and monitor again", dur(g.unobserved), dur(g.allowed)),
        )
    } else {
        (
            Severity::Warn,
            "ac7.observer-gap",
            format!(
                "{what}; within the coverage rule ({m} unobserved for {}, at most {} allowed)",
                dur(g.unobserved),
                dur(g.allowed)
            ),
        )
    };
    Finding::new(severity, code, m, format!("coverage of {m}"))
        .seen(seen)
        .expected(format!(
            "{m} observed in every round (a round every {})",
            dur(s.every)
        ))
        .cause(cause)
}

/// A disconnection's likely cause, from what its rounds showed: the ping's own words, the loss,
/// the reverse direction and whether the harness reached the destination meanwhile.
fn outage_cause(o: &Outage) -> String {
    let (a, b) = (&o.from, &o.to);
    let status = if o.status.is_empty() {
        String::new()
    } else {
        format!("; overlay status meanwhile: {}", o.status.join("; "))
    };
    let why = if o.first == PingError::NetworkUnreachable.to_string() {
        format!("{a} had no route to {b}'s overlay address (its ping said the network is unreachable): {a}'s overlay interface was down or its address not assigned")
    } else if o.loss[1] < 100.0 {
        let pct = |x: f64| format!("{}", (x * 10.0).round() / 10.0);
        let lost = if o.loss[0] == o.loss[1] {
            format!("{}%", pct(o.loss[1]))
        } else {
            format!("{}–{}%", pct(o.loss[0]), pct(o.loss[1]))
        };
        format!("a lossy path, not a broken one: {lost} of the echoes {a} → {b} were lost per round, the others answered")
    } else if o.reverse_answered == o.rounds {
        format!("one direction only: {b} → {a} answered in every one of these rounds, so both machines and their overlay daemons were up; something drops {a} → {b} (a firewall rule or an asymmetric route)")
    } else if o.target_unobserved == o.rounds {
        format!("{b} answered neither {a}'s pings nor the harness's own session in these rounds: {b} itself was down or cut off")
    } else if o.reverse_answered > 0 {
        format!("{b} → {a} answered in {} of these {} rounds: the path {a} → {b} broke while both machines were up (overlay daemon or underlay link)", o.reverse_answered, o.rounds)
    } else {
        format!("both directions between {a} and {b} failed while the harness reached the machines: the overlay between them broke (overlay daemon or underlay link)")
    };
    format!("{why}{status}")
}

/// A round's error line, as the monitor writes them.
enum ErrorLine<'a> {
    /// `m: overlay: what`.
    Overlay { machine: &'a str, what: &'a str },
    /// `m: journal: line`.
    Journal { machine: &'a str, line: &'a str },
    /// `ssh a → b: detail`.
    Hop {
        from: &'a str,
        to: &'a str,
        detail: &'a str,
    },
    /// Anything else.
    Other(&'a str),
}

impl<'a> ErrorLine<'a> {
    fn parse(e: &'a str) -> ErrorLine<'a> {
        if let Some((from, rest)) = e.strip_prefix("ssh ").and_then(|r| r.split_once(" → ")) {
            if let Some((to, detail)) = rest.split_once(": ") {
                return ErrorLine::Hop { from, to, detail };
            }
        }
        match e.split_once(": ") {
            Some((machine, rest)) => match rest.split_once(": ") {
                Some(("overlay", what)) => ErrorLine::Overlay { machine, what },
                Some(("journal", line)) => ErrorLine::Journal { machine, line },
                _ => ErrorLine::Other(e),
            },
            None => ErrorLine::Other(e),
        }
    }

    fn machine(&self) -> &str {
        match self {
            ErrorLine::Overlay { machine, .. } | ErrorLine::Journal { machine, .. } => machine,
            ErrorLine::Hop { from, .. } => from,
            ErrorLine::Other(_) => "fleet",
        }
    }

    fn cause(&self) -> String {
        match self {
            ErrorLine::Overlay { machine, what } => format!("{machine}'s overlay daemon reported a problem in its status: {what}"),
            ErrorLine::Journal { machine, line } => format!("the journal of the overlay daemon or sshd on {machine} logged a warning or worse: {line}"),
            ErrorLine::Hop { from, to, detail } => format!("the SSH hop {from} → {to} failed over an overlay path whose pings had just passed: {detail} (AC2 names the cause of such a hop)"),
            ErrorLine::Other(e) => format!("the round recorded an error: {e}"),
        }
    }
}
