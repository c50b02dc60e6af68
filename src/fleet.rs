//! The fleet under test: its expectations and one transport per machine (live SSH or replay),
//! with helpers to work on all machines in parallel. The only place transports are chosen.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{self, Address, FleetConfig};
use crate::env::{Mode, Settings};
use crate::error::{Error, InventoryError, TransportError};
use crate::expectations::Expectations;
use crate::inventory::Inventory;
use crate::names::Origin;
use crate::transport::cassette::{Cassette, LoadedCassette};
use crate::transport::hostkey::{verify_certificate, HostTrust};
use crate::transport::local::Workstation;
use crate::transport::replay::{Recorder, Recording, Replay};
use crate::transport::ssh::{SshTarget, SshTransport};
use crate::transport::{Cmd, Output, Transport};

/// A transport that always fails with the reason it could not be built (e.g. a bad certificate):
/// the other machines are still checked and findings name this one.
struct Refused {
    machine: String,
    reason: String,
}

impl Transport for Refused {
    fn name(&self) -> &str {
        &self.machine
    }
    fn run(&self, _cmd: &Cmd) -> Result<Output, TransportError> {
        Err(TransportError::HostCertificate {
            machine: self.machine.clone(),
            path: "(clan repo)".into(),
            reason: self.reason.clone(),
        })
    }
}

/// The fleet.
pub struct Fleet {
    /// What the fleet should look like.
    pub expect: Expectations,
    /// Live or a replay.
    pub origin: Origin,
    /// The cassette, when replaying (carries the expected fault of broken fleets).
    pub cassette: Option<LoadedCassette>,
    transports: BTreeMap<String, Arc<dyn Transport>>,
    workstation: Arc<dyn Transport>,
    /// Host names from machines.toml and the address each resolved to (live runs), so the run
    /// can say which address it used: (machine, name, address).
    pub resolved: Vec<(String, String, std::net::IpAddr)>,
}

impl Fleet {
    /// Opens the fleet the environment asks for.
    pub fn from_env() -> Result<Fleet, Error> {
        Fleet::open(&Settings::from_env(cfg!(feature = "live"))?)
    }

    /// Opens the fleet described by `settings`.
    pub fn open(settings: &Settings) -> Result<Fleet, Error> {
        match &settings.mode {
            Mode::Replay { cassette } => {
                let loaded = Cassette::load(cassette)?;
                let machines = settings
                    .machines
                    .clone()
                    .or_else(|| loaded.machines_file.clone())
                    .unwrap_or_else(|| PathBuf::from("machines.toml"));
                let config = config::load(&machines)?;
                Fleet::replay(config, loaded, &settings.snapshots)
            }
            Mode::Live { record } => {
                let config = config::load(&settings.machines_or(None))?;
                Fleet::live(config, record.as_deref(), &settings.snapshots)
            }
        }
    }

    /// A fleet answering from a cassette.
    pub fn replay(
        config: FleetConfig,
        loaded: LoadedCassette,
        snapshots: &Path,
    ) -> Result<Fleet, Error> {
        let path = loaded.path.display().to_string();
        let workstation: Arc<dyn Transport> = Arc::new(Replay::new(
            "workstation",
            &path,
            &loaded.cassette.workstation,
        ));
        let expect = load_expectations(config, Some(workstation.as_ref()), snapshots)?;
        let mut transports: BTreeMap<String, Arc<dyn Transport>> = BTreeMap::new();
        for m in expect.machines() {
            let log = loaded
                .cassette
                .machines
                .get(m)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            transports.insert(m.to_string(), Arc::new(Replay::new(m, &path, log)));
        }
        Ok(Fleet {
            expect,
            origin: Origin::Replay(loaded.path.clone()),
            cassette: Some(loaded),
            transports,
            workstation,
            resolved: Vec::new(),
        })
    }

