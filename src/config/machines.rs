//! `[[machine]]`: the fleet's members. Addresses must be IP literals so the harness talks to
//! exactly the machine named, never whatever a resolver returns.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv6Addr};

use toml::Spanned;

use super::located::Source;
use super::raw::RawMachine;
use super::MAX_MACHINES;
use crate::error::ConfigError;

/// One machine of the fleet.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    /// clan machine name.
    pub name: String,
    /// Address the workstation reaches it at: an IP literal, or a host name resolved at connect
    /// time (a clan's `deploy.targetHost` is often one, e.g. `cinnabar.zt`).
    pub address: Address,
    /// SSH port.
    pub port: u16,
    /// Remote user, overriding `ssh.user`.
    pub user: String,
    /// Overlay address override (normally read from the clan repo's vars).
    pub overlay_address: Option<Ipv6Addr>,
}

/// Where the workstation reaches a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// An IP literal: the target is exact.
    Ip(IpAddr),
    /// A host name: the system resolver answers it under the connect timeout, and every rule for
    /// literals (documentation addresses refused, host key pinned to the repo) holds for the
    /// address it gives.
    Name(String),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Ip(ip) => ip.fmt(f),
            Address::Name(n) => f.write_str(n),
        }
    }
}

/// A DNS host name (RFC 1123 labels): letters, digits, inner hyphens, dot-separated; nothing a
/// shell, ssh or a URL would read otherwise.
pub fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && !s.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// Validates the `[[machine]]` tables in file order: names valid and unique, addresses literal,
/// `user` defaulting to `ssh_user`. An empty fleet is an error located at `fleet_start` (the
/// `[fleet]` table), since there is no machine table to point at.
pub(super) fn parse(
    src: &Source,
    raw: &[Spanned<RawMachine>],
    ssh_user: &str,
    fleet_start: usize,
) -> Result<Vec<MachineConfig>, ConfigError> {
    if let Some(extra) = raw.get(MAX_MACHINES) {
        return Err(src.error(
            extra.span().start,
            "machine",
            format!("more than {MAX_MACHINES} machines"),
            "split the fleet into several machines.toml files, one run each",
        ));
    }
    let mut machines: Vec<MachineConfig> = Vec::with_capacity(raw.len());
    // Names seen so far: one lookup per machine keeps a big file linear, not quadratic.
    let mut seen: HashSet<&str> = HashSet::with_capacity(raw.len());
    for m in raw {
        let m = m.get_ref();
        let name = src.name(&m.name, "machine.name")?;
        if !seen.insert(name) {
            return Err(src.error(
                m.name.span().start,
                "machine.name",
                format!("machine {name:?} is listed twice"),
                "keep one [[machine]] entry per machine",
            ));
        }
        let name = name.to_string();
        let text = m.address.get_ref();
        let address = match text.parse::<IpAddr>() {
            Ok(ip) => Address::Ip(ip),
            Err(_) if is_host_name(text) => Address::Name(text.to_string()),
            Err(e) => {
                return Err(src.error(
                    m.address.span().start,
                    "machine.address",
                    format!("{text:?} is neither an IP address ({e}) nor a host name"),
                    "write an IPv4 or IPv6 literal such as \"203.0.113.10\", or a host name such as \"cinnabar.zt\" (letters, digits, hyphens and dots only)",
                ))
            }
        };
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
            None => ssh_user.to_string(),
        };
        machines.push(MachineConfig {
            name,
            address,
            port: src.bounded(m.port.as_ref(), 22, 1, u16::MAX, "machine.port")?,
            user,
            overlay_address,
        });
    }
    if machines.is_empty() {
        return Err(src.error(
            fleet_start,
            "machine",
            "no [[machine]] entries".into(),
            "add one [[machine]] table per machine (name, address)",
        ));
    }
    Ok(machines)
}
