//! machines.toml: the fleet as the operator describes it. Parsing is strict (unknown fields are
//! rejected) and every error names file, line, column, field and a fix, because a typo here would
//! otherwise surface as a confusing SSH failure much later.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use once_cell::sync::Lazy;
use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::error::ConfigError;

/// Machine, user, domain and instance names: what clan itself accepts for hostnames.
pub static NAME_RE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$").expect("static regex is valid")
});
/// A DNS domain made of name labels (clan's `meta.domain`, e.g. `clan` or `zt`).
static DOMAIN_RE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
        .expect("static regex is valid")
});
/// systemd unit names the operator may name for custom module probes.
pub static UNIT_RE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^[A-Za-z0-9:_.@-]+\.(service|socket|timer|target|mount|path)$")
        .expect("static regex is valid")
});

/// The overlay network the fleet uses for machine-to-machine traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OverlayKind {
    /// clan-core's `zerotier` service.
    Zerotier,
    /// clan-core's `yggdrasil` service.
    Yggdrasil,
}

/// How the harness authenticates to machines. Never a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshAuth {
    /// Keys offered by the running ssh-agent (`SSH_AUTH_SOCK`).
    Agent,
    /// A private key file (no passphrase prompt: use the agent for protected keys).
    IdentityFile(PathBuf),
}

/// SSH settings shared by all machines.
#[derive(Debug, Clone)]
pub struct SshSettings {
    /// Authentication method.
    pub auth: SshAuth,
    /// Remote user (clan deploys as root).
    pub user: String,
    /// TCP connect plus handshake limit.
    pub connect_timeout: Duration,
    /// Default deadline of one remote command.
    pub command_timeout: Duration,
    /// known_hosts file for machines the clan repo has no host key for.
    pub known_hosts: Option<PathBuf>,
    /// Network namespace (name under /run/netns) the SSH sockets are opened in: the lab's
    /// workstation namespace, so the harness reaches lab machines without any lab route in the
    /// host's own namespace. None = the harness's own namespace.
    pub netns: Option<String>,
}

/// Pass/fail limits.
#[derive(Debug, Clone)]
pub struct Thresholds {
    /// Largest acceptable average and maximum RTT over the overlay (story: 200 ms).
    pub max_rtt_ms: f64,
    /// Echo requests per ordered pair.
    pub ping_count: u32,
    /// Seconds between echo requests (below 0.2 needs root on the machine).
    pub ping_interval_secs: f64,
    /// Seconds to wait for the last reply.
    pub ping_timeout_secs: u32,
}

/// One machine of the fleet.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    /// clan machine name.
    pub name: String,
    /// Address the workstation reaches it at (public IP, or lab underlay).
    pub address: IpAddr,
    /// SSH port.
    pub port: u16,
    /// Remote user, overriding `ssh.user`.
    pub user: String,
    /// Overlay address override (normally read from the clan repo's vars).
    pub overlay_address: Option<Ipv6Addr>,
}

/// Probes for clan modules the harness has no built-in knowledge of.
#[derive(Debug, Clone, Default)]
pub struct ModuleProbe {
    /// Units that must be active on every member of any role of the module.
    pub units: Vec<String>,
}

/// The validated machines.toml.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Where it was read from.
    pub path: PathBuf,
    /// Root of the clan repository (the oracle).
    pub clan_dir: PathBuf,
    /// Domain for host certificate principals; `None` = inventory `meta.domain`, else `clan`.
    pub domain: Option<String>,
    /// Overlay kind.
    pub overlay: OverlayKind,
    /// Inventory serialization JSON file (fallback when nix is unavailable).
    pub inventory_json: Option<PathBuf>,
    /// Flake reference for `nix eval` of the inventory.
    pub flake: Option<String>,
    /// SSH settings.
    pub ssh: SshSettings,
    /// Thresholds.
    pub thresholds: Thresholds,
    /// Machines, in file order.
    pub machines: Vec<MachineConfig>,
    /// Custom module probes by module name.
    pub modules: BTreeMap<String, ModuleProbe>,
    /// How to rebuild machines (AC5/AC6).
    pub rebuild: RebuildConfig,
}

