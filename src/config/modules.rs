//! `[modules.<m>]`: probes for clan modules the harness has no built-in knowledge of. Unit names
//! are checked because they end up as arguments of remote `systemctl` commands.

use std::collections::BTreeMap;

use toml::Spanned;

use super::located::Source;
use super::raw::RawModule;
use crate::error::ConfigError;

/// Probes for clan modules the harness has no built-in knowledge of.
#[derive(Debug, Clone, Default)]
pub struct ModuleProbe {
    /// Units that must be active on every member of any role of the module.
    pub units: Vec<String>,
}

/// Validates every `[modules.<m>]`: `<m>` a clan name, each unit a full systemd unit name.
pub(super) fn parse(
    src: &Source,
    raw: BTreeMap<Spanned<String>, RawModule>,
) -> Result<BTreeMap<String, ModuleProbe>, ConfigError> {
    let mut modules = BTreeMap::new();
    for (name, probe) in raw {
        src.name(&name, "modules.<name>")?;
        let mut units = Vec::new();
        for u in probe.units {
            units.push(
                src.unit(&u, "modules.units", "my-service.service")?
                    .into_string(),
            );
        }
        modules.insert(name.into_inner(), ModuleProbe { units });
    }
    Ok(modules)
}
