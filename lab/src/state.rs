//! The lab's state, kept in `<dir>/lab.json`: its machines, addresses, tracked pids and active
//! faults. Every command after `lab up` (status, fault, heal, rebuild, down) works from it, and
//! the `StateLock` keeps concurrent commands from losing each other's changes.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::LabError;
use crate::files::{io, write};
use crate::process::{alive, comm};
use crate::statedir;

/// Machine names: the story's two first, then `vm-03` ...
pub fn machine_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i {
            0 => "hetzner-vm".to_string(),
            1 => "gcp-vm".to_string(),
            _ => format!("vm-{:02}", i + 1),
        })
        .collect()
}

/// One lab machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabMachine {
    /// Name (also hostname and netns suffix).
    pub name: String,
    /// 0-based index (interface names, addresses).
    pub index: usize,
    /// Management address (reached from the workstation namespace).
    pub mgmt_ip: Ipv4Addr,
    /// Underlay address (yggdrasil peers over it).
    pub underlay_ip: Ipv4Addr,
    /// yggdrasil address, from its key.
    pub ygg_address: String,
    /// yggdrasil public key (hex).
    pub ygg_key: String,
    /// ZeroTier node id (ZeroTier lab), from its identity var.
    #[serde(default)]
    pub zt_node: String,
    /// ZeroTier rfc4193 address (ZeroTier lab), clan's `zerotier-ip` var.
    #[serde(default)]
    pub zt_ip: String,
}

impl LabMachine {
    /// Its underlay port on the lab's bridge (`br1`, in the switch namespace): the far end of its
    /// `eth1`.
    pub(crate) fn underlay_port(&self) -> String {
        format!("u{}", self.index)
    }
}

/// Everything `lab down`, `lab fault` and `lab heal` need, kept in `<dir>/lab.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    /// State directory.
    pub dir: PathBuf,
    /// Namespace name prefix.
    pub prefix: String,
    /// Clan domain.
    pub domain: String,
    /// Management /24.
    pub mgmt_net: Ipv4Addr,
    /// Underlay /20 (machine i at `.10` of its i-th /24).
    pub underlay_net: Ipv4Addr,
    /// Machines.
    pub machines: Vec<LabMachine>,
    /// Tracked processes: `<machine>/<role>` → pid.
    pub pids: BTreeMap<String, u32>,
    /// Active faults: machine → kinds (as [`crate::Fault`] displays them).
    #[serde(default)]
    pub faults: BTreeMap<String, Vec<String>>,
    /// The root file system the machines boot ([`crate::rootfs`]).
    #[serde(default)]
    pub rootfs: PathBuf,
    /// The overlay the machines run: `yggdrasil` or `zerotier`.
    #[serde(default = "default_overlay")]
    pub overlay: String,
    /// The ZeroTier lab's network and programs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zerotier: Option<crate::zerotier::ZtLab>,
    /// `fs.inotify.max_user_instances` before the lab raised it, to restore at `lab down`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inotify_restore: Option<u64>,
}

fn default_overlay() -> String {
    "yggdrasil".into()
}

/// A namespace prefix: what clan accepts as a machine name (lowercase letters, digits, inner
/// dashes), at most 8 long so that `<prefix>-<machine>` stays a short namespace name.
pub(crate) fn valid_prefix(p: &str) -> bool {
    let b = p.as_bytes();
    (1..=8).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The program a tracked role runs.
fn expected_comm(role: &str) -> &'static str {
    match role {
        "machine" => "systemd-nspawn",
        _ => "clan-coord", // relay
    }
}

