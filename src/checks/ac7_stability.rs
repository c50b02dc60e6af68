//! AC7: 24 hours without disconnections or errors, checked at least at hours 0, 6, 12, 18, 24.
//! Judged from a monitor log (`clan-coord monitor`): the span covers the required duration,
//! every checkpoint has a round within one interval, there is no gap, no disconnection in any
//! direction and no round with errors.

use std::path::Path;

use super::{Finding, Severity, Verdict};
use crate::monitor::analysis::{dur, summarize, Summary};
use crate::monitor::read_log;
use crate::names::Criterion;

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
    if s.span() + s.every + 1e-6 < s.required {
        f.push(
            Finding::new(Severity::Fail, "ac7.short-span", "fleet", "monitored span")
                .seen(format!("{} over {} rounds", dur(s.span()), s.rounds))
                .expected(format!("at least {}", dur(s.required)))
                .cause(
                    "the monitor stopped early or is still running: resume it with the same --log",
                ),
        );
    } else {
        f.push(
            Finding::new(Severity::Pass, "ac7.span", "fleet", "monitored span")
                .seen(dur(s.span()))
                .expected(format!("at least {}", dur(s.required))),
        );
    }
    for c in &s.checkpoints {
        match c.round {
            Some(r) => f.push(Finding::new(Severity::Pass, "ac7.checkpoint", "fleet", format!("checkpoint +{}", dur(c.offset))).seen(format!("round {r}")).expected("a round within one interval")),
            None => f.push(Finding::new(Severity::Fail, "ac7.checkpoint-missed", "fleet", format!("checkpoint +{}", dur(c.offset))).seen("no round within one interval").expected(format!("a round within {} of +{}", dur(s.every), dur(c.offset))).cause("the monitor was not running then (stopped, machine asleep, or the log was cut)")),
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
                .cause("the monitor was down or stalled; the fleet was not observed then"),
        );
    }
    for o in &s.outages {
        f.push(
            Finding::new(Severity::Fail, "ac7.disconnection", &o.from, "overlay connectivity")
                .to(&o.to)
                .seen(format!("down from {} to {}{} ({}, {} rounds): {}", at(o.start), at(o.end), if o.ongoing { ", still down at the end" } else { "" }, dur(o.end - o.start), o.rounds, o.first))
                .expected("no loss in any round")
                .cause(format!("the path {} → {} broke: overlay daemon, underlay link or the machine itself; see the rounds' errors", o.from, o.to)),
        );
    }
    for (n, ts, e) in &s.error_rounds {
        let machine = e.split(':').next().unwrap_or("fleet").to_string();
        f.push(Finding::new(Severity::Fail, "ac7.errors", &machine, format!("round {n}")).seen(format!("{}: {e}", at(*ts))).expected("no errors").cause("an error in the overlay's or sshd's journal, a failed SSH hop or overlay status during the run"));
    }
    if s.outages.is_empty() && s.error_rounds.is_empty() && s.gaps.is_empty() {
        f.push(
            Finding::new(Severity::Pass, "ac7.clean", "fleet", "every round")
                .seen(format!("{} rounds without loss or errors", s.rounds))
                .expected("no loss, no errors"),
        );
    }
    let notes = s
        .directions
        .iter()
        .map(|d| {
            format!(
                "{} → {}: {} samples, RTT p50/p95/max {}",
                d.from,
                d.to,
                d.samples,
                d.rtt.map_or("-".into(), |r| format!(
                    "{:.1}/{:.1}/{:.1} ms",
                    r[0], r[1], r[3]
                ))
            )
        })
        .collect();
    Verdict::new(Criterion::Ac7, f, notes)
}
