//! The clan repository as oracle: every expected value (overlay addresses, network id, host keys,
//! certificates, CA, shared vars and their recipients) is read from its `vars/` tree, in every
//! layout clan-core has used, so that nothing is hard-coded and a wrong value names its file.

pub mod exports;
pub mod lint;
/// ZeroTier ids and clan's rfc4193 address (they live with the parsers, which read them too).
pub use crate::probe::zerotier_ids as zerotier;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use ssh_key::{Certificate, HashAlg, PublicKey};

use crate::error::OracleError;
use crate::redact::describe;
use zerotier::NetworkId;

/// Where a var lives in the repo.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "scope", content = "machine")]
pub enum Scope {
    /// `vars/per-machine/<m>/...`
    PerMachine(String),
    /// `vars/shared/...`
    Shared,
}

/// One file of one generator.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VarFile {
    /// Per machine or shared.
    pub scope: Scope,
    /// Generator name.
    pub generator: String,
    /// File name.
    pub file: String,
    /// Public value (whitespace-trimmed); `None` for secrets.
    #[serde(skip)]
    pub value: Option<String>,
    /// A `secret` file exists (content never read).
    pub secret: bool,
    /// Machines the secret is encrypted for (`machines/<m>` links): they receive it on deploy.
    pub recipients: Vec<String>,
    /// Path of the file's directory.
    pub path: PathBuf,
}

/// How the repo stores ZeroTier vars (decides unit names on the controller too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZerotierLayout {
    /// Era A: per-machine generator `zerotier` (`zerotier-ip`, `zerotier-network-id`).
    PerMachine,
    /// 2026-05: per-machine `zerotier-ip-<instance>` generators.
    PerInstance,
    /// Era B: shared `zerotier-network-<I>` and `zerotier-ip-<m>-<I>`.
    Shared,
    /// No ZeroTier vars at all.
    None,
}

/// A value with the file it came from, so findings can name it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// The vars file (directory of `value`).
    pub path: PathBuf,
}

/// A ZeroTier network known from vars. `instance` is `None` in era A, which had one network.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ZerotierNetwork {
    /// Instance name, when the layout carries it.
    pub instance: Option<String>,
    /// Network id.
    pub id: Sourced<NetworkId>,
}

/// Expected values of one machine.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MachineVars {
    /// Plain ed25519 host public key (`openssh/ssh.id_ed25519.pub`).
    #[serde(skip)]
    pub host_key: Option<Sourced<PublicKey>>,
    /// Host certificate (`openssh-cert/ssh.id_ed25519-cert.pub`).
    #[serde(skip)]
    pub host_cert: Option<Sourced<Certificate>>,
    /// ZeroTier addresses by instance (`None` key = era A single network).
    pub zerotier_ip: BTreeMap<Option<String>, Sourced<Ipv6Addr>>,
    /// Yggdrasil address (`yggdrasil/address`, in 200::/7), clan's experimental yggdrasil service.
    pub yggdrasil_ip: Option<Sourced<Ipv6Addr>>,
    /// Yggdrasil public key, hex (`yggdrasil/publicKey`).
    pub yggdrasil_key: Option<Sourced<String>>,
    /// `emergency-access/password-hash` exists (its content is never kept).
    pub emergency_password_hash: bool,
    /// Generators present for the machine.
    pub generators: BTreeSet<String>,
}

/// Everything the harness expects, read from a clan repo.
#[derive(Debug, Clone)]
pub struct Oracle {
    /// Repo root.
    pub dir: PathBuf,
    /// Every var file found.
    pub files: Vec<VarFile>,
    /// Per machine expectations, for every machine with a per-machine folder or ZeroTier var.
    pub machines: BTreeMap<String, MachineVars>,
    /// The shared SSH CA public key.
    pub ca: Option<Sourced<PublicKey>>,
    /// ZeroTier networks.
    pub zerotier_networks: Vec<ZerotierNetwork>,
    /// The ZeroTier vars layout.
    pub zerotier_layout: ZerotierLayout,
}

