//! The lab machines' operating system: one Debian root file system, built once with
//! `debootstrap --variant=minbase` and cached outside the checkout, keyed by what goes into it
//! (suite, package list, the lab's layer below). Every machine boots it read-only under its own
//! volatile overlay (`systemd-nspawn --volatile=overlay`), so machines never change it.
//!
//! The lab's layer makes Debian answer as a NixOS machine does where the harness looks, and fixes
//! the Debian defaults that would fool it (measured, `reference/lab-notes.md`):
//! - `sshd.service` is the real unit (Debian's is `ssh.service` with `sshd` only an alias, so
//!   `journalctl -u sshd` would be empty); `ssh.service`, `ssh.socket` masked.
//! - `yggdrasil.service` as NixOS runs it: its configuration from `/etc/yggdrasil`, its admin
//!   socket in `/run/yggdrasil`, restarted when it dies.
//! - `clan-lab-activation.service`: the stand-in for NixOS's activation at boot and on switch:
//!   `/run/current-system` from the system profile, root's password hash from its deployed var.
//! - `libpam-systemd` installed (sessions in their own scopes, so restarting sshd leaves no
//!   process behind), `/etc/hosts` present (minbase has none: `localhost` would not resolve),
//!   `/etc/default/locale` present (pam_env logs an error per login without
//!   it), an empty `/etc/machine-id` (each machine makes its own), no `/etc/hostname` (the machine
//!   is named by nspawn), the console getty and Debian's periodic jobs masked.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::error::LabError;
use crate::files::{io, lock_exclusive, mkdir, write};
use crate::process::run_logged;

/// Bumped when the layer's code changes what it writes (the texts below are keyed themselves).
const LAYER_VERSION: &str = "2: /etc/hosts";

/// Where the root file systems are cached by default (outside any checkout).
pub const DEFAULT_CACHE: &str = "/var/cache/clan-coord-lab";
/// debootstrap's output.
pub const BUILD_LOG: &str = "/var/log/clan-coord-lab-debootstrap.log";

/// Packages of a lab machine beyond minbase: systemd as init, the daemons the clan runs, what
/// the harness's probes call (`ip`, `ping`, `ssh`), and python3 for clan-core's zerotier tools.
pub const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "libpam-systemd",
    "openssh-server",
    "openssh-client",
    "iproute2",
    "iputils-ping",
    "procps",
    "yggdrasil",
    "python3",
];

/// Units masked in every machine: Debian's ssh names (the real unit is `sshd.service`), the
/// console getty (nspawn's console is passive) and periodic jobs a test machine must not run.
const MASKED: &[&str] = &[
    "ssh.service",
    "ssh.socket",
    "console-getty.service",
    "getty@tty1.service",
    "systemd-pstore.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "yggdrasil-default-config.service",
];

/// NixOS's `services.yggdrasil` unit, reading the configuration the lab deploys.
const YGGDRASIL_UNIT: &str = "[Unit]
Description=Yggdrasil Network Service
Wants=network-online.target
After=network-online.target clan-lab-activation.service
# Only on machines the lab gives a yggdrasil configuration (not on the ZeroTier lab's).
ConditionPathExists=/etc/yggdrasil/yggdrasil.conf

[Service]
ExecStart=/usr/sbin/yggdrasil -useconffile /etc/yggdrasil/yggdrasil.conf
ExecReload=/bin/kill -HUP $MAINPID
RuntimeDirectory=yggdrasil
Restart=always

[Install]
WantedBy=multi-user.target
";

/// The activation stand-in's unit (see the module doc).
const ACTIVATION_UNIT: &str = "[Unit]
Description=clan-coord lab: NixOS activation stand-in (current system, users)
DefaultDependencies=no
After=local-fs.target
Before=sshd.service yggdrasil.service multi-user.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/lib/clan-coord-lab/activate

[Install]
WantedBy=multi-user.target
";

/// What the activation stand-in does, as NixOS's activation script does it.
const ACTIVATE: &str = r#"#!/bin/sh
# clan-coord lab: NixOS activation stand-in. /run/current-system is the system profile's store
# path; root's password hash comes from its deployed var (users.users.root.hashedPasswordFile).
set -e
system=$(readlink -f /nix/var/nix/profiles/system)
ln -sfn "$system" /run/current-system.new
mv -T /run/current-system.new /run/current-system
hash=/run/secrets-for-users/vars/shared/user-password-root/user-password-hash
if [ -r "$hash" ]; then usermod -p "$(cat "$hash")" root; fi
"#;

/// The suite to bootstrap: the host's own (`VERSION_CODENAME`), bookworm when unknown.
fn suite() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("VERSION_CODENAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase()))
        .unwrap_or_else(|| "bookworm".into())
}