/// Rebuilds (AC5/AC6): the command run on the workstation per machine and what to compare.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildConfig {
    /// argv template, split on whitespace; `{machine}`, `{flake}`, `{target}` are substituted
    /// with validated values. Never run through a shell.
    pub command: Vec<String>,
    /// Machines rebuilt at once.
    pub parallel: usize,
    /// Limit for one machine's rebuild.
    pub timeout: Duration,
    /// Files whose sha256 must be equal on every machine after the rebuild.
    pub artefacts: Vec<Artefact>,
    /// Units that must be running since the switch after a setting change (AC6); empty = the
    /// overlay daemon.
    pub restart_units: Vec<String>,
}

/// A file compared across machines after a rebuild.
#[derive(Debug, Clone, PartialEq)]
pub struct Artefact {
    /// Absolute path on the machines.
    pub path: String,
    /// Expected sha256 (hex), if known.
    pub expect_sha256: Option<String>,
}

impl Default for RebuildConfig {
    fn default() -> Self {
        RebuildConfig {
            command: ["clan", "machines", "update", "{machine}"]
                .map(String::from)
                .to_vec(),
            parallel: 4,
            timeout: Duration::from_secs(1800),
            artefacts: Vec::new(),
            restart_units: Vec::new(),
        }
    }
}

impl FleetConfig {
    /// The machine called `name`.
    pub fn machine(&self, name: &str) -> Option<&MachineConfig> {
        self.machines.iter().find(|m| m.name == name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    fleet: Spanned<RawFleet>,
    #[serde(default)]
    ssh: Option<Spanned<RawSsh>>,
    #[serde(default)]
    thresholds: Option<RawThresholds>,
    #[serde(default, rename = "machine")]
    machines: Vec<Spanned<RawMachine>>,
    #[serde(default)]
    modules: BTreeMap<Spanned<String>, RawModule>,
    #[serde(default)]
    rebuild: Option<Spanned<RawRebuild>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRebuild {
    #[serde(default)]
    command: Option<Spanned<String>>,
    #[serde(default)]
    parallel: Option<Spanned<usize>>,
    #[serde(default)]
    timeout_secs: Option<u64>,
    #[serde(default)]
    restart_units: Vec<Spanned<String>>,
    #[serde(default, rename = "artefact")]
    artefacts: Vec<RawArtefact>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArtefact {
    path: Spanned<String>,
    #[serde(default)]
    expect_sha256: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    clan_dir: Spanned<String>,
    #[serde(default)]
    domain: Option<Spanned<String>>,
    #[serde(default)]
    overlay: Option<OverlayKind>,
    #[serde(default)]
    inventory_json: Option<Spanned<String>>,
    #[serde(default)]
    flake: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSsh {
    #[serde(default)]
    auth: Option<Spanned<String>>,
    #[serde(default)]
    identity_file: Option<Spanned<String>>,
    #[serde(default)]
    user: Option<Spanned<String>>,
    #[serde(default)]
    connect_timeout_secs: Option<u64>,
    #[serde(default)]
    command_timeout_secs: Option<u64>,
    #[serde(default)]
    known_hosts: Option<Spanned<String>>,
    #[serde(default)]
    netns: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThresholds {
    #[serde(default)]
    max_rtt_ms: Option<Spanned<f64>>,
    #[serde(default)]
    ping_count: Option<Spanned<u32>>,
    #[serde(default)]
    ping_interval_secs: Option<Spanned<f64>>,
    #[serde(default)]
    ping_timeout_secs: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMachine {
    name: Spanned<String>,
    address: Spanned<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    user: Option<Spanned<String>>,
    #[serde(default)]
    overlay_address: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    #[serde(default)]
    units: Vec<Spanned<String>>,
}

/// Turns byte offsets into line/column for messages.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn at(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn error(&self, offset: usize, field: &str, problem: String, fix: &str) -> ConfigError {
        let (line, column) = self.at(offset);
        ConfigError {
            path: self.path.to_path_buf(),
            line,
            column,
            field: field.to_string(),
            problem,
            fix: fix.to_string(),
        }
    }

    fn name<'s>(&self, v: &'s Spanned<String>, field: &str) -> Result<&'s str, ConfigError> {
        let s = v.get_ref().as_str();
        if NAME_RE.is_match(s) {
            Ok(s)
        } else {
            Err(self.error(
                v.span().start,
                field,
                format!("{s:?} is not a valid name"),
                "use lowercase letters, digits and '-', starting and ending with a letter or digit (as clan machine names)",
            ))
        }
    }
}

/// Reads and validates a machines file.
pub fn load(path: &Path) -> Result<FleetConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        line: 0,
        column: 0,
        field: "(file)".into(),
        problem: format!("cannot read: {e}"),
        fix: "point COORD_MACHINES at an existing machines.toml".into(),
    })?;
    parse(path, &text)
}

