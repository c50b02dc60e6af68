//! The lab's clan as a flake, written the way an operator's clan repo is (`clan-core.lib.clan`
//! with `meta`, machines with tags and `deploy.targetHost`, instances by role and tag), and
//! evaluated by clan-core itself through Nix: the inventory the harness reads is clan-core's own
//! `inventorySerialization`, not one the lab wrote by hand.
//!
//! Debian's Nix is 2.8 and reaches no network here, so clan-core and the flakes it needs come
//! from the vendored tarballs (sha256 checked), unpacked once into the cache. The two changes
//! Nix 2.8 needs are made here, on the unpacked copy, never in the tarballs: clan-core's
//! `flake.lock` is removed (2.8 rejects its `lastModified` attribute), and every input gets a
//! local source through the lab flake's `inputs.clan-core.inputs.<x>.follows` (nixpkgs ->
//! nixpkgs.lib, flake-parts, systems; disko, sops-nix, nix-darwin, treefmt-nix, nix-select and
//! data-mesher -> an empty flake: nothing evaluated here uses them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::error::LabError;
use crate::files::{io, lock_exclusive, mkdir, write};
use crate::process::run;
use crate::state::LabState;
use crate::zerotier::install::sha256_file;

/// The vendored tarballs: file name, sha256 (`../shared/vendor/README.md`), directory in the cache.
pub const TARBALLS: [(&str, &str, &str); 4] = [
    (
        crate::zerotier::CLAN_CORE_NAME,
        crate::zerotier::CLAN_CORE_SHA256,
        "clan-core",
    ),
    (
        "nixpkgs-lib-de42d442.tar.gz",
        "d7f6123c82c065f319e2198791548402fc60b7b6bd8e4bb5589c2ab73ea7b2a2",
        "nixpkgs-lib",
    ),
    (
        "flake-parts-427bf4bd.tar.gz",
        "0316fe1424ead6ecdb793a8c4225a12b8530162ead84ce9531516605292e9cf9",
        "flake-parts",
    ),
    (
        "nix-systems-da67096a.tar.gz",
        "9fa9eb6536db3f7a6ff27127ff218b78bbbe219bf37f3f6816dc3cbbdb6798e0",
        "systems",
    ),
];

/// clan-core's inputs that nothing evaluated here uses: each follows the empty flake.
const STUBBED: [&str; 6] = [
    "disko",
    "sops-nix",
    "nix-darwin",
    "treefmt-nix",
    "nix-select",
    "data-mesher",
];

/// Where the lab keeps clan-core's serialization of its inventory, in the clan repo (not
/// `inventory.json`: clan-core reads that file of a clan's root as inventory input, and a
/// serialization there fails its evaluation with "uniqueDeferredSerializableModule doesn't allow
/// nested imports").
pub const SERIALIZATION: &str = "inventory-serialization.json";

/// The attribute the harness evaluates (`[fleet] flake`).
pub const INVENTORY_ATTR: &str = "clanInternals.inventoryClass.inventorySerialization";

/// `nix` with the features a flake needs (Debian's Nix 2.8 has them off and no nix.conf).
pub fn nix() -> Command {
    let mut c = Command::new("nix");
    c.args(["--extra-experimental-features", "nix-command flakes"]);
    c
}