/// The Debian mirror apt uses on this host (deb822 `URIs:` or a one-line `deb` entry), so the
/// build reaches what the host's own installs reach.
pub fn mirror(sources: &[String]) -> String {
    for text in sources {
        for line in text.lines().map(str::trim) {
            let uri = line
                .strip_prefix("URIs:")
                .and_then(|r| r.split_whitespace().next())
                .or_else(|| {
                    let mut w = line.strip_prefix("deb ")?.split_whitespace();
                    w.find(|x| !x.starts_with('['))
                });
            if let Some(u) = uri {
                if (u.starts_with("http://") || u.starts_with("https://"))
                    && u.trim_end_matches('/').ends_with("/debian")
                {
                    return u.trim_end_matches('/').to_string();
                }
            }
        }
    }
    "http://deb.debian.org/debian".into()
}

fn host_sources() -> Vec<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(d) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = d.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect()
}

/// The cache key: what the root file system is made of.
pub fn key(suite: &str) -> String {
    let mut h = sha2::Sha256::new();
    for part in [
        suite,
        LAYER_VERSION,
        &PACKAGES.join(","),
        &MASKED.join(","),
        YGGDRASIL_UNIT,
        ACTIVATION_UNIT,
        ACTIVATE,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())[..16].to_string()
}

