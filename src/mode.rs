//! Behaviour switches, parsed once from the environment into types (like insta's INSTA_UPDATE).
//!
//! - `COORD_MACHINES=path`: machines.toml to use (default `machines.toml`, or the cassette's).
//! - `COORD_CASSETTE=path`: cassette to replay offline (default `tests/cassettes/story-fleet.json`).
//! - `COORD_RECORD=path`: when live, record every exchange into this cassette.
//! - `COORD_REPORT_DIR=dir`: where report.json goes (default `target/coordination`).

use std::path::PathBuf;

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
    /// Report directory.
    pub report_dir: PathBuf,
}

fn var(name: &'static str) -> Result<Option<PathBuf>, Error> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Err(Error::Env {
            var: name,
            value: v,
            reason: "is empty; unset it or give a path".into(),
        }),
        Ok(v) => Ok(Some(PathBuf::from(v))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(Error::Env {
            var: name,
            value: v.to_string_lossy().into(),
            reason: "is not UTF-8".into(),
        }),
    }
}

/// The crate root, so defaults work from any working directory.
pub fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Settings {
    /// Reads the switches; `live` is whether the `live` feature is on.
    pub fn from_env(live: bool) -> Result<Settings, Error> {
        let record = var("COORD_RECORD")?;
        let cassette = var("COORD_CASSETTE")?;
        let mode = if live {
            if cassette.is_some() {
                return Err(Error::Env {
                    var: "COORD_CASSETTE",
                    value: cassette
                        .map(|c| c.display().to_string())
                        .unwrap_or_default(),
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
                cassette: cassette
                    .unwrap_or_else(|| crate_root().join("tests/cassettes/story-fleet.json")),
            }
        };
        Ok(Settings {
            mode,
            machines: var("COORD_MACHINES")?,
            report_dir: var("COORD_REPORT_DIR")?
                .unwrap_or_else(|| crate_root().join("target/coordination")),
        })
    }
}

/// `90s`, `5m`, `24h`, `1d`: a number and a unit (monitor spans and intervals).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit (s, m, h, d), e.g. 24h"))?;
    let k = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(format!("{s:?}: unit must be s, m, h or d")),
    };
    if !(n > 0.0 && n.is_finite()) {
        return Err(format!("{s:?}: must be positive"));
    }
    Ok(std::time::Duration::from_secs_f64(n * k))
}