/// Unpacks clan-core and its inputs (found beside clan-core's tarball, `clan_core_src`) into the
/// cache once, with the changes Nix 2.8 needs; returns the directory holding them.
pub fn prepare(
    cache: &Path,
    clan_core_src: &Path,
    notice: &mut dyn FnMut(&str),
) -> Result<PathBuf, LabError> {
    let key: String = TARBALLS.iter().map(|(_, sum, _)| &sum[..8]).collect();
    let dir = cache.join(format!("clan-flake-{key}"));
    let ready =
        |d: &Path| d.join("clan-core/flake.nix").is_file() && d.join("empty/flake.nix").is_file();
    if ready(&dir) {
        return Ok(dir);
    }
    mkdir(cache)?;
    let _lock = lock_exclusive(&cache.join("clan-flake.lock"))?;
    if ready(&dir) {
        return Ok(dir);
    }
    let vendor = clan_core_src.parent().unwrap_or(Path::new("."));
    let partial = cache.join(format!("clan-flake-{key}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| io(&partial, e))?;
    }
    mkdir(&partial)?;
    let started = Instant::now();
    for (name, sum, sub) in TARBALLS {
        let tarball = if name == crate::zerotier::CLAN_CORE_NAME {
            clan_core_src.to_path_buf()
        } else {
            vendor.join(name)
        };
        if !tarball.is_file() {
            return Err(LabError::Invalid(format!(
                "{} is not there: the lab's clan flake needs clan-core's vendored inputs beside its tarball ({})",
                tarball.display(),
                TARBALLS.map(|t| t.0).join(", ")
            )));
        }
        let got = sha256_file(&tarball)?;
        if got != sum {
            return Err(LabError::Invalid(format!(
                "{} has sha256 {got}, not the vendored {name}'s {sum}: refusing it",
                tarball.display()
            )));
        }
        let to = partial.join(sub);
        mkdir(&to)?;
        run(
            "tar",
            &[
                "xzf".as_ref(),
                tarball.as_os_str(),
                "-C".as_ref(),
                to.as_os_str(),
                "--strip-components=1".as_ref(),
            ],
        )?;
    }
    // Nix 2.8 rejects the lock's `lastModified` attribute; the lab flake's follows replace it.
    let lock = partial.join("clan-core/flake.lock");
    if lock.exists() {
        std::fs::remove_file(&lock).map_err(|e| io(&lock, e))?;
    }
    write(
        &partial.join("empty/flake.nix"),
        "# clan-coord lab: stands in for clan-core's inputs that nothing evaluated here uses.\n{ outputs = _: { }; }\n",
        0o644,
    )?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))?;
    }
    std::fs::rename(&partial, &dir).map_err(|e| io(&dir, e))?;
    notice(&format!(
        "lab: clan-core and its flake inputs unpacked into {} in {:.1?} (once)",
        dir.display(),
        started.elapsed()
    ));
    Ok(dir)
}

/// Nix's keywords: never bare attribute names.
const KEYWORDS: [&str; 10] = [
    "if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or",
];

