//! The clan inventory: read the serialization (`clanInternals.inventoryClass.inventorySerialization`,
//! or a file holding it), unwrap the module-system settings wrappers, drop `_file` store paths and
//! resolve role members from `machines` and `tags`, so the snapshot pins meaning, not build noise.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::InventoryError;
use crate::names::{DomainName, MachineName};

/// Instance names: they become parts of unit names (`zerotier-autoaccept-<instance>.service`)
/// and of vars generator names, so only what those accept, never a leading '-' or '.'.
static INSTANCE_RE: once_cell::sync::Lazy<regex::Regex> = once_cell::sync::Lazy::new(|| {
    regex::Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").expect("static regex is valid")
});

/// A module reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleRef {
    /// Module name (`zerotier`, `sshd`, ...).
    pub name: String,
    /// Flake input (`clan-core`, `self`, or null for built-in).
    pub input: Option<String>,
}

/// A role with its members resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedRole {
    /// Sorted member machines.
    pub members: Vec<String>,
    /// Role-level settings, unwrapped.
    pub settings: Value,
    /// Settings given per machine (only non-empty ones).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub machine_settings: BTreeMap<String, Value>,
    /// Settings given per tag (only non-empty ones).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tag_settings: BTreeMap<String, Value>,
}

/// A service instance with resolved roles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedInstance {
    /// The module.
    pub module: ModuleRef,
    /// Roles by name.
    pub roles: BTreeMap<String, ResolvedRole>,
}

/// A machine of the inventory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InventoryMachine {
    /// `nixos` or `darwin`.
    pub machine_class: String,
    /// Its tags (sorted, with built-ins).
    pub tags: Vec<String>,
}

/// The resolved inventory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inventory {
    /// `meta.name`.
    pub name: Option<String>,
    /// `meta.domain` (clan defaults to `clan`).
    pub domain: Option<DomainName>,
    /// Machines.
    pub machines: BTreeMap<String, InventoryMachine>,
    /// Instances by name.
    pub instances: BTreeMap<String, ResolvedInstance>,
}

/// Removes `{"imports":[{"_file":…,"imports":[v]}]}` wrappers at any level and every `_file` key.
pub fn unwrap_settings(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let is_wrapper =
                map.contains_key("imports") && map.keys().all(|k| k == "imports" || k == "_file");
            if is_wrapper {
                if let Some(Value::Array(items)) = map.get("imports") {
                    let mut merged: Option<Value> = None;
                    for item in items {
                        let u = unwrap_settings(item);
                        merged = Some(match merged {
                            None => u,
                            Some(acc) => deep_merge(acc, u),
                        });
                    }
                    return merged.unwrap_or_else(|| Value::Object(Map::new()));
                }
            }
            Value::Object(
                map.iter()
                    .filter(|(k, _)| k.as_str() != "_file")
                    .map(|(k, v)| (k.clone(), unwrap_settings(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(unwrap_settings).collect()),
        other => other.clone(),
    }
}

/// Later values win; objects merge key by key (the module system's attrset merge).
pub fn deep_merge(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Object(mut x), Value::Object(y)) => {
            for (k, v) in y {
                let merged = match x.remove(&k) {
                    Some(old) => deep_merge(old, v),
                    None => v,
                };
                x.insert(k, merged);
            }
            Value::Object(x)
        }
        (_, b) => b,
    }
}

fn obj<'a>(
    v: &'a Value,
    what: &str,
    origin: &str,
) -> Result<&'a Map<String, Value>, InventoryError> {
    v.as_object().ok_or_else(|| InventoryError::Shape {
        origin: origin.to_string(),
        problem: format!("{what} is not an object"),
    })
}

/// The error for the value at `place` (a dotted path in the serialization).
fn bad_value(origin: &str, place: &str, why: String) -> InventoryError {
    InventoryError::Shape {
        origin: origin.to_string(),
        problem: format!("{place}: {why}"),
    }
}

/// A machine name at `place`: names go into file paths and commands, so a hostile inventory
/// (`../../etc`, `-oProxyCommand`) is refused here.
fn machine_name(name: &str, place: &str, origin: &str) -> Result<(), InventoryError> {
    MachineName::new(name)
        .map(drop)
        .map_err(|why| bad_value(origin, place, why))
}

