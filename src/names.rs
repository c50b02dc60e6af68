//! Typed names: a machine name validated once, the acceptance criteria as one enum (every list of
//! criteria in the crate comes from [`Criterion::ALL`]), and where a run's answers come from.

use std::borrow::Borrow;
use std::fmt;
use std::path::PathBuf;

use once_cell::sync::Lazy;
use regex::Regex;
use serde::Serialize;

/// Machine, user, domain and instance names: what clan itself accepts for hostnames.
pub static NAME_RE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$").expect("static regex is valid")
});

/// A clan machine name (`^[a-z0-9-]+$`, what clan accepts as a hostname), checked when made, so
/// it can go into commands, file names and certificate principals without another check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct MachineName(String);

impl MachineName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<MachineName, String> {
        if NAME_RE.is_match(name) {
            Ok(MachineName(name.to_string()))
        } else {
            Err(format!(
                "{name:?} is not a machine name (lowercase letters, digits and '-', at most 63)"
            ))
        }
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for MachineName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for MachineName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for MachineName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MachineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for MachineName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for MachineName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// The seven acceptance criteria of the story (`../shared/mission.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Criterion {
    /// Overlay mesh up.
    Ac1,
    /// SSH via the overlay with certificate-checked hosts.
    Ac2,
    /// Service instances as the inventory says.
    Ac3,
    /// Shared vars identical.
    Ac4,
    /// A shared change rebuilt onto every machine identically.
    Ac5,
    /// A service setting change propagated, services still coordinating.
    Ac6,
    /// The network stable for 24 hours.
    Ac7,
}

impl Criterion {
    /// Every criterion, in order.
    pub const ALL: [Criterion; 7] = [
        Criterion::Ac1,
        Criterion::Ac2,
        Criterion::Ac3,
        Criterion::Ac4,
        Criterion::Ac5,
        Criterion::Ac6,
        Criterion::Ac7,
    ];

    /// The criteria judged on the fleet itself (AC7 is judged from a monitor log).
    pub fn on_the_fleet() -> impl Iterator<Item = Criterion> {
        Criterion::ALL.into_iter().filter(|c| *c != Criterion::Ac7)
    }

    /// The criteria judged from one observation of the fleet (read-only).
    pub const OBSERVED: [Criterion; 4] = [
        Criterion::Ac1,
        Criterion::Ac2,
        Criterion::Ac3,
        Criterion::Ac4,
    ];

    /// `AC1`..`AC7`: the id in verdicts, report.json and cassettes.
    pub fn id(self) -> &'static str {
        match self {
            Criterion::Ac1 => "AC1",
            Criterion::Ac2 => "AC2",
            Criterion::Ac3 => "AC3",
            Criterion::Ac4 => "AC4",
            Criterion::Ac5 => "AC5",
            Criterion::Ac6 => "AC6",
            Criterion::Ac7 => "AC7",
        }
    }

    /// The title printed beside the id.
    pub fn title(self) -> &'static str {
        match self {
            Criterion::Ac1 => "overlay mesh",
            Criterion::Ac2 => "SSH via the overlay with certificate-checked hosts",
            Criterion::Ac3 => "service instances deployed as the inventory says",
            Criterion::Ac4 => "shared vars",
            Criterion::Ac5 => "shared change rebuilt and applied identically",
            Criterion::Ac6 => "setting change propagated, services still coordinate",
            Criterion::Ac7 => "network stable over the required span",
        }
    }

    /// Whether judging it changes the machines (rebuilds): live, it needs an opt-in.
    pub fn destructive(self) -> bool {
        matches!(self, Criterion::Ac5 | Criterion::Ac6)
    }

    /// Parses `ac1`, `AC1` or `1`.
    pub fn parse(s: &str) -> Option<Criterion> {
        let n = s
            .strip_prefix("ac")
            .or_else(|| s.strip_prefix("AC"))
            .unwrap_or(s);
        Criterion::ALL.into_iter().find(|c| &c.id()[2..] == n)
    }
}

impl fmt::Display for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for Criterion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl PartialEq<str> for Criterion {
    fn eq(&self, other: &str) -> bool {
        self.id() == other
    }
}

impl PartialEq<&str> for Criterion {
    fn eq(&self, other: &&str) -> bool {
        self.id() == *other
    }
}

impl PartialEq<String> for Criterion {
    fn eq(&self, other: &String) -> bool {
        self.id() == other
    }
}

/// Where a run's answers come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Real SSH to the machines.
    Live,
    /// A cassette replayed offline.
    Replay(PathBuf),
    /// Nothing runs: `clan-coord plan` only lists what would.
    DryRun,
}

impl Origin {
    /// Live machines answer (rebuilds would really happen).
    pub fn is_live(&self) -> bool {
        *self == Origin::Live
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Live => f.write_str("live"),
            Origin::Replay(p) => write!(f, "replay of {}", p.display()),
            Origin::DryRun => f.write_str("dry run"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_parse_and_name() {
        assert_eq!(Criterion::parse("ac3"), Some(Criterion::Ac3));
        assert_eq!(Criterion::parse("AC7"), Some(Criterion::Ac7));
        assert_eq!(Criterion::parse("ac8"), None);
        assert_eq!(Criterion::Ac2.to_string(), "AC2");
        assert_eq!(serde_json::to_string(&Criterion::Ac5).unwrap(), "\"AC5\"");
    }

    #[test]
    fn machine_names_are_checked() {
        assert!(MachineName::new("gcp-vm").is_ok());
        assert!(MachineName::new("-x").is_err());
        assert!(MachineName::new("a b").is_err());
    }
}
