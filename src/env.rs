//! Behaviour switches, every `COORD_*` variable parsed once, here, into types (as insta does with
//! `INSTA_UPDATE`). Library code never reads the environment elsewhere; defaults are relative to
//! the working directory (cargo runs tests from the crate root), never to where it was built.
//!
//! - `COORD_MACHINES=path`: machines.toml to use (default `machines.toml`, or the cassette's).
//! - `COORD_CASSETTE=path`: cassette to replay offline (default `tests/cassettes/story-fleet/cassette.json`).
//! - `COORD_RECORD=path`: when live, record every exchange into this cassette.
//! - `COORD_REPORT_DIR=dir`: where report.json and rebuild logs go (default `target/coordination`).
//! - `COORD_DESTRUCTIVE=1`: allow AC5/AC6 to rebuild live machines.
//! - `COORD_REBUILD_CASSETTE=path`: offline, the recorded rebuild AC5/AC6 replay (default the
//!   story fleet's: the ZeroTier lab's rebuilds and AC6's network setting change).
//! - `COORD_MONITOR_LOG=path`: the monitor log AC7 judges; `COORD_AC7_SPAN` the span it must cover
//!   (default `24h`, at most 30 days: [`SPAN`]).
//! - `COORD_SNAPSHOT_DIR=dir`: where AC3's reviewed snapshots are (default `snapshots`); a test of
//!   the `cargo insta review` loop points it at a copy.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;

/// Where answers come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Real SSH to the machines (`--features live`).
    Live {
        /// Record into this cassette.
        record: Option<PathBuf>,
    },
    /// Replay a cassette.
    Replay {
        /// The cassette.
        cassette: PathBuf,
    },
}

/// All switches.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Live or replay.
    pub mode: Mode,
    /// machines.toml override.
    pub machines: Option<PathBuf>,
    /// Report directory (report.json, rebuild logs).
    pub report_dir: PathBuf,
    /// Where the reviewed insta snapshots are (`snapshots/` of the checkout).
    pub snapshots: PathBuf,
    /// Rebuilds of live machines are allowed (`COORD_DESTRUCTIVE=1`).
    pub destructive: bool,
    /// Offline, the cassette AC5/AC6 replay.
    pub rebuild_cassette: PathBuf,
    /// The monitor log AC7 judges.
    pub monitor_log: Option<PathBuf>,
    /// The span AC7 requires.
    pub ac7_span: Duration,
}

/// The story fleet's cassette, replayed by default.
pub const STORY: &str = "tests/cassettes/story-fleet/cassette.json";

/// The variable that allows rebuilds of live machines.
pub const DESTRUCTIVE: &str = "COORD_DESTRUCTIVE";

fn text(name: &'static str) -> Result<Option<String>, Error> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Err(Error::Env {
            var: name,
            value: v,
            reason: "is empty; unset it or give a value".into(),
        }),
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(Error::Env {
            var: name,
            value: v.to_string_lossy().into(),
            reason: "is not UTF-8".into(),
        }),
    }
}

fn path(name: &'static str) -> Result<Option<PathBuf>, Error> {
    Ok(text(name)?.map(PathBuf::from))
}

impl Settings {
    /// The switches for the command line's `check`, which is live unless asked to replay: with
    /// `replay` (`--replay [CASSETTE]`, `--cassette FILE`) it replays that cassette (`None`: the
    /// one `COORD_CASSETTE` names, else the story fleet's); without, it runs live in every build
    /// (the `live` feature gates only `cargo test --test coordination`). `COORD_CASSETTE` set
    /// without `--replay` is refused rather than silently ignored or obeyed.
    pub fn for_cli(replay: Option<Option<PathBuf>>) -> Result<Settings, Error> {
        let cassette = path("COORD_CASSETTE")?;
        let mode = match replay {
            Some(given) => {
                if let Some(r) = path("COORD_RECORD")? {
                    return Err(Error::Env {
                        var: "COORD_RECORD",
                        value: r.display().to_string(),
                        reason: "recording needs a live run: drop --replay".into(),
                    });
                }
                Mode::Replay {
                    cassette: given.or(cassette).unwrap_or_else(|| PathBuf::from(STORY)),
                }
            }
            None => {
                if let Some(c) = cassette {
                    return Err(Error::Env {
                        var: "COORD_CASSETTE",
                        value: c.display().to_string(),
                        reason: "check runs live unless given --replay: pass --replay to replay it, or unset it".into(),
                    });
                }
                Mode::Live {
                    record: path("COORD_RECORD")?,
                }
            }
        };
        Self::read(mode)
    }