/// Parses machines.toml text; `path` is used for messages and to resolve relative paths.
pub fn parse(path: &Path, text: &str) -> Result<FleetConfig, ConfigError> {
    let src = Source { path, text };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let msg = e.message().to_string();
        let (field, fix) = if msg.contains("unknown field") {
            (
                "(unknown field)",
                "remove or rename the field; README.md lists every field of machines.toml",
            )
        } else if msg.contains("missing field") {
            (
                "(missing field)",
                "add the field; README.md lists the required fields",
            )
        } else {
            (
                "(syntax)",
                "fix the TOML syntax or the value's type at this place",
            )
        };
        src.error(offset, field, msg, fix)
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let resolve = |p: &str| -> PathBuf {
        let expanded = match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
            (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
            _ => PathBuf::from(p),
        };
        if expanded.is_absolute() {
            expanded
        } else {
            base.join(expanded)
        }
    };

    let fleet_span = raw.fleet.span();
    let fleet = raw.fleet.into_inner();
    let domain = match &fleet.domain {
        Some(d) if !DOMAIN_RE.is_match(d.get_ref()) => {
            return Err(src.error(
                d.span().start,
                "fleet.domain",
                format!("{:?} is not a DNS domain", d.get_ref()),
                "use clan's meta.domain, e.g. \"clan\" or \"zt\"",
            ))
        }
        Some(d) => Some(d.get_ref().clone()),
        None => None,
    };
    let clan_dir = resolve(fleet.clan_dir.get_ref());
    if !clan_dir.is_dir() {
        return Err(src.error(
            fleet.clan_dir.span().start,
            "fleet.clan_dir",
            format!("{} is not a directory", clan_dir.display()),
            "point it at the clan repository root (the directory holding vars/), relative to this file",
        ));
    }
    let inventory_json = fleet.inventory_json.as_ref().map(|p| resolve(p.get_ref()));
    if let (Some(p), Some(s)) = (&inventory_json, &fleet.inventory_json) {
        if !p.is_file() {
            return Err(src.error(
                s.span().start,
                "fleet.inventory_json",
                format!("{} does not exist", p.display()),
                "write it with `nix eval --json .#clanInternals.inventoryClass.inventorySerialization > inventory.json`",
            ));
        }
    }

    let ssh = match raw.ssh {
        None => SshSettings {
            auth: SshAuth::Agent,
            user: "root".into(),
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(20),
            known_hosts: None,
            netns: None,
        },
        Some(s) => {
            let span = s.span();
            let s = s.into_inner();
            let auth = match (
                s.auth.as_ref().map(|a| a.get_ref().as_str()),
                &s.identity_file,
            ) {
                (None | Some("agent"), None) => SshAuth::Agent,
                (None | Some("identity_file"), Some(f)) => {
                    SshAuth::IdentityFile(resolve(f.get_ref()))
                }
                (Some("identity_file"), None) => {
                    return Err(src.error(
                        span.start,
                        "ssh.identity_file",
                        "auth = \"identity_file\" but no identity_file is given".into(),
                        "add identity_file = \"path/to/key\"",
                    ))
                }
                (Some("agent"), Some(f)) => {
                    return Err(src.error(
                        f.span().start,
                        "ssh.identity_file",
                        "identity_file is set while auth = \"agent\"".into(),
                        "drop identity_file, or set auth = \"identity_file\"",
                    ))
                }
                (Some(other), _) => {
                    let at = s.auth.as_ref().map_or(span.start, |a| a.span().start);
                    return Err(src.error(
                        at,
                        "ssh.auth",
                        format!("unknown auth method {other:?}"),
                        "use \"agent\" or \"identity_file\" (passwords are never used)",
                    ));
                }
            };
            let user = match &s.user {
                Some(u) => src.name(u, "ssh.user")?.to_string(),
                None => "root".into(),
            };
            let secs = |v: Option<u64>, d: u64, field: &str| -> Result<Duration, ConfigError> {
                match v {
                    Some(0) => Err(src.error(
                        span.start,
                        field,
                        "must be at least 1 second".into(),
                        "set a positive number of seconds",
                    )),
                    Some(n) => Ok(Duration::from_secs(n)),
                    None => Ok(Duration::from_secs(d)),
                }
            };
            SshSettings {
                auth,
                user,
                connect_timeout: secs(s.connect_timeout_secs, 5, "ssh.connect_timeout_secs")?,
                command_timeout: secs(s.command_timeout_secs, 20, "ssh.command_timeout_secs")?,
                known_hosts: s.known_hosts.as_ref().map(|p| resolve(p.get_ref())),
                netns: match &s.netns {
                    Some(n) => Some(src.name(n, "ssh.netns")?.to_string()),
                    None => None,
                },
            }
        }
    };

    let t = raw.thresholds;
    let pick = |f: Option<&Spanned<f64>>,
                d: f64,
                lo: f64,
                hi: f64,
                field: &str|
     -> Result<f64, ConfigError> {
        match f {
            Some(v) if !(lo..=hi).contains(v.get_ref()) => Err(src.error(
                v.span().start,
                field,
                format!("{} is out of range", v.get_ref()),
                &format!("use a value between {lo} and {hi}"),
            )),
            Some(v) => Ok(*v.get_ref()),
            None => Ok(d),
        }
    };
    let pick_u = |f: Option<&Spanned<u32>>,
                  d: u32,
                  lo: u32,
                  hi: u32,
                  field: &str|
     -> Result<u32, ConfigError> {
        match f {
            Some(v) if !(lo..=hi).contains(v.get_ref()) => Err(src.error(
                v.span().start,
                field,
                format!("{} is out of range", v.get_ref()),
                &format!("use a value between {lo} and {hi}"),
            )),
            Some(v) => Ok(*v.get_ref()),
            None => Ok(d),
        }
    };
    let thresholds = Thresholds {
        max_rtt_ms: pick(
            t.as_ref().and_then(|t| t.max_rtt_ms.as_ref()),
            200.0,
            0.1,
            60_000.0,
            "thresholds.max_rtt_ms",
        )?,
        ping_count: pick_u(
            t.as_ref().and_then(|t| t.ping_count.as_ref()),
            5,
            1,
            100,
            "thresholds.ping_count",
        )?,
        ping_interval_secs: pick(
            t.as_ref().and_then(|t| t.ping_interval_secs.as_ref()),
            0.2,
            0.002,
            10.0,
            "thresholds.ping_interval_secs",
        )?,
        ping_timeout_secs: pick_u(
            t.as_ref().and_then(|t| t.ping_timeout_secs.as_ref()),
            2,
            1,
            60,
            "thresholds.ping_timeout_secs",
        )?,
    };

    let mut machines: Vec<MachineConfig> = Vec::new();
    for m in &raw.machines {
        let m = m.get_ref();
        let name = src.name(&m.name, "machine.name")?.to_string();
        if machines.iter().any(|x| x.name == name) {
            return Err(src.error(
                m.name.span().start,
                "machine.name",
                format!("machine {name:?} is listed twice"),
                "keep one [[machine]] entry per machine",
            ));
        }
        let address: IpAddr = m.address.get_ref().parse().map_err(|e| {
            src.error(
                m.address.span().start,
                "machine.address",
                format!("{:?} is not an IP address ({e})", m.address.get_ref()),
                "write an IPv4 or IPv6 literal such as \"203.0.113.10\"; host names are not resolved, so the target is exact",
            )
        })?;
        let overlay_address = match &m.overlay_address {
            None => None,
            Some(a) => Some(a.get_ref().parse::<Ipv6Addr>().map_err(|e| {
                src.error(
                    a.span().start,
                    "machine.overlay_address",
                    format!("{:?} is not an IPv6 address ({e})", a.get_ref()),
                    "give the machine's overlay IPv6 address, or drop the field to read it from the clan repo",
                )
            })?),
        };
        let user = match &m.user {
            Some(u) => src.name(u, "machine.user")?.to_string(),
            None => ssh.user.clone(),
        };
        machines.push(MachineConfig {
            name,
            address,
            port: m.port.unwrap_or(22),
            user,
            overlay_address,
        });
    }
    if machines.is_empty() {
        return Err(src.error(
            fleet_span.start,
            "machine",
            "no [[machine]] entries".into(),
            "add one [[machine]] table per machine (name, address)",
        ));
    }
    // iputils refuses intervals under 0.2 s to anyone but root ("cannot flood"): say so here,
    // not as a mesh failure on every pair.
    if let (Some(iv), Some(m)) = (
        t.as_ref().and_then(|t| t.ping_interval_secs.as_ref()),
        machines.iter().find(|m| m.user != "root"),
    ) {
        if *iv.get_ref() < 0.2 {
            return Err(src.error(
                iv.span().start,
                "thresholds.ping_interval_secs",
                format!(
                    "{} s is below 0.2 s, which ping allows only to root, and {} logs in as {:?}",
                    iv.get_ref(),
                    m.name,
                    m.user
                ),
                "use 0.2 or more, or log in as root",
            ));
        }
    }

    let mut modules = BTreeMap::new();
    for (name, probe) in raw.modules {
        src.name(&name, "modules.<name>")?;
        let mut units = Vec::new();
        for u in probe.units {
            if !UNIT_RE.is_match(u.get_ref()) {
                return Err(src.error(
                    u.span().start,
                    "modules.units",
                    format!("{:?} is not a systemd unit name", u.get_ref()),
                    "write full unit names such as \"my-service.service\"",
                ));
            }
            units.push(u.into_inner());
        }
        modules.insert(name.into_inner(), ModuleProbe { units });
    }

    let mut rebuild = RebuildConfig::default();
    if let Some(r) = raw.rebuild {
        let span = r.span();
        let r = r.into_inner();
        if let Some(c) = &r.command {
            let argv: Vec<String> = c.get_ref().split_whitespace().map(String::from).collect();
            let bad = argv.iter().find(|a| {
                let mut rest = a.as_str();
                while let Some(i) = rest.find('{') {
                    let after = &rest[i..];
                    let Some(j) = after.find('}') else {
                        return true;
                    };
                    if !matches!(&after[..=j], "{machine}" | "{flake}" | "{target}") {
                        return true;
                    }
                    rest = &after[j + 1..];
                }
                false
            });
            if argv.is_empty() || bad.is_some() {
                return Err(src.error(
                    c.span().start,
                    "rebuild.command",
                    match bad {
                        Some(b) => format!("unknown placeholder in {b:?}"),
                        None => "empty command".into(),
                    },
                    "use a program and arguments with {machine}, {flake} and {target} only (no shell)",
                ));
            }
            rebuild.command = argv;
        }
        if let Some(p) = &r.parallel {
            if !(1..=64).contains(p.get_ref()) {
                return Err(src.error(
                    p.span().start,
                    "rebuild.parallel",
                    format!("{} is out of range", p.get_ref()),
                    "use 1 to 64",
                ));
            }
            rebuild.parallel = *p.get_ref();
        }
        match r.timeout_secs {
            Some(0) => {
                return Err(src.error(
                    span.start,
                    "rebuild.timeout_secs",
                    "must be at least 1".into(),
                    "set a positive number of seconds",
                ))
            }
            Some(n) => rebuild.timeout = Duration::from_secs(n),
            None => {}
        }
        for u in r.restart_units {
            if !UNIT_RE.is_match(u.get_ref()) {
                return Err(src.error(
                    u.span().start,
                    "rebuild.restart_units",
                    format!("{:?} is not a systemd unit name", u.get_ref()),
                    "write full unit names such as \"yggdrasil.service\"",
                ));
            }
            rebuild.restart_units.push(u.into_inner());
        }
        for a in r.artefacts {
            let p = a.path.get_ref();
            if !p.starts_with('/')
                || p.split('/').any(|c| c == "..")
                || p.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(src.error(
                    a.path.span().start,
                    "rebuild.artefact.path",
                    format!("{p:?} is not an absolute path without '..' or spaces"),
                    "write the file's absolute path on the machines",
                ));
            }
            let expect_sha256 = match a.expect_sha256 {
                Some(h)
                    if h.get_ref().len() == 64
                        && h.get_ref().bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    Some(h.into_inner().to_ascii_lowercase())
                }
                Some(h) => {
                    return Err(src.error(
                        h.span().start,
                        "rebuild.artefact.expect_sha256",
                        format!("{:?} is not a sha256 hex digest", h.get_ref()),
                        "64 hex digits, as `sha256sum` prints",
                    ))
                }
                None => None,
            };
            rebuild.artefacts.push(Artefact {
                path: p.clone(),
                expect_sha256,
            });
        }
    }

    Ok(FleetConfig {
        path: path.to_path_buf(),
        clan_dir,
        domain,
        overlay: fleet.overlay.unwrap_or(OverlayKind::Zerotier),
        inventory_json,
        flake: fleet.flake.map(Spanned::into_inner),
        ssh,
        thresholds,
        machines,
        modules,
        rebuild,
    })
}
