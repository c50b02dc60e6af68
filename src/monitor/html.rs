//! The report page: self-contained HTML with an inline SVG plot of RTT over time per direction,
//! outage bands and checkpoint marks. No scripts, no external resources.

use std::fmt::Write as _;

use super::analysis::{clock, dur, render, Summary};
use super::Round;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Line colours; red is kept for outage bands and missed checkpoints.
const COLORS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
];

/// The HTML page.
pub fn page(title: &str, rounds: &[Round], s: &Summary) -> String {
    let (w, h, ml, mr, mt, mb) = (960.0, 360.0, 60.0, 20.0, 20.0, 40.0);
    let span = s.span().max(s.required).max(1.0);
    let max_rtt = s
        .directions
        .iter()
        .filter_map(|d| d.rtt.map(|r| r[3]))
        .fold(1.0_f64, f64::max)
        * 1.15;
    let x = |ts: f64| ml + (ts - s.start) / span * (w - ml - mr);
    let y = |rtt: f64| mt + (1.0 - rtt / max_rtt) * (h - mt - mb);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="RTT over time">"#
    );
    let _ = write!(
        svg,
        r##"<rect x="{ml}" y="{mt}" width="{}" height="{}" fill="#fafafa" stroke="#ccc"/>"##,
        w - ml - mr,
        h - mt - mb
    );
    for o in &s.outages {
        let _ = write!(
            svg,
            r##"<rect x="{:.1}" y="{mt}" width="{:.1}" height="{}" fill="#d62728" fill-opacity="0.18"><title>{} → {}: {} from +{}</title></rect>"##,
            x(o.start),
            (x(o.end) - x(o.start)).max(2.0),
            h - mt - mb,
            esc(&o.from),
            esc(&o.to),
            dur(o.end - o.start),
            dur(o.start - s.start)
        );
    }
    for g in &s.gaps {
        let _ = write!(
            svg,
            r##"<rect x="{:.1}" y="{mt}" width="{:.1}" height="{}" fill="#777" fill-opacity="0.25"><title>no rounds for {}</title></rect>"##,
            x(g.after),
            (x(g.until) - x(g.after)).max(2.0),
            h - mt - mb,
            dur(g.until - g.after)
        );
    }
    for g in &s.observer_gaps {
        let _ = write!(
            svg,
            r##"<rect x="{:.1}" y="{mt}" width="{:.1}" height="{}" fill="#ff7f0e" fill-opacity="0.15"><title>observer gap: {}</title></rect>"##,
            x(g.start),
            (x(g.end) - x(g.start)).max(2.0),
            h - mt - mb,
            esc(&g.session.describe(&g.machine)),
        );
    }
    for c in &s.checkpoints {
        let cx = x(s.start + c.offset);
        let color = if c.round.is_some() {
            "#2ca02c"
        } else {
            "#d62728"
        };
        let anchor = if c.offset <= 0.0 {
            "start"
        } else if c.offset >= s.required - 1e-6 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            svg,
            r#"<line x1="{cx:.1}" y1="{mt}" x2="{cx:.1}" y2="{}" stroke="{color}" stroke-dasharray="4 3"/><text x="{cx:.1}" y="{}" font-size="11" text-anchor="{anchor}" fill="{color}">+{}</text>"#,
            h - mb,
            h - mb + 14.0,
            dur(c.offset)
        );
    }
    for i in 0..=4 {
        let v = max_rtt * i as f64 / 4.0;
        let _ = write!(
            svg,
            r##"<text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#555">{}</text>"##,
            ml - 6.0,
            y(v) + 4.0,
            if max_rtt < 10.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.0}")
            }
        );
    }
    let _ = write!(
        svg,
        r##"<text x="14" y="{}" font-size="11" fill="#555" transform="rotate(-90 14 {})">RTT ms</text>"##,
        h / 2.0,
        h / 2.0
    );
    let _ = write!(
        svg,
        r##"<text x="{}" y="{}" font-size="11" text-anchor="end" fill="#555">time since start (UTC {})</text>"##,
        w - mr,
        h - 6.0,
        clock(s.start)
    );
    for (i, d) in s.directions.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let mut path = String::new();
        let mut pen_up = true;
        for r in rounds {
            match r
                .pairs
                .iter()
                .find(|p| p.from == d.from && p.to == d.to)
                .and_then(|p| p.rtt_avg.filter(|_| p.loss == 0.0))
            {
                Some(v) => {
                    let _ = write!(
                        path,
                        "{}{:.1},{:.1} ",
                        if pen_up { "M" } else { "L" },
                        x(r.ts),
                        y(v)
                    );
                    pen_up = false;
                }
                None => pen_up = true,
            }
        }
        let _ = write!(
            svg,
            r#"<path d="{path}" fill="none" stroke="{color}" stroke-width="1.5"><title>{} → {}</title></path>"#,
            esc(&d.from),
            esc(&d.to)
        );
        let _ = write!(
            svg,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{color}"/><text x="{}" y="{}" font-size="12">{} → {}</text>"#,
            ml + 10.0 + (i % 4) as f64 * 200.0,
            mt + 8.0 + (i / 4) as f64 * 16.0,
            ml + 24.0 + (i % 4) as f64 * 200.0,
            mt + 17.0 + (i / 4) as f64 * 16.0,
            esc(&d.from),
            esc(&d.to)
        );
    }
    svg.push_str("</svg>");
    let verdict = if s.outages.is_empty()
        && s.gaps.is_empty()
        && s.error_rounds.is_empty()
        && s.span() + s.every >= s.required
        && s.checkpoints.iter().all(|c| c.round.is_some())
        && !s.observer_gaps.iter().any(|g| g.breaks_coverage)
    {
        r#"<p class="ok">stable: no disconnection, gap or error; every checkpoint covered</p>"#
    } else {
        r#"<p class="bad">not stable: see the disconnections, gaps, observer gaps and errors below</p>"#
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>body{{font-family:sans-serif;margin:24px;color:#222}}pre{{background:#f4f4f4;padding:12px;overflow:auto}}.ok{{color:#2ca02c;font-weight:bold}}.bad{{color:#d62728;font-weight:bold}}table{{border-collapse:collapse;margin:8px 0}}th,td{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th:first-child,td:first-child,td:last-child{{text-align:left}}</style></head><body><h1>{t}</h1>{verdict}{svg}<p>Red bands: disconnections; grey bands: gaps without rounds; orange bands: observer gaps (the harness's session to a machine failed; the overlay was not observed from it); dashed lines: checkpoints (green covered, red missed).</p><h2>Per direction</h2>{dirs}<h2>Disconnections</h2>{outs}<h2>Summary</h2><pre>{sum}</pre></body></html>\n",
        t = esc(title),
        dirs = crate::redact::withhold(&super::tables::directions(s).html()),
        outs = if s.outages.is_empty() {
            "<p>none</p>".to_string()
        } else {
            crate::redact::withhold(&super::tables::disconnections(s).html()).into_owned()
        },
        // The rounds were withheld when read; this guards a summary made some other way.
        sum = esc(&crate::redact::withhold(&render(s))),
    )
}
