//! `tests/monitor/healthy-24h.jsonl`: a 24 h monitor log at 5-minute rounds (289 rounds,
//! checkpoints at 0/6/12/18/24 h), built from round 0 of `lab-clean-20s.jsonl`, a real run
//! recorded on the ZeroTier lab on systemd (`clan-coord monitor --for 20s --every 2s`: real
//! journal scans, sessions recorded). Only timestamps, round
//! numbers, durations and RTTs (deterministic jitter around the recorded values) differ. The broken
//! variants (gap, disconnection, error line, short span) are derived from it in tests/monitor.rs.

use std::path::Path;

use super::json::{self, Json, Result};

/// The recorded run the log is built from, relative to the crate root.
pub const SOURCE: &str = "tests/monitor/lab-clean-20s.jsonl";
/// The log, relative to the crate root.
pub const OUTPUT: &str = "tests/monitor/healthy-24h.jsonl";

/// Rounds in 24 h at one every 5 minutes, both ends included.
const ROUNDS: u32 = 289;

/// The log's text (one JSON round per line), from the crate root `root`.
pub fn log(root: &Path) -> Result<String> {
    let path = root.join(SOURCE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let first = text.lines().next().ok_or(format!("{SOURCE} is empty"))?;
    let base = Json::parse(first)?;
    let t0 = 1795600800.0; // a fixed start, 2026-11-25
    let mut out = String::new();
    for n in 0..ROUNDS {
        let mut r = base.clone();
        let nf = f64::from(n);
        r.set("round", Json::Number(n.into()))?;
        r.set(
            "ts",
            Json::float(t0 + nf * 300.0 + 0.004 * f64::from(n % 7))?,
        )?;
        r.set("secs", Json::float(round3(0.7 + 0.05 * f64::from(n % 5)))?)?;
        r.set("for_secs", Json::float(86400.0)?)?;
        r.set("every_secs", Json::float(300.0)?)?;
        for (i, p) in r.get_mut("pairs")?.items_mut()?.iter_mut().enumerate() {
            let j = 1.0 + 0.15 * (nf / 9.0 + i as f64).sin();
            let avg = p.get("rtt_avg")?.f64()?;
            let max = p.get("rtt_max")?.f64()?;
            p.set("rtt_avg", Json::float(round3(avg * j))?)?;
            p.set("rtt_max", Json::float(round3(max * j * 1.1))?)?;
        }
        out += &json::to_string(&r, None)?;
        out.push('\n');
    }
    Ok(out)
}

/// `x` rounded to 3 decimals as Python's `round(x, 3)` does: the correctly rounded decimal.
fn round3(x: f64) -> f64 {
    format!("{x:.3}").parse().unwrap_or(x)
}

/// Writes the log under `root`.
pub fn write(root: &Path) -> Result<()> {
    std::fs::write(root.join(OUTPUT), log(root)?)?;
    println!("wrote {OUTPUT} ({ROUNDS} rounds)");
    Ok(())
}
