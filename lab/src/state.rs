//! The lab's state, kept in `<dir>/lab.json`: its machines, addresses, tracked pids and active
//! faults. Every command after `lab up` (status, fault, heal, rebuild, down) works from it, and
//! the `StateLock` keeps concurrent commands from losing each other's changes.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::LabError;
use crate::files::{io, write};
use crate::process::{alive, run};

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
    /// Underlay /24.
    pub underlay_net: Ipv4Addr,
    /// Machines.
    pub machines: Vec<LabMachine>,
    /// Tracked processes: `<machine>/<role>` → pid.
    pub pids: BTreeMap<String, u32>,
    /// Active faults: machine → kinds (as [`crate::Fault`] displays them).
    #[serde(default)]
    pub faults: BTreeMap<String, Vec<String>>,
    /// The clan-coord binary, started as the `slow-link` relay.
    #[serde(default)]
    pub exe: Option<PathBuf>,
}

impl LabState {
    /// Loads `<dir>/lab.json`, if a lab was brought up there.
    pub fn load(dir: &Path) -> Result<Option<LabState>, LabError> {
        let p = dir.join("lab.json");
        match std::fs::read_to_string(&p) {
            Ok(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| LabError::Invalid(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&p, e)),
        }
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
            0o644,
        )
    }

    /// Reads a file of the state directory.
    pub fn read(&self, rel: &str) -> Result<String, LabError> {
        let p = self.dir.join(rel);
        std::fs::read_to_string(&p).map_err(|e| io(&p, e))
    }

    /// The lab clan's name (its inventory snapshot is pinned for the default 2 machines).
    pub fn clan_name(&self) -> String {
        if self.machines.len() == 2 {
            "lab-clan".into()
        } else {
            format!("lab-clan-{}", self.machines.len())
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

    /// The pid holding machine `m`'s namespaces, if it runs.
    pub(crate) fn anchor(&self, m: &str) -> Result<u32, LabError> {
        self.pids
            .get(&format!("{m}/anchor"))
            .copied()
            .filter(|p| alive(*p))
            .ok_or_else(|| LabError::Invalid(format!("machine {m} is not running (no anchor)")))
    }

    /// Runs a program inside a machine's namespaces and returns its stdout.
    pub fn exec_in(&self, m: &str, argv: &[&str]) -> Result<String, LabError> {
        let a = self.anchor(m)?.to_string();
        let mut args = vec!["-t", a.as_str(), "-n", "-u", "-m", "--"];
        args.extend(argv);
        run("nsenter", &args)
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
        use std::os::fd::AsRawFd;
        let p = dir.join("lab.lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| io(&p, e))?;
        // SAFETY: flock on an fd we own; released when the file is closed (on drop).
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io(&p, std::io::Error::last_os_error()));
        }
        Ok(StateLock { _held: f })
    }
}
