//! The stability summary as tables (per direction; one row per disconnection) and lines that
//! repeat folded into one with a count, in text and in HTML: a day of rounds must read as a
//! day's summary, not as 288 copies of one line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::analysis::{clock, dur, Summary};

/// A table: a header and rows of cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column names.
    pub head: Vec<&'static str>,
    /// Rows (as many cells as `head`).
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Aligned text, two spaces between columns, numbers right-aligned.
    pub fn text(&self, indent: &str) -> String {
        let n = self.head.len();
        let mut width: Vec<usize> = self.head.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let numeric = |i: usize| {
            !self.rows.is_empty()
                && self.rows.iter().all(|r| {
                    r.get(i).is_some_and(|c| {
                        c.chars()
                            .next()
                            .is_some_and(|f| f.is_ascii_digit() || f == '-')
                    })
                })
        };
        let line = |cells: Vec<&str>| {
            let mut l = String::from(indent);
            for (i, c) in cells.iter().enumerate() {
                let pad = width[i].saturating_sub(c.chars().count());
                if i > 0 {
                    l.push_str("  ");
                }
                if numeric(i) {
                    l.push_str(&" ".repeat(pad));
                    l.push_str(c);
                } else {
                    l.push_str(c);
                    if i + 1 < cells.len() {
                        l.push_str(&" ".repeat(pad));
                    }
                }
            }
            l.trim_end().to_string() + "\n"
        };
        let mut t = line(self.head.clone());
        for r in &self.rows {
            t.push_str(&line(r.iter().map(String::as_str).collect()));
        }
        t
    }

    /// An HTML table (cells escaped).
    pub fn html(&self) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let mut h = String::from("<table><thead><tr>");
        for c in &self.head {
            let _ = write!(h, "<th>{}</th>", esc(c));
        }
        h.push_str("</tr></thead><tbody>");
        for r in &self.rows {
            h.push_str("<tr>");
            for c in r {
                let _ = write!(h, "<td>{}</td>", esc(c));
            }
            h.push_str("</tr>");
        }
        h.push_str("</tbody></table>");
        h
    }
}

/// Per direction: samples, rounds not observed, bad rounds, mean loss, RTT p50/p95/p99/max and
/// the number of disconnections.
pub fn directions(s: &Summary) -> Table {
    let rows = s
        .directions
        .iter()
        .map(|d| {
            let outages = s
                .outages
                .iter()
                .filter(|o| o.from == d.from && o.to == d.to)
                .count();
            let rtt = |i: usize| d.rtt.map_or("-".to_string(), |r| format!("{:.1}", r[i]));
            vec![
                format!("{} → {}", d.from, d.to),
                d.samples.to_string(),
                d.unobserved.to_string(),
                d.bad_rounds.to_string(),
                format!("{:.2}%", d.mean_loss),
                rtt(0),
                rtt(1),
                rtt(2),
                rtt(3),
                outages.to_string(),
            ]
        })
        .collect();
    Table {
        head: vec![
            "direction",
            "samples",
            "not observed",
            "bad",
            "loss",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "disconnections",
        ],
        rows,
    }
}

/// One row per disconnection: direction, start and end (offset and UTC time), duration, rounds,
/// what its first round saw.
pub fn disconnections(s: &Summary) -> Table {
    let at = |ts: f64| format!("+{} ({})", dur(ts - s.start), clock(ts));
    let rows = s
        .outages
        .iter()
        .map(|o| {
            vec![
                format!("{} → {}", o.from, o.to),
                at(o.start),
                if o.ongoing {
                    format!("{} (ongoing)", at(o.end))
                } else {
                    at(o.end)
                },
                dur(o.end - o.start),
                o.rounds.to_string(),
                o.first.clone(),
            ]
        })
        .collect();
    Table {
        head: vec![
            "direction",
            "start",
            "end",
            "duration",
            "rounds",
            "first seen",
        ],
        rows,
    }
}

/// A line with what changes from round to round in a repeated message (a journal line's
/// timestamp, a process id) replaced by `…`, so its repetitions fold together.
pub fn shape(line: &str) -> String {
    static STAMP: once_cell::sync::Lazy<Option<regex::Regex>> = once_cell::sync::Lazy::new(|| {
        regex::Regex::new(
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:?\d{2}|Z)?|\[\d+\]",
        )
        .ok()
    });
    match STAMP.as_ref() {
        Some(re) => re
            .replace_all(line, |c: &regex::Captures| {
                if c[0].starts_with('[') {
                    "[…]"
                } else {
                    "…"
                }
                .to_string()
            })
            .into_owned(),
        None => line.to_string(),
    }
}

/// Lines that repeat over rounds (`(round, epoch s, text)`), folded: one line per distinct text
/// with how often and over which rounds it was seen.
pub fn folded(s: &Summary, lines: &[(u64, f64, String)]) -> Vec<String> {
    let mut by: BTreeMap<String, (u64, f64, u64, f64, u64)> = BTreeMap::new();
    for (n, ts, text) in lines {
        let e = by.entry(shape(text)).or_insert((*n, *ts, *n, *ts, 0));
        e.2 = *n;
        e.3 = *ts;
        e.4 += 1;
    }
    let mut out: Vec<(u64, String)> = by
        .into_iter()
        .map(|(text, (first, t0, last, t1, count))| {
            let text = if count == 1 {
                // One occurrence: its own words, timestamp and all.
                lines
                    .iter()
                    .find(|(n, _, _)| *n == first)
                    .map_or(text, |(_, _, t)| t.clone())
            } else {
                text
            };
            let when = if count == 1 {
                format!("round {first} (+{})", dur(t0 - s.start))
            } else {
                format!(
                    "{count} rounds, {first} (+{}) to {last} (+{})",
                    dur(t0 - s.start),
                    dur(t1 - s.start)
                )
            };
            (first, format!("{when}: {text}"))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, l)| l).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_tables_align_and_numbers_go_right() {
        let t = Table {
            head: vec!["direction", "samples"],
            rows: vec![
                vec!["a → b".into(), "289".into()],
                vec!["long-name → b".into(), "5".into()],
            ],
        };
        assert_eq!(
            t.text("  "),
            "  direction      samples\n  a → b              289\n  long-name → b        5\n"
        );
        assert!(t.html().starts_with("<table><thead><tr><th>direction</th>"));
    }
}