    /// Reads the switches; `live` is whether the `live` feature is on.
    pub fn from_env(live: bool) -> Result<Settings, Error> {
        let record = path("COORD_RECORD")?;
        let cassette = path("COORD_CASSETTE")?;
        let mode = if live {
            if let Some(c) = cassette {
                return Err(Error::Env {
                    var: "COORD_CASSETTE",
                    value: c.display().to_string(),
                    reason: "replay is for offline runs; drop --features live or unset it".into(),
                });
            }
            Mode::Live { record }
        } else {
            if let Some(r) = record {
                return Err(Error::Env {
                    var: "COORD_RECORD",
                    value: r.display().to_string(),
                    reason: "recording needs a live run: add --features live".into(),
                });
            }
            Mode::Replay {
                cassette: cassette.unwrap_or_else(|| PathBuf::from(STORY)),
            }
        };
        Self::read(mode)
    }

    /// The switches for commands that are live by nature (`monitor`, `lab`, `plan`): the mode
    /// switches (`COORD_CASSETTE`, `COORD_RECORD`) do not apply to them.
    pub fn for_live_commands() -> Result<Settings, Error> {
        Self::read(Mode::Live { record: None })
    }

    /// Every switch but the mode.
    fn read(mode: Mode) -> Result<Settings, Error> {
        let destructive = match text(DESTRUCTIVE)?.as_deref() {
            None | Some("0") => false,
            Some("1") => true,
            Some(v) => {
                return Err(Error::Env {
                    var: DESTRUCTIVE,
                    value: v.into(),
                    reason: "must be 1 (allow rebuilds) or 0".into(),
                })
            }
        };
        let ac7_span = match text("COORD_AC7_SPAN")? {
            None => Duration::from_secs(86400),
            Some(s) => parse_duration(&s, SPAN).map_err(|reason| Error::Env {
                var: "COORD_AC7_SPAN",
                value: s.clone(),
                reason,
            })?,
        };
        Ok(Settings {
            mode,
            machines: path("COORD_MACHINES")?,
            report_dir: path("COORD_REPORT_DIR")?
                .unwrap_or_else(|| PathBuf::from("target/coordination")),
            snapshots: path("COORD_SNAPSHOT_DIR")?.unwrap_or_else(|| PathBuf::from("snapshots")),
            destructive,
            rebuild_cassette: path("COORD_REBUILD_CASSETTE")?
                .unwrap_or_else(|| PathBuf::from(STORY)),
            monitor_log: path("COORD_MONITOR_LOG")?,
            ac7_span,
        })
    }

    /// Settings for a replay of `cassette`, with no switch read from the environment (tests).
    pub fn replay(cassette: PathBuf) -> Settings {
        Settings {
            mode: Mode::Replay { cassette },
            machines: None,
            report_dir: std::env::temp_dir(),
            snapshots: PathBuf::from("snapshots"),
            destructive: false,
            rebuild_cassette: PathBuf::from(STORY),
            monitor_log: None,
            ac7_span: Duration::from_secs(86400),
        }
    }

    /// The machines file given by `--machines`, else `COORD_MACHINES`, else `./machines.toml`.
    pub fn machines_or(&self, flag: Option<PathBuf>) -> PathBuf {
        flag.or_else(|| self.machines.clone())
            .unwrap_or_else(|| PathBuf::from("machines.toml"))
    }
}

