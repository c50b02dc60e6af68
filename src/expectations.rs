//! What the fleet should look like, from the clan repo, the inventory and machines.toml alone. No
//! machine is asked anything here: the verdicts compare what was observed with this, so they are pure and the same live, replayed or planned.

use std::path::Path;

use serde_json::Value;

use crate::config::FleetConfig;
use crate::error::Error;
use crate::inventory::{pinned_snapshot, snapshot_name, Inventory};
use crate::names::MachineName;
use crate::oracle::Oracle;

/// The expected state of the fleet.
#[derive(Debug, Clone)]
pub struct Expectations {
    /// machines.toml.
    pub config: FleetConfig,
    /// Expected values from the clan repo.
    pub oracle: Oracle,
    /// The resolved inventory.
    pub inventory: Inventory,
    /// Where the inventory came from (file, or the `nix eval` command).
    pub inventory_origin: String,
    /// Certificate domain: machines.toml, else the inventory's `meta.domain`, else `clan`.
    pub domain: String,
    /// The machines to check, in machines.toml order.
    pub machines: Vec<MachineName>,
    /// The reviewed AC3 snapshot of the inventory's instances, if one is pinned.
    pub pinned_instances: Option<Value>,
    /// The fleet's addresses as clan itself exports them (`clan.exports`), when the flake was
    /// evaluated: the pre-flight cross-checks them with the vars.
    pub exports: Option<Vec<crate::oracle::exports::ExportedPeer>>,
}

impl Expectations {
    /// Reads the clan repo once for the machines of machines.toml and of the inventory; the
    /// pinned AC3 snapshot comes from `snapshots` (the directory `cargo insta review` writes).
    pub fn new(
        config: FleetConfig,
        inventory: Inventory,
        inventory_origin: String,
        snapshots: &Path,
    ) -> Result<Expectations, Error> {
        let mut machines = Vec::new();
        for m in &config.machines {
            machines.push(
                MachineName::new(&m.name).map_err(|reason| Error::MachineName {
                    path: config.path.clone(),
                    reason,
                })?,
            );
        }
        if let Some(only) = &config.only {
            let has = |m: &str| {
                inventory.machines.contains_key(m)
                    || inventory
                        .instances
                        .values()
                        .flat_map(|i| i.roles.values())
                        .any(|r| r.members.iter().any(|x| x == m))
            };
            if let Some(stray) = only.iter().find(|m| !has(m)) {
                return Err(Error::MachineName {
                    path: config.path.clone(),
                    reason: format!(
                        "[fleet] only names {stray:?}, which the inventory ({inventory_origin}) does not have; name inventory machines only"
                    ),
                });
            }
        }
        let mut known: Vec<String> = machines.iter().map(|m| m.to_string()).collect();
        known.extend(inventory.machines.keys().cloned());
        let oracle = Oracle::load(&config.clan_dir, &known)?;
        // Both are DNS domains checked where they were read (machines.toml, the inventory).
        let domain = config
            .domain
            .as_ref()
            .or(inventory.domain.as_ref())
            .map_or_else(|| "clan".to_string(), |d| d.to_string());
        let pinned_instances = pinned_snapshot(snapshots, &snapshot_name(&inventory));
        Ok(Expectations {
            config,
            oracle,
            inventory,
            inventory_origin,
            domain,
            machines,
            pinned_instances,
            exports: None,
        })
    }

    /// Machine names in machines.toml order.
    pub fn machines(&self) -> Vec<&str> {
        self.machines.iter().map(MachineName::as_str).collect()
    }

    /// Every machine the inventory defines or places in a role, sorted.
    pub fn inventory_machines(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .inventory
            .machines
            .keys()
            .map(String::as_str)
            .chain(
                self.inventory
                    .instances
                    .values()
                    .flat_map(|i| i.roles.values())
                    .flat_map(|r| r.members.iter().map(String::as_str)),
            )
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Inventory machines the checks cannot see because machines.toml does not list them: with
    /// `[fleet] only`, those it names; otherwise every inventory machine. Each is UNCHECKED
    /// "not in machines.toml" wherever a criterion would check it.
    pub fn unconfigured(&self) -> Vec<&str> {
        let listed = self.machines();
        self.inventory_machines()
            .into_iter()
            .filter(|m| !listed.contains(m))
            .filter(|m| {
                self.config
                    .only
                    .as_ref()
                    .is_none_or(|only| only.iter().any(|o| o == m))
            })
            .collect()
    }

    /// The note every verdict prints when `[fleet] only` narrows the fleet on purpose.
    pub fn only_note(&self) -> Option<String> {
        let only = self.config.only.as_ref()?;
        Some(format!(
            "checked only {} of the inventory's {}: [fleet] only",
            only.join(", "),
            self.inventory_machines().join(", ")
        ))
    }

    /// The principal a machine's host certificate must carry.
    pub fn principal(&self, machine: &str) -> String {
        format!("{machine}.{}", self.domain)
    }

    /// Users managed by `users` instances on `machine` (name from settings, default instance
    /// name), with their `share` setting.
    pub fn managed_users(&self, machine: &str) -> Vec<(String, bool)> {
        let mut v = Vec::new();
        for (iname, inst) in self.inventory.instances_of("users") {
            for (rname, role) in &inst.roles {
                if role.members.iter().any(|m| m == machine) {
                    let s = self.inventory.effective_settings(iname, rname, machine);
                    let user = s
                        .get("user")
                        .and_then(|u| u.as_str())
                        .unwrap_or(iname)
                        .to_string();
                    let share = s.get("share").and_then(|u| u.as_bool()).unwrap_or(false);
                    if crate::config::NAME_RE.is_match(&user) && !v.iter().any(|(u, _)| u == &user)
                    {
                        v.push((user, share));
                    }
                }
            }
        }
        v
    }
}