/// `meta.domain`: absent or null means clan's default; anything else must be a DNS domain,
/// since it ends up in `ssh -o HostKeyAlias=<machine>.<domain>`.
fn domain(
    meta: Option<&Map<String, Value>>,
    origin: &str,
) -> Result<Option<DomainName>, InventoryError> {
    match meta.and_then(|m| m.get("domain")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(d)) => DomainName::new(d)
            .map(Some)
            .map_err(|why| bad_value(origin, "meta.domain", why)),
        Some(other) => Err(bad_value(
            origin,
            "meta.domain",
            format!("is {other}, not a string"),
        )),
    }
}

fn is_empty(v: &Value) -> bool {
    matches!(v, Value::Null) || v.as_object().is_some_and(Map::is_empty)
}

impl Inventory {
    /// Parses inventory JSON text from `origin` (a path or command, for messages).
    pub fn parse(text: &str, origin: &str) -> Result<Inventory, InventoryError> {
        let v: Value = serde_json::from_str(text).map_err(|e| InventoryError::Shape {
            origin: origin.into(),
            problem: format!("not JSON: {e}"),
        })?;
        Inventory::from_value(&v, origin)
    }

    /// Resolves a parsed serialization.
    pub fn from_value(v: &Value, origin: &str) -> Result<Inventory, InventoryError> {
        let top = obj(v, "the inventory", origin)?;
        if top.contains_key("services") && !top.contains_key("instances") {
            return Err(InventoryError::Shape {
                origin: origin.into(),
                problem: "has `services` (removed old-style inventory) but no `instances`; evaluate clanInternals.inventoryClass.inventorySerialization of a current clan".into(),
            });
        }
        let instances_v = top.get("instances").ok_or_else(|| InventoryError::Shape {
            origin: origin.into(),
            problem: "no `instances` key".into(),
        })?;
        let meta = top.get("meta").and_then(Value::as_object);
        let mut machines = BTreeMap::new();
        if let Some(ms) = top.get("machines").and_then(Value::as_object) {
            for (name, m) in ms {
                machine_name(name, &format!("machines.{name:?}"), origin)?;
                let class = m
                    .get("machineClass")
                    .and_then(Value::as_str)
                    .unwrap_or("nixos")
                    .to_string();
                let mut tags: BTreeSet<String> = m
                    .get("tags")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect();
                tags.insert("all".into());
                tags.insert(class.clone());
                machines.insert(
                    name.clone(),
                    InventoryMachine {
                        machine_class: class,
                        tags: tags.into_iter().collect(),
                    },
                );
            }
        }
        // Static inventory tags (`tags.<t> = [machines]`) add to machines' tags.
        if let Some(ts) = top.get("tags").and_then(Value::as_object) {
            for (tag, list) in ts {
                for m in list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if let Some(im) = machines.get_mut(m) {
                        if !im.tags.contains(tag) {
                            im.tags.push(tag.clone());
                            im.tags.sort();
                        }
                    }
                }
            }
        }
        let mut instances = BTreeMap::new();
        for (iname, inst) in obj(instances_v, "`instances`", origin)? {
            if !INSTANCE_RE.is_match(iname) {
                return Err(bad_value(
                    origin,
                    &format!("instances.{iname:?}"),
                    "is not an instance name (letters, digits, '_', '.' and '-', not starting with '-' or '.', at most 128)".into(),
                ));
            }
            let inst = obj(inst, &format!("instance {iname}"), origin)?;
            let module = match inst.get("module") {
                Some(m) => ModuleRef {
                    name: m
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or(iname)
                        .to_string(),
                    input: m.get("input").and_then(Value::as_str).map(String::from),
                },
                None => ModuleRef {
                    name: iname.clone(),
                    input: None,
                },
            };
            let mut roles = BTreeMap::new();
            if let Some(rs) = inst.get("roles") {
                for (rname, role) in obj(rs, &format!("instance {iname} roles"), origin)? {
                    let role = obj(role, &format!("role {iname}.{rname}"), origin)?;
                    let mut members = BTreeSet::new();
                    let mut machine_settings = BTreeMap::new();
                    let mut tag_settings = BTreeMap::new();
                    if let Some(ms) = role.get("machines").and_then(Value::as_object) {
                        for (m, mv) in ms {
                            machine_name(
                                m,
                                &format!("instances.{iname}.roles.{rname}.machines.{m:?}"),
                                origin,
                            )?;
                            members.insert(m.clone());
                            let s = unwrap_settings(mv.get("settings").unwrap_or(&Value::Null));
                            if !is_empty(&s) {
                                machine_settings.insert(m.clone(), s);
                            }
                        }
                    }
                    // Nix lets tags be a list; the serialization stores an attrset. Accept both.
                    let tag_entries: Vec<(String, Value)> = match role.get("tags") {
                        Some(Value::Object(ts)) => {
                            ts.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
                        }
                        Some(Value::Array(ts)) => ts
                            .iter()
                            .filter_map(Value::as_str)
                            .map(|t| (t.to_string(), Value::Null))
                            .collect(),
                        _ => Vec::new(),
                    };
                    for (tag, tv) in tag_entries {
                        for (m, im) in &machines {
                            if im.tags.contains(&tag) {
                                members.insert(m.clone());
                            }
                        }
                        let s = unwrap_settings(tv.get("settings").unwrap_or(&Value::Null));
                        if !is_empty(&s) {
                            tag_settings.insert(tag, s);
                        }
                    }
                    let settings = match role.get("settings") {
                        Some(s) => unwrap_settings(s),
                        None => Value::Object(Map::new()),
                    };
                    let settings = if settings.is_null() {
                        Value::Object(Map::new())
                    } else {
                        settings
                    };
                    roles.insert(
                        rname.clone(),
                        ResolvedRole {
                            members: members.into_iter().collect(),
                            settings,
                            machine_settings,
                            tag_settings,
                        },
                    );
                }
            }
            instances.insert(iname.clone(), ResolvedInstance { module, roles });
        }
        Ok(Inventory {
            name: meta
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .map(String::from),
            domain: domain(meta, origin)?,
            machines,
            instances,
        })
    }

    /// Settings a machine ends up with in a role: role, then its tags, then its own (clan's order).
    pub fn effective_settings(&self, instance: &str, role: &str, machine: &str) -> Value {
        let Some(r) = self.instances.get(instance).and_then(|i| i.roles.get(role)) else {
            return Value::Object(Map::new());
        };
        let mut s = r.settings.clone();
        if let Some(m) = self.machines.get(machine) {
            for (tag, ts) in &r.tag_settings {
                if m.tags.contains(tag) {
                    s = deep_merge(s, ts.clone());
                }
            }
        }
        if let Some(ms) = r.machine_settings.get(machine) {
            s = deep_merge(s, ms.clone());
        }
        s
    }

    /// Instances using module `name`.
    pub fn instances_of<'a>(
        &'a self,
        module: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a ResolvedInstance)> + 'a {
        self.instances
            .iter()
            .filter(move |(_, i)| i.module.name == module)
    }

    /// Every (instance, role) a machine holds.
    pub fn roles_of(&self, machine: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (iname, inst) in &self.instances {
            for (rname, r) in &inst.roles {
                if r.members.iter().any(|m| m == machine) {
                    out.push((iname.clone(), rname.clone()));
                }
            }
        }
        out
    }

    /// What the snapshot pins: instances only (machines' deploy data changes too often).
    pub fn snapshot_value(&self) -> Value {
        serde_json::to_value(&self.instances).unwrap_or(Value::Null)
    }
}

