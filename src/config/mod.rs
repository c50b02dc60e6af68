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
use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::names::DomainName;
use located::Source;

pub use fleet::OverlayKind;
pub use machines::MachineConfig;
pub use modules::ModuleProbe;
pub use rebuild::{Artefact, RebuildConfig};
pub use ssh::{SshAuth, SshSettings};
pub use thresholds::Thresholds;

pub use crate::names::NAME_RE;

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
}

impl FleetConfig {
    /// The machine called `name`.
    pub fn machine(&self, name: &str) -> Option<&MachineConfig> {
        self.machines.iter().find(|m| m.name == name)
    }
}

/// Reads and validates a machines file.
pub fn load(path: &Path) -> Result<FleetConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        line: 0,
        column: 0,
        field: "(file)".into(),
        problem: format!("cannot read: {e}"),
        fix: "point COORD_MACHINES at an existing machines.toml".into(),
    })?;
    parse(path, &text)
}

/// Parses machines.toml text; `path` is used for messages and to resolve relative paths.
pub fn parse(path: &Path, text: &str) -> Result<FleetConfig, ConfigError> {
    let src = Source { path, text };
    let raw = raw::read(&src)?;
    let fleet_start = raw.fleet.span().start;
    let fleet = fleet::parse(&src, raw.fleet.into_inner())?;
    let ssh = ssh::parse(&src, raw.ssh)?;
    let thresholds = thresholds::parse(&src, raw.thresholds.as_ref())?;
    let machines = machines::parse(&src, &raw.machines, &ssh.user, fleet_start)?;
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
    })
}
