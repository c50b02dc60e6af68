//! `[fleet]`: where the clan repository (the oracle) is and which overlay it uses. Paths are
//! checked here so a wrong one fails at load time, not as a missing var mid-run.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::located::Source;
use super::raw::RawFleet;
use crate::error::ConfigError;
use crate::names::DomainName;

/// The overlay network the fleet uses for machine-to-machine traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OverlayKind {
    /// clan-core's `zerotier` service.
    Zerotier,
    /// clan-core's `yggdrasil` service.
    Yggdrasil,
}

/// The validated `[fleet]` table, spread into [`super::FleetConfig`].
pub(super) struct FleetSettings {
    pub(super) clan_dir: PathBuf,
    pub(super) domain: Option<DomainName>,
    pub(super) overlay: OverlayKind,
    pub(super) inventory_json: Option<PathBuf>,
    pub(super) flake: Option<String>,
    pub(super) only: Option<Vec<Spanned<String>>>,
}

/// Validates `[fleet]`: domain syntax, clan_dir a directory, inventory_json an existing file.
pub(super) fn parse(src: &Source, fleet: RawFleet) -> Result<FleetSettings, ConfigError> {
    let domain = match &fleet.domain {
        Some(d) => Some(src.domain(d, "fleet.domain")?),
        None => None,
    };
    let clan_dir = src.path(&fleet.clan_dir, "fleet.clan_dir")?;
    if !clan_dir.is_dir() {
        return Err(src.error(
            fleet.clan_dir.span().start,
            "fleet.clan_dir",
            format!("{} is not a directory", clan_dir.display()),
            "point it at the clan repository root (the directory holding vars/), relative to this file",
        ));
    }
    let inventory_json = match &fleet.inventory_json {
        Some(p) => Some(src.path(p, "fleet.inventory_json")?),
        None => None,
    };
    if let (Some(p), Some(s)) = (&inventory_json, &fleet.inventory_json) {
        if !p.is_file() {
            return Err(src.error(
                s.span().start,
                "fleet.inventory_json",
                format!("{} does not exist", p.display()),
                "write it with `nix eval --json .#clanInternals.inventoryClass.inventorySerialization > inventory-serialization.json` (not into the flake's inventory.json, which clan-core reads as input)",
            ));
        }
    }
    Ok(FleetSettings {
        clan_dir,
        domain,
        overlay: fleet.overlay.unwrap_or(OverlayKind::Zerotier),
        inventory_json,
        flake: match fleet.flake {
            Some(f) => Some(flake(src, f)?),
            None => None,
        },
        only: match fleet.only {
            Some(names) => Some(only(src, names)?),
            None => None,
        },
    })
}

/// `only`: the inventory machines an operator means to check, when a run covers a subset on
/// purpose. Valid machine names, each once, at least one.
fn only(src: &Source, names: Vec<Spanned<String>>) -> Result<Vec<Spanned<String>>, ConfigError> {
    if names.is_empty() {
        return Err(src.error(
            src.table_start("fleet"),
            "fleet.only",
            "is empty".into(),
            "list the machines to check, e.g. only = [\"hetzner-vm\"], or remove the field to check the whole inventory",
        ));
    }
    for (i, n) in names.iter().enumerate() {
        let name = src.name(n, "fleet.only")?;
        if names[..i].iter().any(|m| m.get_ref() == name) {
            return Err(src.error(
                n.span().start,
                "fleet.only",
                format!("{name:?} is listed twice"),
                "name each machine once",
            ));
        }
    }
    Ok(names)
}

/// Every `[[machine]]` must be one `only` names: a machine listed for checking but left out of
/// the subset is a contradiction in the file, said where the machine is.
pub(super) fn check_only(
    src: &Source,
    only: Option<&[Spanned<String>]>,
    machines: &[Spanned<super::raw::RawMachine>],
) -> Result<(), ConfigError> {
    let Some(only) = only else { return Ok(()) };
    for m in machines {
        let name = &m.get_ref().name;
        if !only.iter().any(|o| o.get_ref() == name.get_ref()) {
            return Err(src.error(
                name.span().start,
                "machine.name",
                format!(
                    "machine {:?} is not in [fleet] only = {:?}",
                    name.get_ref(),
                    only.iter()
                        .map(|o| o.get_ref().as_str())
                        .collect::<Vec<_>>()
                ),
                "add it to [fleet] only, or remove its [[machine]] entry",
            ));
        }
    }
    Ok(())
}

/// `flake`: one argument of `nix eval` (`<flake>#clanInternals...`), so it may not look like an
/// option, hold spaces or control characters, or carry its own `#attribute`.
fn flake(src: &Source, f: Spanned<String>) -> Result<String, ConfigError> {
    let s = f.get_ref();
    if s.is_empty()
        || s.starts_with('-')
        || s.contains('#')
        || s.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(src.error(
            f.span().start,
            "fleet.flake",
            format!("{s:?} is not a flake reference"),
            "write a flake reference without '#', spaces or a leading '-', e.g. \".\" or \"github:owner/repo\"",
        ));
    }
    Ok(f.into_inner())
}