/// Snapshot name of a clan's instances (`instances-<meta.name>`), shared by the insta assertion
/// in tests and the pure comparison in AC3.
/// The clan's `meta.name` is untrusted text from the repo: anything but letters, digits, `-`,
/// `_` and `.` (no leading `.`) becomes `_`, so the name cannot leave the snapshot directory.
pub fn snapshot_name(inv: &Inventory) -> String {
    let name: String = inv
        .name
        .as_deref()
        .unwrap_or("clan")
        .chars()
        .take(100)
        .enumerate()
        .map(|(i, c)| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
            '.' if i > 0 => c,
            _ => '_',
        })
        .collect();
    format!("instances-{name}")
}

/// The JSON body of a pinned insta snapshot file, if it exists.
pub fn pinned_snapshot(dir: &std::path::Path, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.snap"))).ok()?;
    // insta files: a `---` YAML header, a `---` line, then the body.
    let body = text.splitn(3, "---\n").nth(2)?;
    serde_json::from_str(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unwraps_nested_wrappers_and_drops_file() {
        let raw = json!({"imports":[{"_file":"/nix/store/x-inventory.nix, via option instances","imports":[{"user":"root","prompt":false,"inner":{"imports":[{"_file":"y","imports":[{"a":1}]}]}}]}]});
        assert_eq!(
            unwrap_settings(&raw),
            json!({"user":"root","prompt":false,"inner":{"a":1}})
        );
        assert_eq!(
            unwrap_settings(&json!({"imports":[{"_file":"z","imports":[{}]}]})),
            json!({})
        );
        assert_eq!(unwrap_settings(&json!({"imports":[]})), json!({}));
    }

    #[test]
    fn resolves_tags_and_machines() {
        let inv = Inventory::from_value(
            &json!({
                "meta":{"name":"t","domain":"clan"},
                "machines":{"a":{"machineClass":"nixos","tags":["peer"]},"b":{"machineClass":"darwin","tags":[]}},
                "instances":{"z":{"module":{"name":"zerotier","input":"clan-core"},"roles":{
                    "controller":{"machines":{"a":{"settings":{}}},"tags":{},"settings":{}},
                    "peer":{"machines":{},"tags":{"all":{"settings":{}}},"settings":{}},
                    "n":{"tags":["nixos"]}}}},
                "tags":{"all":["a","b"]}
            }),
            "test",
        )
        .unwrap();
        let z = &inv.instances["z"];
        assert_eq!(z.roles["controller"].members, vec!["a"]);
        assert_eq!(z.roles["peer"].members, vec!["a", "b"]);
        assert_eq!(z.roles["n"].members, vec!["a"]);
    }

    /// Names and the domain from the inventory reach file paths, `systemctl`/`journalctl`
    /// arguments (instance names become unit names) and `ssh -o HostKeyAlias=`: a hostile
    /// inventory is refused with the place of the bad value.
    #[test]
    fn hostile_names_and_domains_are_refused_with_their_place() {
        let with = |meta: Value, machines: Value, instances: Value| {
            Inventory::from_value(
                &json!({"meta": meta, "machines": machines, "instances": instances}),
                "inv.json",
            )
        };
        let ok_m = json!({"a": {}});
        let ok_i = json!({"z": {"roles": {"peer": {"machines": {"a": {}}}}}});
        let cases: [(Value, Value, Value, &str); 9] = [
            (
                json!({"domain": "x -oProxyCommand=sh"}),
                ok_m.clone(),
                ok_i.clone(),
                "meta.domain: \"x -oProxyCommand=sh\" is not a DNS domain",
            ),
            (
                json!({"domain": "a..b"}),
                ok_m.clone(),
                ok_i.clone(),
                "meta.domain: \"a..b\" is not a DNS domain",
            ),
            (
                json!({"domain": "clan "}),
                ok_m.clone(),
                ok_i.clone(),
                "meta.domain",
            ),
            (
                json!({"domain": 5}),
                ok_m.clone(),
                ok_i.clone(),
                "meta.domain: is 5, not a string",
            ),
            (
                json!({}),
                json!({"../../etc": {}}),
                json!({}),
                "machines.\"../../etc\": \"../../etc\" is not a machine name",
            ),
            (
                json!({}),
                json!({"-oProxyCommand=x": {}}),
                json!({}),
                "machines.\"-oProxyCommand=x\"",
            ),
            (
                json!({}),
                ok_m.clone(),
                json!({"-H": {}}),
                "instances.\"-H\": is not an instance name",
            ),
            (
                json!({}),
                ok_m.clone(),
                json!({"a b": {}}),
                "instances.\"a b\"",
            ),
            (
                json!({}),
                ok_m.clone(),
                json!({"z": {"roles": {"peer": {"machines": {"-x": {}}}}}}),
                "instances.z.roles.peer.machines.\"-x\": \"-x\" is not a machine name",
            ),
        ];
        for (meta, machines, instances, want) in cases {
            let e = with(meta.clone(), machines, instances)
                .map(|_| ())
                .expect_err(want)
                .to_string();
            assert!(
                e.starts_with("inventory from inv.json: ") && e.contains(want),
                "{e}\nwant: {want}"
            );
        }
        let ok = with(json!({"domain": "zt"}), ok_m.clone(), ok_i.clone()).unwrap();
        assert_eq!(ok.domain.as_deref(), Some("zt"));
        assert_eq!(
            with(json!({"domain": null}), ok_m, ok_i).unwrap().domain,
            None
        );
    }

    #[test]
    fn the_snapshot_name_cannot_leave_the_snapshot_directory() {
        for (name, want) in [
            ("lab-clan", "instances-lab-clan"),
            ("../../etc/x", "instances-_._.._etc_x"),
            ("/abs", "instances-_abs"),
            (".hidden", "instances-_hidden"),
        ] {
            let inv = Inventory::from_value(&json!({"meta": {"name": name}, "instances": {}}), "t")
                .unwrap();
            assert_eq!(snapshot_name(&inv), want);
        }
    }
}
