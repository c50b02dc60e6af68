//! machines.toml: the fleet as the operator describes it. Parsing is strict (unknown fields are
//! rejected) and every error names file, line, column, field and a fix, because a typo here would
//! otherwise surface as a confusing SSH failure much later.
//!
//! [`parse`] reads the raw, span-carrying file and hands each section to its own module's
//! validator: `[fleet]`, `[ssh]`, `[thresholds]`, `[[machine]]` (which needs the SSH user),
//! `[modules.*]`, `[rebuild]`. The first problem found is the one reported.

mod fleet;
mod located;
mod machines;
mod modules;
mod raw;
mod rebuild;
mod ssh;
mod thresholds;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::names::DomainName;
use located::Source;

pub use fleet::OverlayKind;
pub use machines::{is_host_name, Address, MachineConfig};
pub use modules::ModuleProbe;
pub use rebuild::{Artefact, RebuildConfig};
pub use ssh::{SshAuth, SshSettings};
pub use thresholds::Thresholds;

pub use crate::names::NAME_RE;

/// Largest machines.toml read (1 MiB, some 20 000 machines): a bigger file is a mistake or an
/// attack, and refusing it before parsing keeps load time and memory bounded.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// Most machines in one fleet: far above any clan fleet, and it bounds the ordered pairs the
/// plan builds (n²) and every per-machine table.
pub const MAX_MACHINES: usize = 1000;

/// The validated machines.toml.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Where it was read from.
    pub path: PathBuf,
    /// Root of the clan repository (the oracle).
    pub clan_dir: PathBuf,
    /// Domain for host certificate principals; `None` = inventory `meta.domain`, else `clan`.
    pub domain: Option<DomainName>,
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
    /// `[fleet] only`: the inventory machines meant to be checked, when a run covers a subset
    /// on purpose (every verdict says so); `None`: the whole inventory.
    pub only: Option<Vec<String>>,
}

impl FleetConfig {
    /// The machine called `name`.
    pub fn machine(&self, name: &str) -> Option<&MachineConfig> {
        self.machines.iter().find(|m| m.name == name)
    }
}

/// Reads and validates a machines file; at most [`MAX_FILE_BYTES`] are read.
pub fn load(path: &Path) -> Result<FleetConfig, ConfigError> {
    let file_error = |problem: String, fix: &str| ConfigError {
        path: path.to_path_buf(),
        line: 0,
        column: 0,
        field: "(file)".into(),
        problem,
        fix: fix.into(),
    };
    let read = std::fs::File::open(path).and_then(|f| {
        let mut bytes = Vec::new();
        f.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes)?;
        Ok(bytes)
    });
    let bytes = read.map_err(|e| {
        file_error(
            format!("cannot read: {e}"),
            "point COORD_MACHINES at an existing machines.toml",
        )
    })?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_big(path));
    }
    match String::from_utf8(bytes) {
        Ok(text) => parse(path, &text),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let text = String::from_utf8_lossy(&bytes[..valid]);
            Err(Source { path, text: &text }.error(
                valid,
                "(file)",
                format!("byte 0x{:02x} is not UTF-8", bytes[valid]),
                "save the file as UTF-8 (TOML files are UTF-8)",
            ))
        }
    }
}

/// The error for a file over [`MAX_FILE_BYTES`].
fn too_big(path: &Path) -> ConfigError {
    ConfigError {
        path: path.to_path_buf(),
        line: 0,
        column: 0,
        field: "(file)".into(),
        problem: format!("is larger than {MAX_FILE_BYTES} bytes"),
        fix: "machines.toml describes one fleet (a few KiB); check that this is the right file"
            .into(),
    }
}

/// Parses machines.toml text; `path` is used for messages and to resolve relative paths.
pub fn parse(path: &Path, text: &str) -> Result<FleetConfig, ConfigError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(too_big(path));
    }
    let src = Source { path, text };
    let raw = raw::read(&src)?;
    let fleet_start = src.table_start("fleet");
    let fleet = fleet::parse(&src, raw.fleet)?;
    let ssh = ssh::parse(&src, raw.ssh)?;
    let thresholds = thresholds::parse(&src, raw.thresholds.as_ref())?;
    let machines = machines::parse(&src, &raw.machines, &ssh.user, fleet_start)?;
    fleet::check_only(&src, fleet.only.as_deref(), &raw.machines)?;
    thresholds::check_ping_interval(&src, raw.thresholds.as_ref(), &machines)?;
    let modules = modules::parse(&src, raw.modules)?;
    let rebuild = rebuild::parse(&src, raw.rebuild)?;
    Ok(FleetConfig {
        path: path.to_path_buf(),
        clan_dir: fleet.clan_dir,
        domain: fleet.domain,
        overlay: fleet.overlay,
        inventory_json: fleet.inventory_json,
        flake: fleet.flake,
        ssh,
        thresholds,
        machines,
        modules,
        rebuild,
        only: fleet
            .only
            .map(|o| o.into_iter().map(|n| n.into_inner()).collect()),
    })
}
