//! The monitor log on disk. It is the monitor's only state, so it is read like any input: every
//! complete line must be a round whose plan is sane (a stored `every_secs = 0` made a resumed
//! monitor run rounds without pause), and what follows the last line end is the round in flight
//! when the monitor stopped. Before a resume appends, that torn tail is cut off, so the next
//! round starts on a line of its own (appended to the torn bytes, it made the whole log
//! unreadable two rounds later).

use std::path::Path;

use super::Round;
use crate::env::{DurationRange, INTERVAL, SPAN};
use crate::error::Error;
use crate::rebuild::Progress;

/// Latest start a round may claim (2100-01-01 UTC): a later one would make a resumed monitor
/// wait for its next round for ever.
const LAST_TS: f64 = 4_102_444_800.0;

/// Why `r` cannot come from a monitor run: its plan, times and number must be ones
/// `clan-coord monitor` writes.
fn check(r: &Round) -> Result<(), String> {
    let within = |name: &str, v: f64, range: DurationRange| {
        if v >= range.min.as_secs_f64() && v <= range.max.as_secs_f64() {
            Ok(())
        } else {
            Err(format!(
                "{name} = {v} is out of range ({})",
                range.allowed()
            ))
        }
    };
    within("every_secs", r.every_secs, INTERVAL)?;
    within("for_secs", r.for_secs, SPAN)?;
    if r.every_secs > r.for_secs {
        return Err(format!(
            "every_secs = {} is longer than for_secs = {}",
            r.every_secs, r.for_secs
        ));
    }
    if !(0.0..=LAST_TS).contains(&r.ts) {
        return Err(format!("ts = {} is not a time between 1970 and 2100", r.ts));
    }
    if !(0.0..=SPAN.max.as_secs_f64()).contains(&r.secs) {
        return Err(format!("secs = {} is not a round's duration", r.secs));
    }
    // The plan has for/every + 1 rounds at most; this also keeps `round + 1` from overflowing.
    if r.round as f64 > r.for_secs / r.every_secs + 1.0 {
        return Err(format!(
            "round {} is beyond its plan ({} s every {} s)",
            r.round, r.for_secs, r.every_secs
        ));
    }
    Ok(())
}

/// One line as a checked round.
fn round_of(line: &[u8]) -> Result<Round, String> {
    let r: Round = serde_json::from_slice(line).map_err(|e| format!("not a monitor round: {e}"))?;
    check(&r).map_err(|why| {
        format!(
            "round {}: {why}; this log cannot be judged or resumed",
            r.round
        )
    })?;
    Ok(r)
}

/// A log's bytes: the rounds of its complete lines, and the tail after the last line end.
struct Parsed<'a> {
    rounds: Vec<Round>,
    /// Where the complete lines end.
    complete: usize,
    /// The bytes after them, when there are any.
    tail: &'a [u8],
}

/// Splits `bytes` into checked rounds and the tail; any bad complete line is an error naming it.
fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<Parsed<'a>, String> {
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut rounds = Vec::new();
    for (i, line) in bytes[..complete].split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        rounds.push(round_of(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?);
    }
    Ok(Parsed {
        rounds,
        complete,
        tail: &bytes[complete..],
    })
}

/// The file's bytes; a missing file is an empty log.
fn bytes(path: &Path) -> Result<Vec<u8>, String> {
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// A tail that is a whole round (only its line end missing) counts; any other tail is the
/// round in flight when the monitor stopped.
fn whole_tail(tail: &[u8]) -> Option<Result<Round, String>> {
    if tail.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    match serde_json::from_slice::<Round>(tail) {
        Ok(_) => Some(round_of(tail)),
        Err(_) => None,
    }
}

/// Reads a log: every complete line must be a round with a sane plan (else an error naming the
/// line); a torn last line (crash mid-write) is ignored.
pub fn read_log(path: &Path) -> Result<Vec<Round>, String> {
    let bytes = bytes(path)?;
    let Parsed {
        mut rounds, tail, ..
    } = parse(path, &bytes)?;
    match whole_tail(tail) {
        Some(r) => rounds.push(r.map_err(|e| format!("{}: last line: {e}", path.display()))?),
        None if !tail.iter().all(u8::is_ascii_whitespace) => tracing::warn!(
            path = %path.display(),
            bytes = tail.len(),
            "ignoring a torn last line (the round in flight when it stopped)"
        ),
        None => {}
    }
    // Logs written before remote texts were withheld are shown withheld too.
    Ok(rounds.into_iter().map(Round::redacted).collect())
}

/// Prepares `path` for appending: reads and checks it as [`read_log`] does (nothing is changed
/// when it is not a sound monitor log), then cuts off a torn tail, saying on `progress` what was
/// dropped, or ends a whole last round's line. Returns the rounds it holds.
pub(super) fn resume(path: &Path, progress: Progress) -> Result<Vec<Round>, Error> {
    let refuse = |reason: String| Error::Env {
        var: "--log",
        value: path.display().to_string(),
        reason,
    };
    let bytes = bytes(path).map_err(refuse)?;
    let Parsed {
        mut rounds,
        complete,
        tail,
    } = parse(path, &bytes).map_err(refuse)?;
    let write_err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    match whole_tail(tail) {
        None if tail.is_empty() => {}
        Some(r) => {
            rounds.push(r.map_err(|e| refuse(format!("last line: {e}")))?);
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(write_err)?;
            std::io::Write::write_all(&mut f, b"\n").map_err(write_err)?;
            f.sync_data().map_err(write_err)?;
        }
        None => {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(write_err)?;
            f.set_len(complete as u64).map_err(write_err)?;
            f.sync_data().map_err(write_err)?;
            let start = String::from_utf8_lossy(&tail[..tail.len().min(24)]).into_owned();
            let after = rounds
                .last()
                .map_or("the start".to_string(), |r| format!("round {}", r.round));
            tracing::warn!(path = %path.display(), bytes = tail.len(), "dropped a torn last line before resuming");
            progress(&format!(
                "monitor: {}: dropped {} bytes after {after}, the round in flight when the monitor stopped (began {start:?})",
                path.display(),
                tail.len(),
            ));
        }
    }
    Ok(rounds)
}