/// The cache directory must be root's and writable by nobody else: machines boot what is in it.
fn check_cache(cache: &Path) -> Result<(), LabError> {
    let meta = std::fs::metadata(cache).map_err(|e| io(cache, e))?;
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(LabError::Invalid(format!(
            "rootfs cache {} is not root's or is writable by others (mode {:o}): the lab boots \
             what is in it as root; fix its owner and mode or pass another --cache",
            cache.display(),
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// The lab's root file system, built into `cache` first if it is not there. Progress and where
/// the build log is go to `notice`.
pub fn ensure(cache: &Path, notice: &mut dyn FnMut(&str)) -> Result<PathBuf, LabError> {
    if !cache.exists() {
        mkdir(cache)?;
        std::fs::set_permissions(cache, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| io(cache, e))?;
    }
    check_cache(cache)?;
    let suite = suite();
    let root = cache.join(format!("rootfs-{}-{}", suite, key(&suite)));
    if root.join("usr/lib/clan-coord-lab/rootfs.json").exists() {
        return Ok(root);
    }
    let _lock = lock_exclusive(&cache.join("build.lock"))?;
    if root.join("usr/lib/clan-coord-lab/rootfs.json").exists() {
        return Ok(root); // another lab built it while this one waited
    }
    let mirror = mirror(&host_sources());
    let partial = root.with_extension("partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| io(&partial, e))?;
    }
    notice(&format!(
        "lab: building the machines' Debian {suite} root file system with debootstrap from \
         {mirror} (about a minute, once per package list) into {}; its log: {BUILD_LOG}",
        root.display()
    ));
    let started = std::time::Instant::now();
    debootstrap(&suite, &mirror, &partial, notice)?;
    layer(&partial)?;
    std::fs::rename(&partial, &root).map_err(|e| io(&root, e))?;
    notice(&format!(
        "lab: root file system ready in {:.0?}",
        started.elapsed()
    ));
    // Older root file systems (other package lists) are the lab's own cache: removed.
    for e in std::fs::read_dir(cache)
        .map_err(|e| io(cache, e))?
        .flatten()
    {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("rootfs-") && p != root && e.file_type().is_ok_and(|t| t.is_dir()) {
            notice(&format!(
                "lab: removing an older root file system {}",
                p.display()
            ));
            std::fs::remove_dir_all(&p).map_err(|e| io(&p, e))?;
        }
    }
    Ok(root)
}

fn debootstrap(
    suite: &str,
    mirror: &str,
    target: &Path,
    notice: &mut dyn FnMut(&str),
) -> Result<(), LabError> {
    let include = format!("--include={}", PACKAGES.join(","));
    let target = target.display().to_string();
    let args = ["--variant=minbase", &include, suite, &target, mirror];
    run_logged("debootstrap", &args, None, Path::new(BUILD_LOG), &mut |t| {
        notice(&format!("lab: debootstrap running, {t:.0?} so far"))
    })
}

fn symlink(target: &str, link: &Path) -> Result<(), LabError> {
    match std::fs::symlink_metadata(link) {
        Ok(_) => std::fs::remove_file(link).map_err(|e| io(link, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(link, e)),
    }
    std::os::unix::fs::symlink(target, link).map_err(|e| io(link, e))
}

fn remove(p: &Path) -> Result<(), LabError> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(p, e)),
    }
}

/// Applies the lab's layer (module doc) to a freshly bootstrapped tree.
pub(crate) fn layer(root: &Path) -> Result<(), LabError> {
    let etc = root.join("etc");
    let units = etc.join("systemd/system");
    write(&etc.join("machine-id"), "", 0o444)?;
    symlink("/etc/machine-id", &root.join("var/lib/dbus/machine-id"))?;
    remove(&etc.join("hostname"))?;
    write(&etc.join("default/locale"), "LANG=C.UTF-8\n", 0o644)?;
    // minbase has no /etc/hosts: `localhost` would not resolve (clan's zerotier-members talks
    // to the daemon at localhost:9993).
    write(
        &etc.join("hosts"),
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        0o644,
    )?;
    // Enablement links the packages made; the lab says what runs.
    remove(&units.join("sshd.service"))?;
    for wants in [
        "multi-user.target.wants",
        "timers.target.wants",
        "getty.target.wants",
    ] {
        if let Ok(d) = std::fs::read_dir(units.join(wants)) {
            for e in d.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n != "remote-fs.target" {
                    remove(&e.path())?;
                }
            }
        }
    }
    for u in MASKED {
        symlink("/dev/null", &units.join(u))?;
    }
    let debian_ssh = root.join("lib/systemd/system/ssh.service");
    let ssh = std::fs::read_to_string(&debian_ssh).map_err(|e| io(&debian_ssh, e))?;
    let sshd: String = ssh
        .lines()
        .filter(|l| !l.starts_with("Alias="))
        .map(|l| {
            if l.starts_with("Description=") {
                "Description=SSH Daemon".to_string()
            } else if l.starts_with("After=") {
                format!("{l} clan-lab-activation.service")
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    mkdir(&units.join("multi-user.target.wants"))?;
    for (name, text) in [
        ("sshd.service", sshd.as_str()),
        ("yggdrasil.service", YGGDRASIL_UNIT),
        ("clan-lab-activation.service", ACTIVATION_UNIT),
    ] {
        write(&units.join(name), text, 0o644)?;
        symlink(
            &format!("/etc/systemd/system/{name}"),
            &units.join("multi-user.target.wants").join(name),
        )?;
    }
    let lib = root.join("usr/lib/clan-coord-lab");
    write(&lib.join("activate"), ACTIVATE, 0o755)?;
    for d in ["nix", "etc/yggdrasil"] {
        mkdir(&root.join(d))?;
    }
    write(
        &lib.join("rootfs.json"),
        &serde_json::json!({"packages": PACKAGES, "masked": MASKED, "suite": suite()}).to_string(),
        0o644,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_is_the_one_apt_uses() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n";
        assert_eq!(mirror(&[deb822.into()]), "http://mirror.example/debian");
        let one_line = "# c\ndeb [arch=amd64] https://m.example/debian bookworm main\n";
        assert_eq!(mirror(&[one_line.into()]), "https://m.example/debian");
        let security_only = "deb http://deb.debian.org/debian-security bookworm-security main\n";
        assert_eq!(
            mirror(&[security_only.into()]),
            "http://deb.debian.org/debian"
        );
    }

    #[test]
    fn the_key_changes_with_what_goes_into_the_tree() {
        assert_eq!(key("bookworm"), key("bookworm"));
        assert_ne!(key("bookworm"), key("trixie"));
        assert_eq!(key("bookworm").len(), 16);
    }

    /// The layer over a tree shaped like debootstrap's: sshd.service is a real unit (no alias),
    /// Debian's names are masked, nothing the packages enabled stays enabled.
    #[test]
    fn the_layer_makes_sshd_the_real_unit_and_masks_debians_names() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let units = r.join("etc/systemd/system");
        std::fs::create_dir_all(units.join("multi-user.target.wants")).unwrap();
        std::fs::create_dir_all(r.join("lib/systemd/system")).unwrap();
        std::fs::create_dir_all(r.join("var/lib/dbus")).unwrap();
        std::fs::write(
            r.join("lib/systemd/system/ssh.service"),
            "[Unit]\nDescription=OpenBSD Secure Shell server\nAfter=network.target\n[Service]\nExecStart=/usr/sbin/sshd -D\n[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(
            "/lib/systemd/system/ssh.service",
            units.join("sshd.service"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            "/lib/systemd/system/ssh.service",
            units.join("multi-user.target.wants/ssh.service"),
        )
        .unwrap();
        std::fs::write(r.join("etc/hostname"), "builder\n").unwrap();
        std::fs::write(
            r.join("etc/machine-id"),
            "0123456789abcdef0123456789abcdef\n",
        )
        .unwrap();
        layer(r).unwrap();
        let sshd = std::fs::read_to_string(units.join("sshd.service")).unwrap();
        assert!(!sshd.contains("Alias="), "{sshd}");
        assert!(
            sshd.contains("After=network.target clan-lab-activation.service"),
            "{sshd}"
        );
        assert_eq!(
            std::fs::read_link(units.join("ssh.service")).unwrap(),
            Path::new("/dev/null")
        );
        assert!(!units.join("multi-user.target.wants/ssh.service").exists());
        assert!(units.join("multi-user.target.wants/sshd.service").exists());
        assert!(!r.join("etc/hostname").exists());
        assert_eq!(
            std::fs::read_to_string(r.join("etc/machine-id")).unwrap(),
            ""
        );
        assert!(r.join("etc/default/locale").exists());
    }
}
