//! The cassette format (docs/cassettes.md): per machine, the commands in the order they ran, with
//! stdout, stderr, exit status and duration; plus workstation commands. A cassette may derive from
//! another one with a list of replacements, so each broken fleet states its one fault.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Output;
use crate::error::TransportError;

/// Current format version: 2 added `error` (a command that never ran) to entries and
/// replacements. Format 1 files, without it, still load.
pub const FORMAT: u32 = 2;

/// Every version this build reads.
pub const READS: [u32; 2] = [1, 2];

/// One recorded command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The command line as the harness built it.
    pub command: String,
    /// Its output.
    #[serde(flatten)]
    pub output: Output,
    /// The transport's error when the command never ran (the machine could not be reached):
    /// replay returns it instead of the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a derived cassette is expected to break (read by the verdict corpus test).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The criterion that must fail (`AC1`..).
    pub criterion: String,
    /// The finding code that must be among its failures.
    pub code: String,
    /// The machine the failure must name.
    pub machine: String,
    /// Other criteria the same fault legitimately fails too, each with the code it must show
    /// (for example a network id drift fails AC1 "not joined" and AC4 "network id differs").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<AlsoFails>,
}

/// A further criterion a fault fails, with its finding code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlsoFails {
    /// The criterion.
    pub criterion: String,
    /// A code that must be among its failures.
    pub code: String,
}

/// A change applied to the base cassette.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replacement {
    /// Machine (or `workstation`).
    pub machine: String,
    /// Exact command, or
    #[serde(default)]
    pub command: Option<String>,
    /// a substring every affected command contains.
    #[serde(default)]
    pub command_contains: Option<String>,
    /// New stdout.
    #[serde(default)]
    pub stdout: Option<String>,
    /// Substring substitutions in stdout (`[from, to]`), applied after `stdout`.
    #[serde(default)]
    pub stdout_replace: Vec<(String, String)>,
    /// New stderr.
    #[serde(default)]
    pub stderr: Option<String>,
    /// New exit status.
    #[serde(default)]
    pub exit: Option<Option<i32>>,
    /// The transport error the command now fails with instead of running (the machine
    /// could not be reached).
    #[serde(default)]
    pub error: Option<String>,
}

/// A cassette file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cassette {
    /// Format version.
    #[serde(default)]
    pub format: u32,
    /// What this cassette shows and how it was made.
    #[serde(default)]
    pub description: String,
    /// machines.toml of the recorded fleet, relative to the cassette.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machines_file: Option<String>,
    /// Base cassette, relative to this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derive_from: Option<String>,
    /// Changes to the base.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace: Vec<Replacement>,
    /// Intended failure, for broken fleets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expectation>,
    /// Per machine command log.
    #[serde(default)]
    pub machines: BTreeMap<String, Vec<Entry>>,
    /// Workstation command log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workstation: Vec<Entry>,
}

/// A cassette with its base applied, and where its fleet description lives.
#[derive(Debug, Clone)]
pub struct LoadedCassette {
    /// The file.
    pub path: PathBuf,
    /// Resolved content.
    pub cassette: Cassette,
    /// machines.toml to use, resolved.
    pub machines_file: Option<PathBuf>,
}

fn err(path: &Path, problem: impl Into<String>) -> TransportError {
    TransportError::Cassette {
        path: path.display().to_string(),
        problem: problem.into(),
    }
}

impl Cassette {
    /// Reads a cassette and applies `derive_from` chains (at most 8 deep).
    pub fn load(path: &Path) -> Result<LoadedCassette, TransportError> {
        Self::load_depth(path, 0)
    }

