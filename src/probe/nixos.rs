//! NixOS generations: the system profile link, `/run/current-system`, `nixos-rebuild
//! list-generations` (bash, -ng text and `--json`) and `nixos-version`.

use once_cell::sync::Lazy;
use regex::Regex;
use std::collections::BTreeMap;

use serde_json::Value;

use super::{excerpt, ProbeError};

/// `readlink /nix/var/nix/profiles/system` → `system-<N>-link`.
pub fn parse_profile_link(out: &str) -> Result<u32, ProbeError> {
    let t = out.trim();
    let name = t.rsplit('/').next().unwrap_or(t);
    name.strip_prefix("system-")
        .and_then(|r| r.strip_suffix("-link"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ProbeError::new("readlink system profile", "expected system-<N>-link", out))
}

/// A NixOS system store path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SystemPath {
    /// The whole path.
    pub path: String,
    /// Host name part.
    pub host: String,
    /// NixOS version part.
    pub version: String,
}

static SYSTEM: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^/nix/store/[0-9a-z]{32}-nixos-system-(.+)-(\d\d\.\d\d[^-]*)$")
        .expect("static regex")
});

/// Parses each line of `readlink /run/current-system` output.
pub fn parse_system_paths(out: &str) -> Result<Vec<SystemPath>, ProbeError> {
    let mut v = Vec::new();
    for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let c = SYSTEM.captures(line).ok_or_else(|| {
            ProbeError::new(
                "readlink /run/current-system",
                "not a nixos-system store path",
                line,
            )
        })?;
        v.push(SystemPath {
            path: line.to_string(),
            host: c[1].to_string(),
            version: c[2].to_string(),
        });
    }
    if v.is_empty() {
        return Err(ProbeError::new(
            "readlink /run/current-system",
            "empty",
            out,
        ));
    }
    Ok(v)
}

/// One generation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Generation {
    /// Number.
    pub number: u32,
    /// Build date.
    pub date: String,
    /// NixOS version.
    pub nixos_version: String,
    /// Current generation.
    pub current: bool,
}

/// `nixos-rebuild list-generations [--json]`, old bash or -ng layout.
pub fn parse_generations(out: &str) -> Result<Vec<Generation>, ProbeError> {
    const P: &str = "nixos-rebuild list-generations";
    let t = out.trim();
    if t.starts_with('[') {
        let v: Vec<Value> = serde_json::from_str(t)
            .map_err(|e| ProbeError::new(P, format!("invalid JSON: {e}"), out))?;
        return v
            .iter()
            .map(|g| {
                Ok(Generation {
                    number: g["generation"]
                        .as_u64()
                        .ok_or_else(|| ProbeError::new(P, "no generation number", out))?
                        as u32,
                    date: g["date"].as_str().unwrap_or("").to_string(),
                    nixos_version: g["nixosVersion"].as_str().unwrap_or("").to_string(),
                    current: g["current"].as_bool().unwrap_or(false),
                })
            })
            .collect();
    }
    let mut lines = t.lines();
    let header = lines.next().unwrap_or("");
    if !header.starts_with("Generation") {
        return Err(ProbeError::new(P, "no header line", out));
    }
    let ng = header.trim_end().ends_with("Current");
    let mut gens = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let number: u32 = f
            .first()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ProbeError::new(P, "no generation number", line))?;
        let (current, rest) = if !ng && f.get(1) == Some(&"current") {
            (true, &f[2..])
        } else {
            (false, &f[1..])
        };
        if rest.len() < 3 {
            return Err(ProbeError::new(P, "short line", line));
        }
        let current = if ng {
            f.last() == Some(&"True")
        } else {
            current
        };
        gens.push(Generation {
            number,
            date: format!("{} {}", rest[0], rest[1]),
            nixos_version: rest[2].to_string(),
            current,
        });
    }
    Ok(gens)
}

/// `nixos-version [--json]` → the version string.
pub fn parse_nixos_version(out: &str) -> Result<String, ProbeError> {
    let t = out.trim();
    if t.starts_with('{') {
        let v: Value = serde_json::from_str(t)
            .map_err(|e| ProbeError::new("nixos-version", format!("invalid JSON: {e}"), out))?;
        return v["nixosVersion"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| ProbeError::new("nixos-version", "no nixosVersion", out));
    }
    let first = t.split_whitespace().next().unwrap_or("");
    if first.len() >= 5
        && first.as_bytes()[2] == b'.'
        && first[..2].chars().all(|c| c.is_ascii_digit())
    {
        Ok(first.to_string())
    } else {
        Err(ProbeError::new("nixos-version", "no version", out))
    }
}

/// A machine's system state around a rebuild.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SystemState {
    /// Generation number of the system profile (`system-<N>-link`).
    pub generation: Option<u32>,
    /// Store path the profile points to.
    pub profile_path: String,
    /// Store path `/run/current-system` points to.
    pub current: String,
    /// When `/run/current-system` was last switched (epoch seconds, ms precision).
    pub switched: f64,
    /// The machine's clock at the probe (epoch seconds).
    pub now: f64,
    /// Artefact path → sha256 (None when missing).
    pub files: BTreeMap<String, Option<String>>,
    /// Unit → how long it has run and which definition the system carries.
    pub units: BTreeMap<String, UnitLive>,
}

/// A watched unit's live state.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct UnitLive {
    /// Seconds its main process has run: systemd's ExecMainStartTimestampMonotonic against
    /// /proc/uptime (None when not running).
    pub age: Option<f64>,
    /// sha256 of its unit file in the current system (None when the system has none): a
    /// different hash after a rebuild means its definition changed and a restart is due.
    pub definition: Option<String>,
}

/// Parses the state script's output.
pub fn parse_state(out: &str) -> Result<SystemState, String> {
    let mut s = SystemState::default();
    let mut seen_now = false;
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["profile", p] => s.generation = parse_profile_link(p).ok(),
            ["profile-path", p] => s.profile_path = p.to_string(),
            ["current", p] => s.current = p.to_string(),
            ["switched", t] => s.switched = t.parse().unwrap_or(0.0),
            ["now", t] => {
                s.now = t
                    .parse()
                    .map_err(|_| format!("bad clock line {:?}", excerpt(line, 120)))?;
                seen_now = true;
            }
            ["file", p, h] => {
                s.files
                    .insert(p.to_string(), (*h != "-").then(|| h.to_string()));
            }
            ["unit", u, _pid, age, def] => {
                s.units.insert(
                    u.to_string(),
                    UnitLive {
                        // A negative age (a virtualised /proc/uptime) is no age at all.
                        age: age.parse().ok().filter(|a: &f64| *a >= 0.0),
                        definition: (*def != "-").then(|| def.to_string()),
                    },
                );
            }
            _ => return Err(format!("unexpected line {:?}", excerpt(line, 120))),
        }
    }
    if !seen_now {
        return Err("no state lines (is this a NixOS machine?)".into());
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::detect;

    #[test]
    fn a_bad_state_line_is_not_quoted_when_it_holds_a_secret() {
        // The shape fuzz/fuzz_targets/hashes.rs found in the file hash parser, here too.
        for out in ["$2$$CCCCCCCf", "now $2$$CCCCCCCf"] {
            let e = parse_state(out).unwrap_err();
            assert_eq!(detect(&e), None, "{e}");
            assert!(e.contains("withheld"), "{e}");
        }
        assert_eq!(
            parse_state("now x").unwrap_err(),
            "bad clock line \"now x\""
        );
    }
}
