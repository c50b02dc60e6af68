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
                "write it with `nix eval --json .#clanInternals.inventoryClass.inventorySerialization > inventory.json`",
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
    })
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