/// The identity of a namespace file (`/run/netns/<ns>`, `/proc/<pid>/ns/net`).
fn ns_id(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

impl LabState {
    /// Loads `<dir>/lab.json`, if a lab was brought up there. The directory must be a safe state
    /// directory ([`crate::statedir`]) and the file what the lab writes: its namespace names,
    /// machines and tracked roles are checked before anything acts on them.
    pub fn load(dir: &Path) -> Result<Option<LabState>, LabError> {
        if !statedir::check(dir)? {
            return Ok(None);
        }
        let p = dir.join("lab.json");
        let t = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&p, e)),
        };
        let state: LabState = serde_json::from_str(&t)
            .map_err(|e| LabError::Invalid(format!("{}: {e}", p.display())))?;
        let canonical = std::fs::canonicalize(dir).map_err(|e| io(dir, e))?;
        state.validate(&canonical).map_err(|what| {
            LabError::Invalid(format!(
                "{}: {what}; the lab did not write this, so it acts on nothing in it \
                 (remove the file and run `clan-coord lab up --prefix <prefix>`, which removes \
                 namespaces a crashed lab left)",
                p.display()
            ))
        })?;
        Ok(Some(state))
    }

    /// What `lab up` writes: its own directory, a lab prefix, the lab's machine names in
    /// order, and tracked roles of those machines only.
    fn validate(&self, dir: &Path) -> Result<(), String> {
        if self.dir != dir {
            return Err(format!("dir {:?} is not this directory", self.dir));
        }
        if !valid_prefix(&self.prefix) {
            return Err(format!(
                "prefix {:?} is no lab prefix (up to 8 lowercase letters, digits, inner dashes)",
                self.prefix
            ));
        }
        let n = self.machines.len();
        if !(2..=16).contains(&n) {
            return Err(format!("{n} machines (a lab has 2 to 16)"));
        }
        for (i, (m, want)) in self.machines.iter().zip(machine_names(n)).enumerate() {
            if m.name != want || m.index != i {
                return Err(format!(
                    "machine {i} is {:?} (index {}), not the lab's {want:?}",
                    m.name, m.index
                ));
            }
        }
        let known = |name: &str| self.machines.iter().any(|m| m.name == name);
        for key in self.pids.keys() {
            // `relay-<peer>`: a relay of the yggdrasil-only slow-link before 2026-11-30, kept so
            // that such a lab can still be torn down.
            let ok = key.split_once('/').is_some_and(|(m, role)| {
                known(m) && (role == "machine" || role == "relay" || role.starts_with("relay-"))
            });
            if !ok {
                return Err(format!("tracked process {key:?} is no lab machine's role"));
            }
        }
        if let Some(m) = self.faults.keys().find(|m| !known(m)) {
            return Err(format!("faults of {m:?}, no lab machine"));
        }
        let rootfs_ok = self.rootfs.as_os_str().is_empty()
            || (self.rootfs.is_absolute()
                && self
                    .rootfs
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("rootfs-"))
                && self
                    .rootfs
                    .join("usr/lib/clan-coord-lab/rootfs.json")
                    .exists());
        if !rootfs_ok {
            return Err(format!(
                "rootfs {:?} is not a lab root file system",
                self.rootfs
            ));
        }
        match (self.overlay.as_str(), &self.zerotier) {
            ("yggdrasil", None) => {}
            ("zerotier", Some(z)) => z.validate()?,
            (o, _) => return Err(format!("overlay {o:?} without its settings, or unknown")),
        }
        if self
            .inotify_restore
            .is_some_and(|n| !(1..=1 << 20).contains(&n))
        {
            return Err(format!(
                "inotify_restore {:?} is out of range",
                self.inotify_restore
            ));
        }
        Ok(())
    }

    /// Loads `<dir>/lab.json`, failing when no lab was brought up there.
    pub(crate) fn require(dir: &Path) -> Result<LabState, LabError> {
        LabState::load(dir)?
            .ok_or_else(|| LabError::Invalid(format!("no lab in {}", dir.display())))
    }

    /// Writes `<dir>/lab.json`.
    pub(crate) fn save(&self) -> Result<(), LabError> {
        write(
            &self.dir.join("lab.json"),
            &serde_json::to_string_pretty(self).unwrap_or_default(),
            0o600,
        )
    }

    /// Reads a file of the state directory.
    pub fn read(&self, rel: &str) -> Result<String, LabError> {
        let p = self.dir.join(rel);
        std::fs::read_to_string(&p).map_err(|e| io(&p, e))
    }

    /// The lab clan's name (its inventory snapshot is pinned for the default 2 machines).
    pub fn clan_name(&self) -> String {
        // Each overlay's lab has its own clan, and so its own pinned instance snapshot.
        let base = if self.zerotier.is_some() {
            "lab-clan-zerotier"
        } else {
            "lab-clan"
        };
        if self.machines.len() == 2 {
            base.into()
        } else {
            format!("{base}-{}", self.machines.len())
        }
    }

    /// Workstation namespace.
    pub fn ns_ws(&self) -> String {
        format!("{}-ws", self.prefix)
    }
    /// Underlay namespace.
    pub(crate) fn ns_net(&self) -> String {
        format!("{}-net", self.prefix)
    }
    /// Machine `m`'s namespace.
    pub(crate) fn ns(&self, m: &str) -> String {
        format!("{}-{m}", self.prefix)
    }
    /// Every namespace the lab owns.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v = vec![self.ns_ws(), self.ns_net()];
        v.extend(self.machines.iter().map(|m| self.ns(&m.name)));
        v
    }

    /// The machines.toml path.
    pub fn machines_file(&self) -> PathBuf {
        self.dir.join("machines.toml")
    }

    /// Machine `m`'s directory (its keys, files, store and logs).
    pub(crate) fn mdir(&self, m: &str) -> PathBuf {
        self.dir.join("machines").join(m)
    }

    /// A machine by name.
    pub fn machine(&self, name: &str) -> Result<&LabMachine, LabError> {
        self.machines
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| {
                LabError::Invalid(format!(
                    "no lab machine {name:?} (machines: {})",
                    self.machines
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// The host pid of machine `m`'s container init (its pid 1), while it runs: what `nsenter -t`
    /// takes to act inside the machine.
    pub fn init(&self, m: &str) -> Result<u32, LabError> {
        self.tracked(&format!("{m}/machine"))
            .and_then(crate::machine::init_of)
            .ok_or_else(|| LabError::Invalid(format!("machine {m} is not running")))
    }

    /// The pid tracked as `key` (`<machine>/<role>`) if it is still the lab's process: the only
    /// pids the lab signals.
    pub(crate) fn tracked(&self, key: &str) -> Option<u32> {
        let pid = *self.pids.get(key)?;
        self.check_pid(key, pid).ok().map(|()| pid)
    }

    /// Whether `pid` is the lab's process tracked as `key`: alive, in the network namespace of
    /// `key`'s machine (only the lab starts processes there) and running the role's program (or
    /// still its launcher). Err says why not; a pid from a tampered or stale lab.json, or reused
    /// by another process after a crash, is never signalled.
    pub(crate) fn check_pid(&self, key: &str, pid: u32) -> Result<(), String> {
        let (m, role) = key.split_once('/').unwrap_or((key, ""));
        if !alive(pid) {
            return Err("not running".into());
        }
        // A machine's slow-link relay runs on its wire, in the lab's switch namespace.
        let ns = match role {
            "relay" => self.ns_net(),
            _ => self.ns(m),
        };
        let want = ns_id(&Path::new("/run/netns").join(&ns))
            .ok_or_else(|| format!("the lab namespace {ns} does not exist"))?;
        let has = ns_id(Path::new(&format!("/proc/{pid}/ns/net")));
        if has != Some(want) {
            return Err(format!(
                "it is not in the lab namespace {ns} (a process outside the lab; lab.json stale or tampered)"
            ));
        }
        let c = comm(pid);
        // `comm` is the launcher's until exec completes.
        if c == expected_comm(role)
            || ["nsenter", "setsid", "ip", "unshare", "sh"].contains(&c.as_str())
        {
            Ok(())
        } else {
            Err(format!("it runs {c:?}, not {}", expected_comm(role)))
        }
    }

    /// The clan-coord binary the `slow-link` relays run: the lab's own copy, written by `lab up`
    /// into its state directory (never a path read from lab.json).
    pub(crate) fn relay_exe(&self) -> PathBuf {
        self.dir.join("bin/clan-coord")
    }

    /// Runs a program inside machine `m` (all its namespaces, as its root) and returns its
    /// stdout.
    pub fn exec_in(&self, m: &str, argv: &[&str]) -> Result<String, LabError> {
        crate::machine::exec(self, m, argv)
    }
}

/// An exclusive lock on the lab's state: rebuilds of several machines run at once (as
/// `clan machines update` does), and each rewrites `lab.json`; the lock keeps their
/// load-change-save sequences from overwriting each other's pids.
pub(crate) struct StateLock {
    _held: std::fs::File,
}

impl StateLock {
    /// Waits for and holds the lock until dropped.
    pub(crate) fn take(dir: &Path) -> Result<StateLock, LabError> {
        statedir::check(dir)?;
        Ok(StateLock {
            _held: crate::files::lock_exclusive(&dir.join("lab.lock"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A lab.json as `lab up` writes it, for a lab in `dir` with `prefix` and `names`.
    fn lab_json(dir: &Path, prefix: &str, names: &[&str]) -> serde_json::Value {
        let machines: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                serde_json::json!({"name": n, "index": i, "mgmt_ip": format!("198.18.100.{}", 10 + i),
                "underlay_ip": format!("198.18.101.{}", 10 + i), "ygg_address": "200::1", "ygg_key": "ab"})
            })
            .collect();
        serde_json::json!({"dir": dir, "prefix": prefix, "domain": "clan",
            "mgmt_net": "198.18.100.0", "underlay_net": "198.18.101.0",
            "machines": machines, "pids": {}})
    }

    fn lab_dir() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let d = std::fs::canonicalize(t.path()).unwrap();
        (t, d)
    }

    fn put(dir: &Path, v: &serde_json::Value) {
        std::fs::write(dir.join("lab.json"), v.to_string()).unwrap();
    }

    #[test]
    fn a_lab_json_as_the_lab_writes_it_loads() {
        let (_t, d) = lab_dir();
        put(&d, &lab_json(&d, "clab", &["hetzner-vm", "gcp-vm"]));
        let s = LabState::load(&d).unwrap().unwrap();
        assert_eq!(
            s.namespaces(),
            ["clab-ws", "clab-net", "clab-hetzner-vm", "clab-gcp-vm"]
        );
    }

    #[test]
    fn namespace_names_outside_the_labs_pattern_are_refused() {
        let (_t, d) = lab_dir();
        for (prefix, names) in [
            ("../x", vec!["hetzner-vm", "gcp-vm"]),
            ("clab", vec!["hetzner-vm", "../../x"]),
            ("clab", vec!["hetzner-vm", "sshd"]),
            ("", vec!["hetzner-vm", "gcp-vm"]),
        ] {
            put(&d, &lab_json(&d, prefix, &names));
            let e = LabState::load(&d).expect_err(&format!("{prefix} {names:?} accepted"));
            assert!(e.to_string().contains("lab.json"), "{e}");
        }
    }

    #[test]
    fn pids_under_unknown_keys_and_a_foreign_dir_are_refused() {
        let (_t, d) = lab_dir();
        let mut v = lab_json(&d, "clab", &["hetzner-vm", "gcp-vm"]);
        v["pids"] = serde_json::json!({"host/sshd": 1});
        put(&d, &v);
        assert!(LabState::load(&d).is_err());
        let mut v = lab_json(&d, "clab", &["hetzner-vm", "gcp-vm"]);
        v["dir"] = serde_json::json!("/");
        put(&d, &v);
        assert!(LabState::load(&d).is_err());
    }

    #[test]
    fn a_world_writable_or_symlinked_state_dir_is_refused() {
        let (_t, d) = lab_dir();
        put(&d, &lab_json(&d, "clab", &["hetzner-vm", "gcp-vm"]));
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = LabState::load(&d).expect_err("world-writable dir accepted");
        assert!(e.to_string().contains("writable"), "{e}");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        let (_t2, other) = lab_dir();
        let link = other.join("lab");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        let e = LabState::load(&link).expect_err("symlinked dir accepted");
        assert!(e.to_string().contains("symlink"), "{e}");
    }
}
