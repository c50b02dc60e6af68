//! What clan itself says about the fleet's addresses (`clan.exports`, which clan's networking
//! and `clan ssh` use), cross-checked with what the oracle reads from the vars: a disagreement
//! means one of the two reads another var than the fleet deploys (an instance renamed, a var
//! layout the oracle does not know, a stale export).
//!
//! Shape, from clan-core's zerotier service evaluated on the lab's flake:
//! `{"clan-core/zerotier:<instance>::<machine>": {"peer": {"hosts": [{"plain": "<address>"}], ...}}}`;
//! keys without a machine (`...::`) carry the instance's networking module, not an address.
//! clan-core's yggdrasil service exports its address var's file as it is, trailing newline and
//! all (`"201:43c6:…:5a04\n"`): hosts are trimmed.

use std::net::Ipv6Addr;

use serde_json::Value;

use super::lint::{Issue, Level};
use super::Oracle;

/// One machine's address as an instance exports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedPeer {
    /// The service (`zerotier`, `yggdrasil`).
    pub service: String,
    /// The instance.
    pub instance: String,
    /// The machine.
    pub machine: String,
    /// Its exported hosts (`plain` entries).
    pub hosts: Vec<String>,
}

/// The peers in `clan.exports` (other exports are skipped).
pub fn parse(exports: &Value) -> Vec<ExportedPeer> {
    let mut out = Vec::new();
    for (key, v) in exports.as_object().into_iter().flatten() {
        // "<input>/<service>:<instance>:<role>:<machine>"
        let Some((scope, rest)) = key.split_once(':') else {
            continue;
        };
        let service = scope.rsplit('/').next().unwrap_or(scope).to_string();
        let parts: Vec<&str> = rest.split(':').collect();
        let [instance, _role, machine] = parts.as_slice() else {
            continue;
        };
        if machine.is_empty() {
            continue;
        }
        let hosts: Vec<String> = v["peer"]["hosts"]
            .as_array()
            .into_iter()
            .flatten()
            // yggdrasil's export carries its var file's trailing newline as it is.
            .filter_map(|h| h["plain"].as_str().map(|s| s.trim().to_string()))
            .collect();
        if hosts.is_empty() {
            continue;
        }
        out.push(ExportedPeer {
            service,
            instance: (*instance).to_string(),
            machine: (*machine).to_string(),
            hosts,
        });
    }
    out
}

/// Every exported overlay address against the vars' (the oracle's).
pub fn cross_check(o: &Oracle, peers: &[ExportedPeer]) -> Vec<Issue> {
    let mut out = Vec::new();
    for p in peers {
        let vars: Option<(Ipv6Addr, String)> = match p.service.as_str() {
            "zerotier" => o
                .zerotier_ip(&p.machine, &p.instance)
                .map(|s| (s.value, s.path.display().to_string())),
            "yggdrasil" => o
                .machines
                .get(&p.machine)
                .and_then(|m| m.yggdrasil_ip.as_ref())
                .map(|s| (s.value, s.path.display().to_string())),
            _ => continue,
        };
        let exported: Vec<Ipv6Addr> = p.hosts.iter().filter_map(|h| h.parse().ok()).collect();
        let issue = |level, problem: String, should: String, files: Vec<String>| Issue {
            level,
            rule: "exports.address",
            machine: p.machine.clone(),
            files,
            problem,
            should,
        };
        match vars {
            None => out.push(issue(
                Level::Warning,
                format!(
                    "clan.exports gives {}'s {} address on instance {} as {}, and the vars hold none the oracle reads",
                    p.machine,
                    p.service,
                    p.instance,
                    p.hosts.join(", ")
                ),
                "the vars' address for this machine (is the var layout one the oracle knows?)".into(),
                Vec::new(),
            )),
            Some((want, file)) if !exported.contains(&want) => out.push(issue(
                Level::Error,
                format!(
                    "clan.exports gives {}'s {} address on instance {} as {}, the vars {want}",
                    p.machine,
                    p.service,
                    p.instance,
                    p.hosts.join(", ")
                ),
                format!("{want}: clan's own view and the vars must agree (re-run `clan vars generate`, or redeploy)"),
                vec![file],
            )),
            Some(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real output: `nix eval --json <lab flake>#clan.exports` (clan-core d7c35d91, Nix 2.8).
    const REAL: &str = r#"{"clan-core/user:users-root:default:gcp-vm":{"auth":null},"clan-core/user:users-root:default:hetzner-vm":{"auth":null},"clan-core/zerotier:zerotier::":{"networking":{"module":"clan_lib.network.zerotier","priority":900},"peer":null},"clan-core/zerotier:zerotier::gcp-vm":{"networking":null,"peer":{"SSHOptions":[],"hosts":[{"plain":"fdf7:451d:c725:543b:e499:93f6:c382:75d7"}],"name":"peer","port":22,"user":null}},"clan-core/zerotier:zerotier::hetzner-vm":{"networking":null,"peer":{"SSHOptions":[],"hosts":[{"plain":"fdf7:451d:c725:543b:e499:93f7:451d:c725"}],"name":"peer","port":22,"user":null}}}"#;

    #[test]
    fn yggdrasils_export_is_read_without_its_var_files_newline() {
        let v = serde_json::json!({"clan-core/yggdrasil:yggdrasil:default:gcp-vm": {"peer": {"hosts": [{"plain": "201:43c6:f01:1a97:a52e:1310:446d:5a04\n"}]}}});
        assert_eq!(
            parse(&v)[0].hosts,
            vec!["201:43c6:f01:1a97:a52e:1310:446d:5a04"]
        );
    }

    #[test]
    fn the_lab_flakes_exports_give_one_peer_per_machine() {
        let v: Value = serde_json::from_str(REAL).unwrap();
        let p = parse(&v);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(
            p[0],
            ExportedPeer {
                service: "zerotier".into(),
                instance: "zerotier".into(),
                machine: "gcp-vm".into(),
                hosts: vec!["fdf7:451d:c725:543b:e499:93f6:c382:75d7".into()],
            }
        );
    }
}
