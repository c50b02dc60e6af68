//! systemd outputs. `systemctl show` exits 0 for units that do not exist (LoadState=not-found) and
//! prints properties in its own order, so everything is parsed into maps and LoadState is checked
//! before anything else.

use std::collections::BTreeMap;

use super::ProbeError;

/// Properties of one unit from `systemctl show -p ...`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct UnitState {
    /// Property → value.
    pub props: BTreeMap<String, String>,
}

impl UnitState {
    /// A property, empty when absent.
    pub fn get(&self, k: &str) -> &str {
        self.props.get(k).map_or("", String::as_str)
    }
    /// `LoadState=loaded`.
    pub fn loaded(&self) -> bool {
        self.get("LoadState") == "loaded"
    }
    /// `ActiveState=active`.
    pub fn active(&self) -> bool {
        self.get("ActiveState") == "active"
    }
}

/// `systemctl show` for one or several units (blocks separated by blank lines, in argument order).
pub fn parse_show(out: &str) -> Result<Vec<UnitState>, ProbeError> {
    let mut units = Vec::new();
    let mut cur = UnitState::default();
    for line in out.lines() {
        if line.trim().is_empty() {
            if !cur.props.is_empty() {
                units.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(ProbeError::new(
                "systemctl show",
                format!("not a Key=Value line: {line:?}"),
                out,
            ));
        };
        cur.props.insert(k.to_string(), v.to_string());
    }
    if !cur.props.is_empty() {
        units.push(cur);
    }
    if units.is_empty() {
        return Err(ProbeError::new(
            "systemctl show",
            "no properties printed",
            out,
        ));
    }
    Ok(units)
}

/// `systemctl is-active` (one word on stdout) with its exit status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IsActive {
    /// The word.
    pub state: String,
    /// Exit 0 only for `active`; 3 or 4 otherwise (4 = unit missing on systemd ≥ 253).
    pub exit: i32,
}

/// Parses `systemctl is-active`.
pub fn parse_is_active(stdout: &str, exit: i32) -> Result<IsActive, ProbeError> {
    let w = stdout.trim();
    match w {
        "active" | "inactive" | "activating" | "deactivating" | "failed" | "unknown"
        | "reloading" | "maintenance" | "refreshing" => Ok(IsActive {
            state: w.to_string(),
            exit,
        }),
        _ => Err(ProbeError::new(
            "systemctl is-active",
            "unknown state word",
            stdout,
        )),
    }
}

/// `systemctl status <unit>` reduced to what it says about existence and state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum Status {
    /// "Unit X could not be found." (exit 4): for emergency-access this is the expected answer.
    NotFound {
        /// Unit name.
        unit: String,
    },
    /// The unit exists.
    Present {
        /// Unit name.
        unit: String,
        /// `Active:` first word(s), e.g. `active (running)`, `failed (Result: exit-code)`.
        active: String,
    },
}

/// Parses `systemctl status`.
pub fn parse_status(out: &str) -> Result<Status, ProbeError> {
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("Unit ") {
            if let Some(unit) = rest.strip_suffix(" could not be found.") {
                return Ok(Status::NotFound {
                    unit: unit.to_string(),
                });
            }
        }
    }
    let mut lines = out.lines();
    let head = lines.next().unwrap_or("");
    let unit = head
        .trim_start_matches(['●', '×', '○', '↻', '*', ' '])
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    let active = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Active: "))
        .map(|a| a.split(" since ").next().unwrap_or(a).trim().to_string());
    match active {
        Some(active) if !unit.is_empty() => Ok(Status::Present { unit, active }),
        _ => Err(ProbeError::new(
            "systemctl status",
            "neither 'could not be found' nor an Active: line",
            out,
        )),
    }
}
