//! The fleet under test: validated config, the oracle, the resolved inventory and one transport
//! per machine (live SSH or replay), with helpers to work on all machines in parallel.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::config::{self, FleetConfig};
use crate::error::{Error, InventoryError, TransportError};
use crate::inventory::Inventory;
use crate::mode::{crate_root, Mode, Settings};
use crate::observe::MachineStatus;
use crate::oracle::Oracle;
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

/// Commands noted by a dry run: (machine, command line).
pub type CommandLog = Arc<Mutex<Vec<(String, String)>>>;

struct Planner {
    machine: String,
    log: CommandLog,
}

impl Transport for Planner {
    fn name(&self) -> &str {
        &self.machine
    }
    fn run(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((self.machine.clone(), cmd.text().to_string()));
        Ok(Output {
            stdout: String::new(),
            stderr: String::new(),
            exit: Some(1),
            duration: Default::default(),
        })
    }
}

/// The fleet.
pub struct Fleet {
    /// machines.toml.
    pub config: FleetConfig,
    /// Expected values from the clan repo.
    pub oracle: Oracle,
    /// The resolved inventory.
    pub inventory: Inventory,
    /// Where the inventory came from.
    pub inventory_origin: String,
    /// Certificate domain.
    pub domain: String,
    /// "live" or "replay of <cassette>".
    pub origin: String,
    /// The cassette, when replaying (carries the expected fault of broken fleets).
    pub cassette: Option<LoadedCassette>,
    transports: BTreeMap<String, Arc<dyn Transport>>,
    workstation: Arc<dyn Transport>,
    pub(crate) status: OnceLock<BTreeMap<String, MachineStatus>>,
    /// Results fetched ahead in one batch per machine, consumed by the first `run` of the same
    /// command on the same machine (see [`Fleet::prefetch`]).
    prefetched: Mutex<HashMap<(String, String), Result<Output, TransportError>>>,
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
                    .unwrap_or_else(|| crate_root().join("machines.toml"));
                let config = config::load(&machines)?;
                Fleet::replay(config, loaded)
            }
            Mode::Live { record } => {
                let machines = settings
                    .machines
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("machines.toml"));
                let config = config::load(&machines)?;
                Fleet::live(config, record.as_deref())
            }
        }
    }

    /// A fleet answering from a cassette.
    pub fn replay(config: FleetConfig, loaded: LoadedCassette) -> Result<Fleet, Error> {
        let path = loaded.path.display().to_string();
        let mut transports: BTreeMap<String, Arc<dyn Transport>> = BTreeMap::new();
        for m in &config.machines {
            let log = loaded
                .cassette
                .machines
                .get(&m.name)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            transports.insert(m.name.clone(), Arc::new(Replay::new(&m.name, &path, log)));
        }
        let workstation: Arc<dyn Transport> = Arc::new(Replay::new(
            "workstation",
            &path,
            &loaded.cassette.workstation,
        ));
        Fleet::assemble(
            config,
            transports,
            workstation,
            format!("replay of {path}"),
            Some(loaded),
        )
    }

    /// A fleet reached over SSH, optionally recording into a cassette.
    pub fn live(config: FleetConfig, record: Option<&Path>) -> Result<Fleet, Error> {
        if let Some(m) = config.machines.iter().find(|m| is_documentation(m.address)) {
            return Err(Error::DocumentationAddress {
                machine: m.name.clone(),
                address: m.address,
                path: config.path.clone(),
            });
        }
        let names: Vec<String> = config.machines.iter().map(|m| m.name.clone()).collect();
        let oracle = Oracle::load(&config.clan_dir, &names)?;
        let domain = config.domain.clone().unwrap_or_else(|| "clan".into());
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
        let mut transports: BTreeMap<String, Arc<dyn Transport>> = BTreeMap::new();
        for m in &config.machines {
            let t: Arc<dyn Transport> = match host_trust(&config, &oracle, &domain, &m.name) {
                Ok(trust) => Arc::new(SshTransport::new(SshTarget {
                    machine: m.name.clone(),
                    host: m.address,
                    port: m.port,
                    user: m.user.clone(),
                    auth: config.ssh.auth.clone(),
                    connect_timeout: config.ssh.connect_timeout,
                    command_timeout: config.ssh.command_timeout,
                    trust,
                    netns: config.ssh.netns.clone(),
                })),
                Err(reason) => Arc::new(Refused {
                    machine: m.name.clone(),
                    reason,
                }),
            };
            transports.insert(m.name.clone(), wrap(t));
        }
        let workstation = wrap(Arc::new(Workstation {
            timeout: config
                .ssh
                .command_timeout
                .max(std::time::Duration::from_secs(120)),
        }));
        Fleet::assemble(config, transports, workstation, "live".into(), None)
    }

    /// A fleet whose transports only note the commands they are given (answering with empty
    /// output): `clan-coord plan` shows an operator what would run on production machines.
    pub fn dry_run(config: FleetConfig) -> Result<(Fleet, CommandLog), Error> {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut transports: BTreeMap<String, Arc<dyn Transport>> = BTreeMap::new();
        for m in &config.machines {
            transports.insert(
                m.name.clone(),
                Arc::new(Planner {
                    machine: m.name.clone(),
                    log: log.clone(),
                }),
            );
        }
        let workstation: Arc<dyn Transport> = Arc::new(Planner {
            machine: "workstation".into(),
            log: log.clone(),
        });
        Ok((
            Fleet::assemble(config, transports, workstation, "dry run".into(), None)?,
            log,
        ))
    }

    fn assemble(
        config: FleetConfig,
        transports: BTreeMap<String, Arc<dyn Transport>>,
        workstation: Arc<dyn Transport>,
        origin: String,
        cassette: Option<LoadedCassette>,
    ) -> Result<Fleet, Error> {
        let names: Vec<String> = config.machines.iter().map(|m| m.name.clone()).collect();
        let (inventory, inventory_origin) = load_inventory(&config, workstation.as_ref())?;
        let mut known = names.clone();
        known.extend(inventory.machines.keys().cloned());
        let oracle = Oracle::load(&config.clan_dir, &known)?;
        let domain = config
            .domain
            .clone()
            .or_else(|| inventory.domain.clone())
            .unwrap_or_else(|| "clan".into());
        Ok(Fleet {
            config,
            oracle,
            inventory,
            inventory_origin,
            domain,
            origin,
            cassette,
            transports,
            workstation,
            status: OnceLock::new(),
            prefetched: Mutex::new(HashMap::new()),
        })
    }

    /// Machine names in machines.toml order.
    pub fn machines(&self) -> Vec<&str> {
        self.config
            .machines
            .iter()
            .map(|m| m.name.as_str())
            .collect()
    }

    /// Runs a command on a machine.
    pub fn run(&self, machine: &str, cmd: &Cmd) -> Result<Output, TransportError> {
        let t = self
            .transports
            .get(machine)
            .ok_or_else(|| TransportError::UnknownMachine {
                machine: machine.into(),
            })?;
        if let Some(r) = self
            .prefetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(machine.to_string(), cmd.text().to_string()))
        {
            return r;
        }
        t.run(cmd)
    }

    /// Runs `plans` (independent commands per machine) ahead: one round trip per machine, all
    /// machines in parallel. Later `run`s of those commands take the results instead of asking
    /// again, so the checks' code stays as it is while the wire sees one batch per machine.
    pub fn prefetch(&self, plans: &BTreeMap<String, Vec<Cmd>>) {
        let fetched = self.each(|m| {
            let cmds = plans.get(m).cloned().unwrap_or_default();
            let outs = self.run_many(m, &cmds);
            cmds.into_iter().zip(outs).collect::<Vec<_>>()
        });
        let mut map = self.prefetched.lock().unwrap_or_else(|p| p.into_inner());
        for (m, results) in fetched {
            for (c, r) in results {
                map.insert((m.clone(), c.text().to_string()), r);
            }
        }
    }

    /// Runs independent commands on one machine, in one round trip where the transport can.
    pub fn run_many(&self, machine: &str, cmds: &[Cmd]) -> Vec<Result<Output, TransportError>> {
        let mut ready: Vec<Option<Result<Output, TransportError>>> = {
            let mut pre = self.prefetched.lock().unwrap_or_else(|p| p.into_inner());
            cmds.iter()
                .map(|c| pre.remove(&(machine.to_string(), c.text().to_string())))
                .collect()
        };
        if ready.iter().all(Option::is_some) {
            return ready.into_iter().flatten().collect();
        }
        match self.transports.get(machine) {
            Some(t) => {
                let missing: Vec<Cmd> = cmds
                    .iter()
                    .zip(&ready)
                    .filter(|(_, r)| r.is_none())
                    .map(|(c, _)| c.clone())
                    .collect();
                let mut fresh = t.run_many(&missing).into_iter();
                ready
                    .iter_mut()
                    .map(|r| match r.take() {
                        Some(x) => x,
                        None => fresh.next().unwrap_or_else(|| {
                            Err(TransportError::UnknownMachine {
                                machine: machine.into(),
                            })
                        }),
                    })
                    .collect()
            }
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
    /// commands stay sequential on its one session).
    pub fn each<T: Send>(&self, f: impl Fn(&str) -> T + Sync) -> BTreeMap<String, T> {
        let names = self.machines();
        std::thread::scope(|s| {
            let handles: Vec<_> = names
                .iter()
                .map(|m| (m.to_string(), s.spawn(|| f(m))))
                .collect();
            handles
                .into_iter()
                .filter_map(|(m, h)| h.join().ok().map(|v| (m, v)))
                .collect()
        })
    }

    /// The principal a machine's host certificate must carry.
    pub fn principal(&self, machine: &str) -> String {
        format!("{machine}.{}", self.domain)
    }
}

fn host_trust(
    config: &FleetConfig,
    oracle: &Oracle,
    domain: &str,
    machine: &str,
) -> Result<HostTrust, String> {
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

/// Inventory from `nix eval` when a flake is configured and it answers, else the JSON file.
fn load_inventory(
    config: &FleetConfig,
    workstation: &dyn Transport,
) -> Result<(Inventory, String), Error> {
    if let Some(flake) = &config.flake {
        let cmd = Cmd::new("nix").args(["eval", "--json"]).arg(format!(
            "{flake}#clanInternals.inventoryClass.inventorySerialization"
        ));
        match workstation.run(&cmd) {
            Ok(out) if out.success() => {
                return Ok((
                    Inventory::parse(&out.stdout, cmd.text())?,
                    cmd.text().to_string(),
                ))
            }
            Ok(out) => {
                tracing::info!(command = %cmd, exit = ?out.exit, "nix eval failed; using the inventory JSON file")
            }
            Err(e) => {
                tracing::info!(error = %e, "nix eval unavailable; using the inventory JSON file")
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