/// A JSON value as Nix source. Strings (and keys that are no identifier) are JSON strings with
/// `${` escaped, which Nix reads as the same strings.
fn to_nix(v: &Value, indent: usize) -> String {
    let pad = "  ".repeat(indent + 1);
    let s = |x: &str| {
        serde_json::to_string(x)
            .unwrap_or_default()
            .replace("${", "\\${")
    };
    // A key stays bare where Nix reads it as an identifier; others are quoted.
    let key = |k: &str| {
        let mut c = k.chars();
        let bare = c
            .next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
            && c.all(|x| x.is_ascii_alphanumeric() || "_-'".contains(x))
            && !KEYWORDS.contains(&k);
        if bare {
            k.to_string()
        } else {
            s(k)
        }
    };
    match v {
        Value::Object(m) if m.is_empty() => "{ }".into(),
        Value::Object(m) => {
            let body: String = m
                .iter()
                .map(|(k, x)| format!("{pad}{} = {};\n", key(k), to_nix(x, indent + 1)))
                .collect();
            format!("{{\n{body}{}}}", "  ".repeat(indent))
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(|x| to_nix(x, indent + 1)).collect();
            format!("[ {} ]", items.join(" "))
        }
        Value::String(x) => s(x),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// The lab's `clan-core.lib.clan` arguments: meta, machines (tags, `deploy.targetHost`) and
/// instances by role and tag, as an operator writes them.
pub fn clan_args(state: &LabState) -> Value {
    let controller = state
        .machines
        .first()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let machines: serde_json::Map<String, Value> = state
        .machines
        .iter()
        .map(|m| {
            let mut tags = vec!["lab"];
            if state.zerotier.is_some() && m.name != controller {
                tags.push("peer");
            }
            (
                m.name.clone(),
                json!({"description": format!("lab machine {}", m.index), "tags": tags,
                       "deploy": {"targetHost": format!("root@{}", m.mgmt_ip)}}),
            )
        })
        .collect();
    let by_tag = |tag: &str| json!({"tags": {tag: {}}});
    let mut instances = json!({
        "sshd-clan": {"module": {"name": "sshd", "input": "clan-core"},
                      "roles": {"server": by_tag("all"), "client": by_tag("all")}},
        "emergency-access": {"module": {"name": "emergency-access", "input": "clan-core"},
                             "roles": {"default": by_tag("all")}},
        "users-root": {"module": {"name": "users", "input": "clan-core"},
                       "roles": {"default": {"tags": {"all": {}},
                                             "settings": {"user": "root", "prompt": false, "share": true}}}},
    });
    if state.zerotier.is_some() {
        instances[crate::zerotier::INSTANCE] = json!({
            "module": {"name": "zerotier", "input": "clan-core"},
            "roles": {"controller": {"machines": {controller: {}}}, "peer": by_tag("peer")},
        });
    } else {
        instances["yggdrasil"] = json!({"module": {"name": "yggdrasil", "input": "clan-core"},
                                        "roles": {"default": by_tag("all")}});
    }
    json!({
        "meta": {"name": state.clan_name(), "domain": state.domain,
                 "description": "clan-coord lab fleet (Linux namespaces)"},
        "inventory": {"machines": machines, "instances": instances},
    })
}

/// The lab clan's `flake.nix`, its inputs pointing into `inputs` (from [`prepare`]).
pub fn flake_nix(state: &LabState, inputs: &Path) -> String {
    let path = |sub: &str| format!("path:{}", inputs.join(sub).display());
    let stubs: String = STUBBED
        .iter()
        .map(|i| format!("      {i}.follows = \"empty\";\n"))
        .collect();
    format!(
        r#"# Written by `clan-coord lab up`: the lab fleet's clan, as an operator's clan repo is written.
# clan-core and its inputs are the vendored sources unpacked into the lab's cache (Nix 2.8,
# offline: every input local; clan-core's inputs that nothing here uses follow an empty flake).
{{
  inputs = {{
    clan-core.url = "{clan_core}";
    nixpkgs.url = "{nixpkgs}";
    flake-parts.url = "{flake_parts}";
    flake-parts.inputs.nixpkgs-lib.follows = "nixpkgs";
    systems.url = "{systems}";
    empty.url = "{empty}";
    clan-core.inputs = {{
      nixpkgs.follows = "nixpkgs";
      flake-parts.follows = "flake-parts";
      systems.follows = "systems";
{stubs}    }};
  }};

  outputs =
    inputs@{{ self, clan-core, ... }}:
    let
      clan = clan-core.lib.clan ({{ inherit self; }} // {args});
    in
    {{
      inherit (clan.config) clanInternals;
      clan = clan.config;
    }};
}}
"#,
        clan_core = path("clan-core"),
        nixpkgs = path("nixpkgs-lib"),
        flake_parts = path("flake-parts"),
        systems = path("systems"),
        empty = path("empty"),
        args = to_nix(&clan_args(state), 3),
    )
}

/// `nix eval --json <flake>#<attr>`: its output and how long it took. Nix writes the flake's
/// `flake.lock` on the first run, so `flake` must be writable.
pub fn eval(flake: &Path, attr: &str) -> Result<(String, Duration), LabError> {
    let started = Instant::now();
    let target = format!("path:{}#{attr}", flake.display());
    let out = nix()
        .args(["eval", "--json", &target])
        .output()
        .map_err(|e| LabError::Tool {
            tool: "nix".into(),
            reason: format!("cannot start: {e} (install Debian's nix-bin: lab up --install)"),
        })?;
    if !out.status.success() {
        return Err(LabError::Tool {
            tool: format!("nix eval --json {target}"),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        started.elapsed(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_becomes_nix_that_means_the_same() {
        let v = json!({"a-b": {"x": [1, "s${x}", true, null]}, "e": {}, "in": 1, "0x": 2});
        assert_eq!(
            to_nix(&v, 0),
            "{\n  \"0x\" = 2;\n  a-b = {\n    x = [ 1 \"s\\${x}\" true null ];\n  };\n  e = { };\n  \"in\" = 1;\n}"
        );
    }
}