    /// A fleet reached over SSH, optionally recording into a cassette. Host keys and
    /// certificates are checked against the clan repo under the fleet's domain (machines.toml's,
    /// else the inventory's) before any machine is contacted.
    pub fn live(
        config: FleetConfig,
        record: Option<&Path>,
        snapshots: &Path,
    ) -> Result<Fleet, Error> {
        // Names resolve first: every rule for a literal holds for the address a name gives.
        let mut resolved = Vec::new();
        let mut targets: BTreeMap<String, Result<std::net::IpAddr, String>> = BTreeMap::new();
        for m in &config.machines {
            let ip = match &m.address {
                Address::Ip(ip) => Ok(*ip),
                Address::Name(n) => {
                    let r =
                        crate::transport::resolve::resolve(n, m.port, config.ssh.connect_timeout);
                    match &r {
                        Ok(ip) => {
                            tracing::info!(machine = %m.name, name = %n, address = %ip, "resolved");
                            resolved.push((m.name.clone(), n.clone(), *ip));
                        }
                        Err(e) => tracing::warn!(machine = %m.name, error = %e, "not resolved"),
                    }
                    r
                }
            };
            if let Ok(ip) = ip {
                if is_documentation(ip) {
                    return Err(Error::DocumentationAddress {
                        machine: m.name.clone(),
                        address: ip,
                        path: config.path.clone(),
                    });
                }
            }
            targets.insert(m.name.clone(), ip);
        }
        let recorder = record.map(|p| {
            Recorder::new(
                p.to_path_buf(),
                "recorded live run".into(),
                Some(config.path.display().to_string()),
            )
        });
        let wrap = |t: Arc<dyn Transport>| -> Arc<dyn Transport> {
            match &recorder {
                Some(r) => Arc::new(Recording {
                    inner: t,
                    recorder: r.clone(),
                }),
                None => t,
            }
        };
        let workstation = wrap(Arc::new(Workstation {
            timeout: config
                .ssh
                .command_timeout
                .max(std::time::Duration::from_secs(120)),
        }));
        let expect = load_expectations(config, Some(workstation.as_ref()), snapshots)?;
        let mut transports: BTreeMap<String, Arc<dyn Transport>> = BTreeMap::new();
        for m in &expect.config.machines {
            let target = targets
                .remove(&m.name)
                .unwrap_or_else(|| Err("not in machines.toml".into()));
            let t: Arc<dyn Transport> =
                match target.and_then(|ip| Ok((ip, host_trust(&expect, &m.name)?))) {
                    Ok((ip, trust)) => Arc::new(SshTransport::new(SshTarget {
                        machine: m.name.clone(),
                        host: ip,
                        port: m.port,
                        user: m.user.clone(),
                        auth: expect.config.ssh.auth.clone(),
                        connect_timeout: expect.config.ssh.connect_timeout,
                        command_timeout: expect.config.ssh.command_timeout,
                        trust,
                        netns: expect.config.ssh.netns.clone(),
                    })),
                    Err(reason) => Arc::new(Refused {
                        machine: m.name.clone(),
                        reason,
                    }),
                };
            transports.insert(m.name.clone(), wrap(t));
        }
        Ok(Fleet {
            expect,
            origin: Origin::Live,
            cassette: None,
            transports,
            workstation,
            resolved,
        })
    }

    /// Machine names in machines.toml order.
    pub fn machines(&self) -> Vec<&str> {
        self.expect.machines()
    }

    /// Runs a command on a machine.
    pub fn run(&self, machine: &str, cmd: &Cmd) -> Result<Output, TransportError> {
        self.transport(machine)?.run(cmd)
    }

    fn transport(&self, machine: &str) -> Result<&Arc<dyn Transport>, TransportError> {
        self.transports
            .get(machine)
            .ok_or_else(|| TransportError::UnknownMachine {
                machine: machine.into(),
            })
    }

    /// Runs independent commands on one machine, in one round trip where the transport can.
    pub fn run_many(&self, machine: &str, cmds: &[Cmd]) -> Vec<Result<Output, TransportError>> {
        match self.transports.get(machine) {
            Some(t) => t.run_many(cmds),
            None => cmds
                .iter()
                .map(|_| {
                    Err(TransportError::UnknownMachine {
                        machine: machine.into(),
                    })
                })
                .collect(),
        }
    }

    /// Runs a command on the workstation.
    pub fn run_local(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        self.workstation.run(cmd)
    }

    /// Sends a keepalive on every idle session (between monitor rounds).
    pub fn keepalive(&self) {
        for t in self.transports.values() {
            t.keepalive();
        }
    }

    /// Reconnects so far, per machine.
    pub fn reconnects(&self) -> BTreeMap<String, u64> {
        self.transports
            .iter()
            .map(|(m, t)| (m.clone(), t.reconnects()))
            .collect()
    }

