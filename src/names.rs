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

/// The unit types systemd knows: a unit name must end in one of them.
const UNIT_SUFFIXES: [&str; 11] = [
    "service",
    "socket",
    "target",
    "timer",
    "mount",
    "automount",
    "path",
    "swap",
    "slice",
    "scope",
    "device",
];

/// systemd's limit on a unit name (UNIT_NAME_MAX, less the terminating NUL).
const UNIT_NAME_MAX: usize = 255;

/// A systemd unit name, checked when made: systemd's characters (`[A-Za-z0-9:_.\@-]`, one `@` at
/// most), a known type suffix, at most 255 bytes, and never a leading `-` or `.`, so it cannot be
/// read as an option by a remote `systemctl` or `journalctl` it is handed to.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct UnitName(String);

impl UnitName {
    /// Validates `name`; the error says what is wrong with it.
    pub fn new(name: &str) -> Result<UnitName, String> {
        let why = if name.len() > UNIT_NAME_MAX {
            format!("is longer than {UNIT_NAME_MAX} bytes")
        } else if name.starts_with('-') || name.starts_with('.') {
            "starts with '-' or '.' (it would be read as an option)".into()
        } else if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ":_.\\@-".contains(*c)))
        {
            format!("contains {c:?} (systemd allows letters, digits and :_.\\@-)")
        } else if name.matches('@').count() > 1 {
            "has more than one '@'".into()
        } else {
            match name.rsplit_once('.') {
                Some((stem, suffix))
                    if UNIT_SUFFIXES.contains(&suffix) && !stem.is_empty() && stem != "@" =>
                {
                    return Ok(UnitName(name.to_string()))
                }
                _ => format!("has no unit type suffix (.{})", UNIT_SUFFIXES.join(", .")),
            }
        };
        Err(format!("{name:?} is not a systemd unit name: it {why}"))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// A DNS domain of name labels (clan's `meta.domain`, e.g. `clan` or `zt`), checked when made:
/// it ends up in certificate principals and `ssh -o HostKeyAlias=<machine>.<domain>`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DomainName(String);

/// The longest domain name DNS allows.
const DOMAIN_MAX: usize = 253;

impl DomainName {
    /// Validates `name`: labels of 1 to 63 lowercase letters, digits and '-', not starting or
    /// ending with '-', joined by single dots; at most 253 characters.
    pub fn new(name: &str) -> Result<DomainName, String> {
        let why = if name.is_empty() {
            Some("is empty".to_string())
        } else if name.len() > DOMAIN_MAX {
            Some(format!("is longer than {DOMAIN_MAX} characters"))
        } else {
            name.split('.').find_map(|l| {
                if l.is_empty() {
                    Some("has an empty label (a leading, trailing or double dot)".to_string())
                } else if !NAME_RE.is_match(l) {
                    Some(format!(
                        "has the label {l:?} (1 to 63 lowercase letters, digits and '-', not at either end)"
                    ))
                } else {
                    None
                }
            })
        };
        match why {
            None => Ok(DomainName(name.to_string())),
            Some(why) => Err(format!("{name:?} is not a DNS domain: it {why}")),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Both print as the plain string they hold (`"clan"`), as the `String` they replace did.
macro_rules! plain_string {
    ($t:ty) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::ops::Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                <$t>::new(s)
            }
        }
    };
}
plain_string!(UnitName);
plain_string!(DomainName);

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
    fn unit_names_follow_systemd_and_never_look_like_options() {
        let ok = [
            "sshd.service",
            "zerotier-autoaccept-zt_1.service",
            "getty@tty1.service",
            "foo@.service",
            "x:y\\x2d.mount",
            "nightly.timer",
            "a.slice",
        ];
        for u in ok {
            assert_eq!(UnitName::new(u).map(String::from), Ok(u.to_string()), "{u}");
        }
        let long = format!("{}.service", "a".repeat(250));
        let bad: [(&str, &str); 13] = [
            ("-H.service", "starts with '-'"),
            ("--host=evil.service", "starts with '-'"),
            ("-p", "starts with '-'"),
            (".service", "starts with '-' or '.'"),
            ("nounit", "no unit type suffix"),
            ("x.exe", "no unit type suffix"),
            ("@.service", "no unit type suffix"),
            ("", "no unit type suffix"),
            ("a b.service", "contains ' '"),
            ("a;reboot.service", "contains ';'"),
            ("a/../b.service", "contains '/'"),
            ("a@b@c.service", "more than one '@'"),
            (&long, "longer than 255 bytes"),
        ];
        for (u, why) in bad {
            let e = UnitName::new(u).expect_err(u);
            assert!(
                e.contains(why) && e.contains("is not a systemd unit name"),
                "{u}: {e}"
            );
        }
    }

    #[test]
    fn domains_are_dns_labels() {
        for d in ["clan", "zt", "a.b-c.d0", &format!("{}.x", "a".repeat(63))] {
            assert!(DomainName::new(d).is_ok(), "{d}");
        }
        let long = vec!["a".repeat(63); 4].join(".");
        let bad: [(&str, &str); 10] = [
            ("", "is empty"),
            ("a b", "label \"a b\""),
            ("a..b", "empty label"),
            (".clan", "empty label"),
            ("clan.", "empty label"),
            ("-clan", "label \"-clan\""),
            ("Clan", "label \"Clan\""),
            ("x -oProxyCommand=sh", "label"),
            (&long, "longer than 253"),
            (&format!("{}.x", "a".repeat(64)), "label"),
        ];
        for (d, why) in bad {
            let e = DomainName::new(d).expect_err(d);
            assert!(
                e.contains(why) && e.contains("is not a DNS domain"),
                "{d}: {e}"
            );
        }
    }

    #[test]
    fn machine_names_are_checked() {
        assert!(MachineName::new("gcp-vm").is_ok());
        assert!(MachineName::new("-x").is_err());
        assert!(MachineName::new("a b").is_err());
    }
}
