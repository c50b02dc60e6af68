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
    ("systemd-container", "/usr/bin/systemd-nspawn"),
    ("debootstrap", "/usr/sbin/debootstrap"),
    ("nix-bin", "/usr/bin/nix"),
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

/// The lab's management /24 and underlay /20: the first pair that overlaps no address or route
/// of the host's.
pub(crate) fn free_subnets() -> Result<(Ipv4Addr, Ipv4Addr), LabError> {
    let host = net::host_prefixes(
        &ip(&["-j", "addr"])?,
        &[&ip(&["-j", "-4", "route"])?, &ip(&["-j", "-6", "route"])?],
    );
    net::choose(&host).map_err(|what| LabError::SubnetInUse {
        subnet: "198.18.100.0-198.18.255.255 (a management /24 and an underlay /20)".into(),
        what,
    })
}

/// `fs.inotify.max_user_instances`: each booted machine's systemd and journald use about 8 of
/// root's inotify instances, and Debian's limit of 128 runs out near 15 machines (the next ones
/// boot degraded). The lab raises the limit for its lifetime when it must, says so, and puts the
/// old value back at `lab down`.
pub(crate) mod inotify {
    use std::path::Path;

    use crate::error::LabError;
    use crate::files::io;

    const LIMIT: &str = "/proc/sys/fs/inotify/max_user_instances";
    /// Instances one machine uses (measured: about 8), with room to spare.
    pub(crate) const PER_MACHINE: u64 = 10;

    fn read_limit() -> Result<u64, LabError> {
        let t = std::fs::read_to_string(LIMIT).map_err(|e| io(Path::new(LIMIT), e))?;
        t.trim()
            .parse()
            .map_err(|_| LabError::Invalid(format!("{LIMIT}: {t:?} is no number")))
    }

    /// root's inotify instances in use now (descriptors on `anon_inode:inotify` of root's
    /// processes).
    fn in_use() -> u64 {
        let mut n = 0;
        for p in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let root_owned = std::fs::read_to_string(p.path().join("status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("Uid:"))
                        .map(|l| l.split_whitespace().nth(1) == Some("0"))
                })
                .unwrap_or(false);
            if !root_owned {
                continue;
            }
            for fd in std::fs::read_dir(p.path().join("fd"))
                .into_iter()
                .flatten()
                .flatten()
            {
                if std::fs::read_link(fd.path())
                    .is_ok_and(|t| t.as_os_str() == "anon_inode:inotify")
                {
                    n += 1;
                }
            }
        }
        n
    }

    /// What the limit must be for `machines` more machines, given what is in use now.
    pub(crate) fn needed(machines: usize, in_use: u64) -> u64 {
        in_use + PER_MACHINE * machines as u64
    }

    /// Raises the limit when `machines` would not fit; returns the old value to restore.
    pub(crate) fn make_room(
        machines: usize,
        notice: &mut dyn FnMut(&str),
    ) -> Result<Option<u64>, LabError> {
        let limit = read_limit()?;
        let used = in_use();
        let need = needed(machines, used);
        if need <= limit {
            return Ok(None);
        }
        let new = need.next_multiple_of(256);
        std::fs::write(LIMIT, format!("{new}\n")).map_err(|e| io(Path::new(LIMIT), e))?;
        notice(&format!(
            "lab: raised fs.inotify.max_user_instances from {limit} to {new} for the lab's lifetime \
             ({machines} machines use about {PER_MACHINE} each, {used} in use already); `lab down` puts {limit} back"
        ));
        Ok(Some(limit))
    }

    /// Puts the limit back to `old` (the value before `lab up` raised it), unless what is in use
    /// now (another lab's machines) would not fit under it: then it stays, and says why.
    pub(crate) fn restore(old: u64, notice: &mut dyn FnMut(&str)) -> Result<(), LabError> {
        let used = in_use();
        if used + PER_MACHINE > old {
            notice(&format!(
                "lab: fs.inotify.max_user_instances stays raised: {used} instances are in use \
                 (other labs' machines), more than its old value {old} leaves room for"
            ));
            return Ok(());
        }
        std::fs::write(LIMIT, format!("{old}\n")).map_err(|e| io(Path::new(LIMIT), e))?;
        notice(&format!("lab: fs.inotify.max_user_instances back to {old}"));
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn sixteen_machines_do_not_fit_debians_default() {
            assert!(super::needed(2, 10) <= 128);
            assert!(super::needed(16, 10) > 128);
        }
    }
}