    /// Runs `f` for every machine in parallel (one thread per machine; each machine's own
    /// commands stay sequential on its one session). A panic in one machine's work is a bug and
    /// is raised again here, never dropped.
    pub fn each<T: Send>(&self, f: impl Fn(&str) -> T + Sync) -> BTreeMap<String, T> {
        let names = self.machines();
        std::thread::scope(|s| {
            let handles: Vec<_> = names
                .iter()
                .map(|m| (m.to_string(), s.spawn(|| f(m))))
                .collect();
            handles
                .into_iter()
                .map(|(m, h)| match h.join() {
                    Ok(v) => (m, v),
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    }
}

/// The expectations of a fleet: inventory (from `nix eval` through `workstation` when a flake is
/// configured and it answers, else the JSON file), then the clan repo and the pinned snapshot.
pub fn load_expectations(
    config: FleetConfig,
    workstation: Option<&dyn Transport>,
    snapshots: &Path,
) -> Result<Expectations, Error> {
    let (inventory, origin) = load_inventory(&config, workstation)?;
    let exports = match (&config.flake, workstation) {
        (Some(flake), Some(ws)) if origin.starts_with("nix ") => load_exports(flake, ws),
        _ => None,
    };
    let mut exp = Expectations::new(config, inventory, origin, snapshots)?;
    exp.exports = exports;
    Ok(exp)
}

/// `nix eval` of a clan flake's `clan.exports`.
pub fn nix_eval_exports(flake: &str) -> Cmd {
    nix_eval(flake, "clan.exports")
}

/// The fleet's addresses as clan exports them; None (said in the log) when the flake gives none:
/// only the cross-check is skipped then, nothing passes on it.
fn load_exports(
    flake: &str,
    ws: &dyn Transport,
) -> Option<Vec<crate::oracle::exports::ExportedPeer>> {
    let cmd = nix_eval_exports(flake);
    match ws.run(&cmd) {
        Ok(out) if out.success() => match serde_json::from_str(&out.stdout) {
            Ok(v) => Some(crate::oracle::exports::parse(&v)),
            Err(e) => {
                tracing::warn!(command = %cmd, error = %e, "clan.exports is not JSON; addresses not cross-checked");
                None
            }
        },
        Ok(out) => {
            tracing::info!(command = %cmd, error = %crate::redact::excerpt(&out.stderr, 300), "no clan.exports; addresses not cross-checked");
            None
        }
        Err(e) => {
            tracing::info!(error = %e, "clan.exports not evaluated; addresses not cross-checked");
            None
        }
    }
}

fn host_trust(exp: &Expectations, machine: &str) -> Result<HostTrust, String> {
    let (config, oracle, domain) = (&exp.config, &exp.oracle, &exp.domain);
    let vars = oracle.machines.get(machine);
    if let Some(key) = vars.and_then(|v| v.host_key.as_ref()) {
        if let Some(cert) = vars.and_then(|v| v.host_cert.as_ref()) {
            let ca = oracle.ca.as_ref().ok_or("the repo has a host certificate but no shared openssh-ca/id_ed25519.pub to check it against")?;
            verify_certificate(
                machine,
                &format!("{machine}.{domain}"),
                &cert.value,
                &cert.path,
                &ca.value,
                &key.value,
            )
            .map_err(|e| e.to_string())?;
        } else {
            tracing::warn!(%machine, "clan repo has no host certificate; pinning the plain host key only");
        }
        return Ok(HostTrust::Clan {
            key: key.value.clone(),
            source: key.path.clone(),
        });
    }
    match &config.ssh.known_hosts {
        Some(path) => Ok(HostTrust::KnownHosts { path: path.clone() }),
        None => Err(format!("no vars/per-machine/{machine}/openssh/ssh.id_ed25519.pub in the clan repo and no ssh.known_hosts in machines.toml: refusing to trust on first use")),
    }
}

/// `nix eval` of a clan flake's inventory serialization.
pub fn nix_eval_inventory(flake: &str) -> Cmd {
    nix_eval(flake, "clanInternals.inventoryClass.inventorySerialization")
}

/// `nix eval --json <flake>#<attr>`. Flakes are still experimental in Nix 2.8 (Debian's): the
/// features are passed, so no nix.conf is needed.
fn nix_eval(flake: &str, attr: &str) -> Cmd {
    Cmd::new("nix")
        .args([
            "--extra-experimental-features",
            "nix-command flakes",
            "eval",
            "--json",
        ])
        .arg(format!("{flake}#{attr}"))
}

/// Inventory from `nix eval` when a flake is configured and it answers, else the JSON file.
fn load_inventory(
    config: &FleetConfig,
    workstation: Option<&dyn Transport>,
) -> Result<(Inventory, String), Error> {
    if let (Some(flake), Some(workstation)) = (&config.flake, workstation) {
        let cmd = nix_eval_inventory(flake);
        match workstation.run(&cmd) {
            Ok(out) if out.success() => {
                return Ok((
                    Inventory::parse(&out.stdout, cmd.text())?,
                    cmd.text().to_string(),
                ))
            }
            Ok(out) => {
                let why = crate::redact::excerpt(&out.stderr, 300).to_string();
                if config.inventory_json.is_none() {
                    return Err(InventoryError::Shape {
                        origin: cmd.text().to_string(),
                        problem: format!("nix eval of the flake failed: {why}"),
                    }
                    .into());
                }
                tracing::warn!(command = %cmd, exit = ?out.exit, error = %why, "nix eval failed; using fleet.inventory_json instead")
            }
            Err(e) => {
                if config.inventory_json.is_none() {
                    return Err(InventoryError::Shape {
                        origin: cmd.text().to_string(),
                        problem: format!("nix eval could not run: {e}"),
                    }
                    .into());
                }
                tracing::warn!(error = %e, "nix eval could not run; using fleet.inventory_json instead")
            }
        }
    }
    let path = config
        .inventory_json
        .as_ref()
        .ok_or_else(|| InventoryError::Shape {
            origin: config.path.display().to_string(),
            problem: "no inventory: set fleet.inventory_json (or fleet.flake with nix installed)"
                .into(),
        })?;
    let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
        path: path.clone(),
        source,
    })?;
    Ok((
        Inventory::parse(&text, &path.display().to_string())?,
        path.display().to_string(),
    ))
}

/// RFC 5737 (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) and RFC 3849 (2001:db8::/32) ranges.
fn is_documentation(a: std::net::IpAddr) -> bool {
    match a {
        std::net::IpAddr::V4(v) => matches!(
            v.octets(),
            [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _]
        ),
        std::net::IpAddr::V6(v) => v.segments()[..2] == [0x2001, 0xdb8],
    }
}