    fn load_depth(path: &Path, depth: usize) -> Result<LoadedCassette, TransportError> {
        if depth > 8 {
            return Err(err(path, "derive_from chain deeper than 8 (a loop?)"));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
        let mut c: Cassette =
            serde_json::from_str(&text).map_err(|e| err(path, format!("invalid ({e})")))?;
        if !READS.contains(&c.format) {
            return Err(err(
                path,
                format!(
                    "format {} is not supported (this build reads {READS:?}; a newer clan-coord wrote it?)",
                    c.format
                ),
            ));
        }
        let uses_error = c.machines.values().flatten().any(|e| e.error.is_some())
            || c.workstation.iter().any(|e| e.error.is_some())
            || c.replace.iter().any(|r| r.error.is_some());
        if c.format < 2 && uses_error {
            return Err(err(
                path,
                "an `error` field needs format 2; set \"format\": 2",
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut machines_file = c.machines_file.as_ref().map(|m| dir.join(m));
        if let Some(base) = c.derive_from.clone() {
            let base = Self::load_depth(&dir.join(&base), depth + 1)?;
            machines_file = machines_file.or(base.machines_file);
            let mut merged = base.cassette;
            for r in &c.replace {
                apply(&mut merged, r).map_err(|p| err(path, p))?;
            }
            merged.description = c.description.clone();
            merged.expect = c.expect.clone();
            merged.derive_from = None;
            merged.replace.clear();
            c = merged;
        }
        Ok(LoadedCassette {
            path: path.to_path_buf(),
            cassette: c,
            machines_file,
        })
    }

    /// Appends an entry (used by the recorder).
    pub fn push(&mut self, machine: &str, entry: Entry) {
        if machine == "workstation" {
            self.workstation.push(entry);
        } else {
            self.machines
                .entry(machine.to_string())
                .or_default()
                .push(entry);
        }
    }
}

fn apply(c: &mut Cassette, r: &Replacement) -> Result<(), String> {
    let log = if r.machine == "workstation" {
        &mut c.workstation
    } else {
        c.machines.entry(r.machine.clone()).or_default()
    };
    let matches = |e: &Entry| {
        r.command.as_deref().is_some_and(|cmd| e.command == cmd)
            || r.command_contains
                .as_deref()
                .is_some_and(|s| e.command.contains(s))
    };
    let mut hit = false;
    // A command recorded several times: each pair must occur in at least one recording.
    let mut found = vec![false; r.stdout_replace.len()];
    for e in log.iter_mut().filter(|e| matches(e)) {
        hit = true;
        if let Some(s) = &r.stdout {
            e.output.stdout = s.clone();
        }
        for (i, (from, to)) in r.stdout_replace.iter().enumerate() {
            if e.output.stdout.contains(from.as_str()) {
                found[i] = true;
                e.output.stdout = e.output.stdout.replace(from.as_str(), to);
            }
        }
        if let Some(s) = &r.stderr {
            e.output.stderr = s.clone();
        }
        if let Some(x) = r.exit {
            e.output.exit = x;
        }
        if r.error.is_some() {
            e.error = r.error.clone();
        }
    }
    if let Some(i) = found.iter().position(|f| !*f).filter(|_| hit) {
        return Err(format!(
            "replacement for {} `{}`: stdout does not contain {:?}",
            r.machine,
            r.command
                .as_deref()
                .or(r.command_contains.as_deref())
                .unwrap_or_default(),
            r.stdout_replace[i].0
        ));
    }
    if !hit {
        match &r.command {
            Some(cmd) if r.stdout_replace.is_empty() => log.push(Entry {
                command: cmd.clone(),
                output: Output {
                    stdout: r.stdout.clone().unwrap_or_default(),
                    stderr: r.stderr.clone().unwrap_or_default(),
                    exit: r.exit.unwrap_or(Some(0)),
                    duration: Default::default(),
                },
                error: r.error.clone(),
            }),
            _ => return Err(format!("replacement matches no command of {}", r.machine)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<LoadedCassette, TransportError> {
        let dir = tempfile::tempdir().map_err(|e| err(Path::new("tmp"), e.to_string()))?;
        let path = dir.path().join("c.json");
        std::fs::write(&path, text).map_err(|e| err(&path, e.to_string()))?;
        Cassette::load(&path)
    }

    const ENTRY: &str =
        r#"{"command": "true", "stdout": "", "stderr": "", "exit": 0, "duration_ms": 1"#;

    #[test]
    fn format_1_still_loads_and_the_error_field_needs_format_2() {
        let with = |format: u32, error: &str| {
            format!(
                r#"{{"format": {format}, "description": "t", "machines": {{"a": [{ENTRY}{error}}}]}}}}"#
            )
        };
        assert!(load(&with(1, "")).is_ok());
        assert!(load(&with(2, r#", "error": "connection refused""#)).is_ok());
        let e = load(&with(1, r#", "error": "connection refused""#))
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref().is_some_and(|e| e.contains("needs format 2")),
            "{e:?}"
        );
        let e = load(&with(3, "")).err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("this build reads [1, 2]")),
            "{e:?}"
        );
    }
}