/// The range a duration switch must fall in. Bounded so that a typo can neither overflow
/// (`99999999999999999999999d`) nor mean "no limit" or "no pause" (0) further down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRange {
    /// Shortest accepted.
    pub min: Duration,
    /// Longest accepted.
    pub max: Duration,
}

const DAY: u64 = 86_400;

/// Monitored spans (`monitor --for`, `report --required`, `COORD_AC7_SPAN`): 1 s to 30 days.
pub const SPAN: DurationRange = DurationRange {
    min: Duration::from_secs(1),
    max: Duration::from_secs(30 * DAY),
};

/// Intervals between monitor rounds (`monitor --every`): 1 s to 1 day.
pub const INTERVAL: DurationRange = DurationRange {
    min: Duration::from_secs(1),
    max: Duration::from_secs(DAY),
};

impl DurationRange {
    /// `allowed 1s to 30d`, the tail of every error about a value of this range.
    pub fn allowed(&self) -> String {
        format!("allowed {} to {}", human(self.min), human(self.max))
    }
}

/// A whole duration in the largest unit that divides it (`30d`, `90m`, `1s`).
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        s if s % DAY == 0 => format!("{}d", s / DAY),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `90s`, `5m`, `24h`, `1.5d`: a number and a unit (monitor spans and intervals), within
/// `range`. The bound is checked on the number before any `Duration` is made, so no input
/// overflows or panics.
pub fn parse_duration(s: &str, range: DurationRange) -> Result<Duration, String> {
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num.parse().map_err(|_| {
        format!(
            "{s:?}: expected a number and a unit (s, m, h, d), e.g. 24h; {}",
            range.allowed()
        )
    })?;
    let k = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => {
            return Err(format!(
                "{s:?}: unit must be s, m, h or d; {}",
                range.allowed()
            ))
        }
    };
    let secs = n * k;
    if !(secs >= range.min.as_secs_f64() && secs <= range.max.as_secs_f64()) {
        return Err(format!("{s:?} is out of range: {}", range.allowed()));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_within_their_range() {
        let ok: [(&str, DurationRange, u64); 6] = [
            ("24h", SPAN, DAY),
            ("30d", SPAN, 30 * DAY),
            ("1s", SPAN, 1),
            ("1.5h", SPAN, 5400),
            ("5m", INTERVAL, 300),
            ("1d", INTERVAL, DAY),
        ];
        for (s, r, want) in ok {
            assert_eq!(parse_duration(s, r), Ok(Duration::from_secs(want)), "{s}");
        }
    }

    #[test]
    fn bad_durations_name_the_value_and_the_range_and_never_panic() {
        let bad: [(&str, DurationRange, &str); 14] = [
            ("99999999999999999999999d", SPAN, "is out of range"),
            (
                format!("{}d", "1".repeat(400)).leak(),
                SPAN,
                "is out of range",
            ),
            ("0s", SPAN, "is out of range"),
            ("0", SPAN, "unit must be"),
            ("0.0001s", INTERVAL, "is out of range"),
            ("31d", SPAN, "is out of range"),
            ("25h", INTERVAL, "is out of range"),
            ("-5m", SPAN, "expected a number"),
            ("", SPAN, "expected a number"),
            ("1e9s", SPAN, "unit must be"),
            ("1.2.3s", SPAN, "expected a number"),
            ("inf", SPAN, "expected a number"),
            ("NaNs", SPAN, "expected a number"),
            ("5 m", SPAN, "unit must be"),
        ];
        for (s, r, why) in bad {
            let e = parse_duration(s, r).expect_err(s);
            assert!(
                e.contains(why) && e.contains(&format!("{s:?}")) && e.contains(&r.allowed()),
                "{s}: {e}"
            );
        }
        assert_eq!(SPAN.allowed(), "allowed 1s to 30d");
        assert_eq!(INTERVAL.allowed(), "allowed 1s to 1d");
    }
}
