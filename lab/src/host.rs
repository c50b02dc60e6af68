//! What the lab needs from its host, checked before anything is created: root, the Debian
//! packages whose real daemons the machines run, TUN, and subnets that overlap nothing of the
//! host's (so no lab packet can reach a real network).

use std::net::Ipv4Addr;
use std::path::Path;

use crate::error::LabError;
use crate::net;
use crate::process::ip;

/// Debian packages the lab needs, with a program that proves each is there.
pub const PACKAGES: &[(&str, &str)] = &[
    ("iproute2", "/usr/sbin/ip"),
    ("openssh-server", "/usr/sbin/sshd"),
    ("openssh-client", "/usr/bin/ssh"),
    ("yggdrasil", "/usr/sbin/yggdrasil"),
    ("iputils-ping", "/usr/bin/ping"),
    ("util-linux", "/usr/bin/nsenter"),
];

/// uid of this process.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The lab's packages whose program is not there.
pub(crate) fn missing_packages() -> Vec<&'static str> {
    PACKAGES
        .iter()
        .filter(|(_, p)| !Path::new(p).exists())
        .map(|(n, _)| *n)
        .collect()
}

/// Why the lab cannot run here (not root, packages missing), if it cannot.
pub fn unsupported() -> Option<String> {
    if !is_root() {
        return Some("not root: namespaces, veths and sshd need root".into());
    }
    let missing = missing_packages();
    if !missing.is_empty() {
        return Some(format!(
            "missing Debian packages: {} (apt-get install {})",
            missing.join(", "),
            missing.join(" ")
        ));
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing: yggdrasil needs TUN".into());
    }
    None
}

/// The lab's management and underlay /24s: the first pair that overlaps no address or route of
/// the host's.
pub(crate) fn free_subnets() -> Result<(Ipv4Addr, Ipv4Addr), LabError> {
    let host = net::host_prefixes(
        &ip(&["-j", "addr"])?,
        &[&ip(&["-j", "-4", "route"])?, &ip(&["-j", "-6", "route"])?],
    );
    net::choose(&host).map_err(|what| LabError::SubnetInUse {
        subnet: "198.18.100.0-198.18.251.0 /24 pairs".into(),
        what,
    })
}