/// Largest `value` file read. Public vars are keys, addresses, ids and certificates, a few KiB
/// at most; anything bigger is not one, and reading it whole is what an attacker would want.
pub const MAX_VALUE_BYTES: u64 = 64 * 1024;

/// A public value, trimmed. The file must resolve inside the repository (`repo`, canonical): a
/// pull request linking a `value` to `~/.config/sops/age/keys.txt` must not make CI read it.
fn read_value(path: &Path, repo: &Path) -> Result<String, OracleError> {
    use std::io::Read as _;
    let read_err = |source| OracleError::Read {
        path: path.to_path_buf(),
        source,
    };
    let resolved = std::fs::canonicalize(path).map_err(read_err)?;
    if !resolved.starts_with(repo) {
        return Err(OracleError::OutsideRepo {
            path: path.to_path_buf(),
            resolved,
            repo: repo.to_path_buf(),
        });
    }
    let mut bytes = Vec::new();
    std::fs::File::open(&resolved)
        .and_then(|f| f.take(MAX_VALUE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_VALUE_BYTES {
        return Err(OracleError::TooLarge {
            path: path.to_path_buf(),
            cap: MAX_VALUE_BYTES,
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| OracleError::Value {
        path: path.to_path_buf(),
        problem: format!(
            "expected UTF-8 text, found {} bytes that are not (first bad byte at {})",
            e.as_bytes().len(),
            e.utf8_error().valid_up_to()
        ),
    })?;
    Ok(text.trim().to_string())
}

fn list_dir(path: &Path) -> Result<Vec<String>, OracleError> {
    let rd = match std::fs::read_dir(path) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(OracleError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut names = Vec::new();
    for e in rd {
        let e = e.map_err(|source| OracleError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(n) = e.file_name().to_str() {
            if !n.starts_with('.') {
                names.push(n.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

impl Oracle {
    /// Reads `<dir>/vars`. `known_machines` (from machines.toml and the inventory) helps split
    /// shared generator names like `zerotier-ip-<machine>-<instance>` whose parts contain `-`.
    pub fn load(dir: &Path, known_machines: &[String]) -> Result<Oracle, OracleError> {
        let vars = dir.join("vars");
        if !vars.is_dir() {
            return Err(OracleError::NoVars {
                path: dir.to_path_buf(),
            });
        }
        let repo = std::fs::canonicalize(dir).map_err(|source| OracleError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut files = Vec::new();
        for m in list_dir(&vars.join("per-machine"))? {
            let mdir = vars.join("per-machine").join(&m);
            collect_generators(&mdir, Scope::PerMachine(m.clone()), &repo, &mut files)?;
        }
        collect_generators(&vars.join("shared"), Scope::Shared, &repo, &mut files)?;

        let mut names: BTreeSet<String> = known_machines.iter().cloned().collect();
        for f in &files {
            if let Scope::PerMachine(m) = &f.scope {
                names.insert(m.clone());
            }
        }

        let mut oracle = Oracle {
            dir: dir.to_path_buf(),
            files: Vec::new(),
            machines: BTreeMap::new(),
            ca: None,
            zerotier_networks: Vec::new(),
            zerotier_layout: ZerotierLayout::None,
        };
        for f in &files {
            if let Scope::PerMachine(m) = &f.scope {
                oracle
                    .machines
                    .entry(m.clone())
                    .or_default()
                    .generators
                    .insert(f.generator.clone());
            }
        }
        for f in &files {
            oracle.absorb(f, &names)?;
        }
        oracle.files = files;
        Ok(oracle)
    }

    fn absorb(&mut self, f: &VarFile, names: &BTreeSet<String>) -> Result<(), OracleError> {
        let value_path = f.path.join("value");
        let bad = |problem: String| OracleError::Value {
            path: value_path.clone(),
            problem,
        };
        let value = match &f.value {
            Some(v) => v.as_str(),
            None => {
                if let (Scope::PerMachine(m), "emergency-access", "password-hash") =
                    (&f.scope, f.generator.as_str(), f.file.as_str())
                {
                    self.machines
                        .entry(m.clone())
                        .or_default()
                        .emergency_password_hash = f.secret;
                }
                return Ok(());
            }
        };
        fn sourced<T>(value: T, path: &Path) -> Sourced<T> {
            Sourced {
                value,
                path: path.to_path_buf(),
            }
        }
        // Errors say what was expected and what the file holds in size and hash, never its
        // text: a value file may be anything, a secret included.
        let found = |what: &str, s: &str| bad(format!("expected {what}, found {}", describe(s)));
        let ip = |s: &str| {
            s.parse::<Ipv6Addr>()
                .map_err(|_| found("an IPv6 address", s))
        };
        let nwid = |s: &str| {
            s.parse::<NetworkId>()
                .map_err(|_| found("a ZeroTier network id (16 hex digits)", s))
        };
        match (&f.scope, f.generator.as_str(), f.file.as_str()) {
            (Scope::PerMachine(m), "openssh", "ssh.id_ed25519.pub") => {
                let k = PublicKey::from_openssh(value)
                    .map_err(|e| found(&format!("an OpenSSH public key ({e})"), value))?;
                self.machines.entry(m.clone()).or_default().host_key =
                    Some(sourced(k, &value_path));
            }
            (Scope::PerMachine(m), "openssh-cert", "ssh.id_ed25519-cert.pub") => {
                let c = Certificate::from_openssh(value)
                    .map_err(|e| found(&format!("an OpenSSH certificate ({e})"), value))?;
                self.machines.entry(m.clone()).or_default().host_cert =
                    Some(sourced(c, &value_path));
            }
            (Scope::PerMachine(m), "emergency-access", "password-hash") => {
                self.machines
                    .entry(m.clone())
                    .or_default()
                    .emergency_password_hash = !value.is_empty();
            }
            (Scope::Shared, "openssh-ca", "id_ed25519.pub") => {
                let k = PublicKey::from_openssh(value)
                    .map_err(|e| found(&format!("an OpenSSH public key ({e})"), value))?;
                self.ca = Some(sourced(k, &value_path));
            }
            (Scope::PerMachine(m), "yggdrasil", "address") => {
                let a = ip(value)?;
                if a.segments()[0] & 0xfe00 != 0x0200 {
                    return Err(found("a yggdrasil address (in 200::/7)", value));
                }
                self.machines.entry(m.clone()).or_default().yggdrasil_ip =
                    Some(sourced(a, &value_path));
            }
            (Scope::PerMachine(m), "yggdrasil", "publicKey") => {
                if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(found("a yggdrasil public key (64 hex digits)", value));
                }
                self.machines.entry(m.clone()).or_default().yggdrasil_key =
                    Some(sourced(value.to_ascii_lowercase(), &value_path));
            }
            (Scope::PerMachine(m), "zerotier", "zerotier-ip") => {
                self.zerotier_layout = ZerotierLayout::PerMachine;
                self.machines
                    .entry(m.clone())
                    .or_default()
                    .zerotier_ip
                    .insert(None, sourced(ip(value)?, &value_path));
            }
            (Scope::PerMachine(_), "zerotier", "zerotier-network-id") => {
                self.zerotier_layout = ZerotierLayout::PerMachine;
                self.zerotier_networks.push(ZerotierNetwork {
                    instance: None,
                    id: sourced(nwid(value)?, &value_path),
                });
            }
            (Scope::PerMachine(m), g, "ip") if g.starts_with("zerotier-ip-") => {
                self.zerotier_layout = ZerotierLayout::PerInstance;
                let instance = g["zerotier-ip-".len()..].to_string();
                self.machines
                    .entry(m.clone())
                    .or_default()
                    .zerotier_ip
                    .insert(Some(instance), sourced(ip(value)?, &value_path));
            }
            (_, g, "network-id") if g.starts_with("zerotier-network-") => {
                if f.scope == Scope::Shared {
                    self.zerotier_layout = ZerotierLayout::Shared;
                }
                let instance = g["zerotier-network-".len()..].to_string();
                self.zerotier_networks.push(ZerotierNetwork {
                    instance: Some(instance),
                    id: sourced(nwid(value)?, &value_path),
                });
            }
            (Scope::Shared, g, "ip") if g.starts_with("zerotier-ip-") => {
                self.zerotier_layout = ZerotierLayout::Shared;
                let rest = &g["zerotier-ip-".len()..];
                // Longest known machine name that prefixes `rest` followed by '-'.
                let machine = names
                    .iter()
                    .filter(|n| rest.len() > n.len() + 1 && rest.starts_with(n.as_str()) && rest.as_bytes()[n.len()] == b'-')
                    .max_by_key(|n| n.len())
                    .ok_or_else(|| bad(format!("cannot tell machine from instance in generator {g:?}: no known machine name prefixes it")))?;
                let instance = rest[machine.len() + 1..].to_string();
                self.machines
                    .entry(machine.clone())
                    .or_default()
                    .zerotier_ip
                    .insert(Some(instance), sourced(ip(value)?, &value_path));
            }
            _ => {}
        }
        Ok(())
    }

    /// Network of a ZeroTier instance (`None` in era A matches any single network).
    pub fn zerotier_network(&self, instance: &str) -> Option<&ZerotierNetwork> {
        self.zerotier_networks
            .iter()
            .find(|n| n.instance.as_deref() == Some(instance))
            .or_else(|| self.zerotier_networks.iter().find(|n| n.instance.is_none()))
    }

    /// A machine's ZeroTier address for an instance (era A: its only address).
    pub fn zerotier_ip(&self, machine: &str, instance: &str) -> Option<&Sourced<Ipv6Addr>> {
        let m = self.machines.get(machine)?;
        m.zerotier_ip
            .get(&Some(instance.to_string()))
            .or_else(|| m.zerotier_ip.get(&None))
    }

    /// Unit that authorises members on the controller: its name changed with the vars layout.
    pub fn autoaccept_unit(&self, instance: &str) -> String {
        match self.zerotier_layout {
            ZerotierLayout::PerMachine => "zerotier-inventory-autoaccept.service".to_string(),
            _ => format!("zerotier-autoaccept-{instance}.service"),
        }
    }

    /// SHA256 fingerprint of the CA, as OpenSSH prints it.
    pub fn ca_fingerprint(&self) -> Option<String> {
        self.ca
            .as_ref()
            .map(|c| c.value.fingerprint(HashAlg::Sha256).to_string())
    }

    /// Shared var files (generator, file) with who receives them.
    pub fn shared_files(&self) -> impl Iterator<Item = &VarFile> {
        self.files.iter().filter(|f| f.scope == Scope::Shared)
    }

    /// A var file of a machine or the shared scope.
    pub fn file(&self, scope: &Scope, generator: &str, file: &str) -> Option<&VarFile> {
        self.files
            .iter()
            .find(|f| &f.scope == scope && f.generator == generator && f.file == file)
    }
}

fn collect_generators(
    dir: &Path,
    scope: Scope,
    repo: &Path,
    out: &mut Vec<VarFile>,
) -> Result<(), OracleError> {
    for gen in list_dir(dir)? {
        let gdir = dir.join(&gen);
        if !gdir.is_dir() {
            continue;
        }
        for file in list_dir(&gdir)? {
            let fdir = gdir.join(&file);
            if !fdir.is_dir() {
                continue;
            }
            let value_path = fdir.join("value");
            let value = if value_path.is_file() {
                Some(read_value(&value_path, repo)?)
            } else {
                None
            };
            let secret = fdir.join("secret").exists();
            let recipients = list_dir(&fdir.join("machines"))?;
            if value.is_none() && !secret {
                continue;
            }
            out.push(VarFile {
                scope: scope.clone(),
                generator: gen.clone(),
                file,
                value,
                secret,
                recipients,
                path: fdir,
            });
        }
    }
    Ok(())
}
