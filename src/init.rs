//! `clan-coord init`: a first machines.toml from the operator's clan, so they start from what the
//! inventory already says (every machine, its `deploy.targetHost`, the overlay instance, the
//! domain) instead of typing addresses. What only the operator can decide (how the harness
//! authenticates, the thresholds) is written with a `DECIDE:` comment, and every machine left out
//! is listed, commented out, with the reason.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::Address;
use crate::names::NAME_RE;

/// Where the inventory came from, as machines.toml will name it.
#[derive(Debug, Clone)]
pub enum Source {
    /// A flake (`[fleet] flake`), evaluated live by `nix eval`.
    Flake {
        /// `clan_dir`: the clan repo root.
        clan_dir: String,
        /// The flake reference.
        flake: String,
    },
    /// A serialization file (`[fleet] inventory_json`).
    File {
        /// `clan_dir`: the clan repo root (where vars/ is).
        clan_dir: String,
        /// The file.
        inventory_json: String,
    },
}

/// One machine of the inventory as `init` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its name.
    pub name: String,
    /// User from `deploy.targetHost` (`root@...`), if given.
    pub user: Option<String>,
    /// Its address.
    pub address: Address,
    /// Port from `deploy.targetHost`, if given.
    pub port: Option<u16>,
}

/// What `init` found: the machines it writes, and those it leaves out with why.
#[derive(Debug, Clone)]
pub struct Found {
    /// Machines with a usable `deploy.targetHost`.
    pub targets: Vec<Target>,
    /// (machine, why it is left out).
    pub left_out: Vec<(String, String)>,
    /// The overlay from the instances, or why none was chosen.
    pub overlay: Result<&'static str, String>,
    /// `meta.domain`.
    pub domain: Option<String>,
    /// `meta.name`.
    pub clan: Option<String>,
}

/// `[user@]host[:port]`, host an IP literal (IPv6 in brackets when a port follows) or a name.
pub fn parse_target_host(s: &str) -> Result<(Option<String>, Address, Option<u16>), String> {
    let (user, rest) = match s.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, s),
    };
    if let Some(u) = &user {
        if !NAME_RE.is_match(u) {
            return Err(format!("user {u:?} is not a plain user name"));
        }
    }
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (h, after) = inner
            .split_once(']')
            .ok_or_else(|| format!("{rest:?}: '[' without ']'"))?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(format!("{rest:?}: unexpected {after:?} after ']'")),
        }
    } else if rest.matches(':').count() == 1 {
        let (h, p) = rest.split_once(':').unwrap_or((rest, ""));
        (h, Some(p))
    } else {
        (rest, None)
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("port {p:?} is not 1 to 65535"))?,
        ),
    };
    let address = match host.parse() {
        Ok(ip) => Address::Ip(ip),
        Err(_) if crate::config::is_host_name(host) => Address::Name(host.to_string()),
        Err(_) => return Err(format!("{host:?} is neither an IP address nor a host name")),
    };
    Ok((user, address, port))
}

/// Reads an inventory serialization (`clanInternals.inventoryClass.inventorySerialization`).
pub fn read(serialization: &Value) -> Found {
    let mut found = Found {
        targets: Vec::new(),
        left_out: Vec::new(),
        overlay: Err(String::new()),
        domain: serialization["meta"]["domain"].as_str().map(String::from),
        clan: serialization["meta"]["name"].as_str().map(String::from),
    };
    let machines: BTreeMap<&String, &Value> = serialization["machines"]
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    for (name, m) in machines {
        if !NAME_RE.is_match(name) {
            found
                .left_out
                .push((name.clone(), "its name is not a clan machine name".into()));
            continue;
        }
        let class = m["machineClass"].as_str().unwrap_or("nixos");
        if class != "nixos" {
            found.left_out.push((
                name.clone(),
                format!("machineClass {class}: the checks probe NixOS machines (systemd units, /run/current-system)"),
            ));
            continue;
        }
        match m["deploy"]["targetHost"].as_str() {
            None | Some("") => found.left_out.push((
                name.clone(),
                "no deploy.targetHost in the inventory: set it in the clan, or write the machine's address here".into(),
            )),
            Some(t) => match parse_target_host(t) {
                Ok((user, address, port)) => found.targets.push(Target {
                    name: name.clone(),
                    user,
                    address,
                    port,
                }),
                Err(e) => found
                    .left_out
                    .push((name.clone(), format!("deploy.targetHost {t:?}: {e}"))),
            },
        }
    }
    let modules: Vec<&str> = serialization["instances"]
        .as_object()
        .map(|i| {
            i.values()
                .filter_map(|x| x["module"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    found.overlay = match (modules.contains(&"zerotier"), modules.contains(&"yggdrasil")) {
        (true, false) => Ok("zerotier"),
        (false, true) => Ok("yggdrasil"),
        (true, true) => Err("the inventory has zerotier and yggdrasil instances: the harness checks one overlay per run".into()),
        (false, false) => Err("no zerotier or yggdrasil instance in the inventory".into()),
    };
    found
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The machines.toml text for `found`, read from `source`.
pub fn machines_toml(found: &Found, source: &Source, from: &str) -> String {
    let mut s = format!(
        "# Written by `clan-coord init` from {from}{}.\n\
         # Review it before a live run: lines marked DECIDE are for you. Field by field: README.md,\n\
         # section \"machines.toml\".\n\n[fleet]\n",
        found
            .clan
            .as_ref()
            .map(|c| format!(" (clan {c})"))
            .unwrap_or_default()
    );
    match source {
        Source::Flake { clan_dir, flake } => s.push_str(&format!(
            "clan_dir = {}   # the clan repo root (vars/)\nflake = {}   # nix eval of the inventory, live\n",
            quoted(clan_dir),
            quoted(flake)
        )),
        Source::File {
            clan_dir,
            inventory_json,
        } => s.push_str(&format!(
            "clan_dir = {}   # DECIDE: the clan repo root (vars/); the inventory file's directory\ninventory_json = {}\n",
            quoted(clan_dir),
            quoted(inventory_json)
        )),
    }
    match &found.overlay {
        Ok(o) => s.push_str(&format!(
            "overlay = \"{o}\"   # from the inventory's instances\n"
        )),
        Err(why) => s.push_str(&format!(
            "# overlay = \"zerotier\"   # DECIDE: {why}; zerotier or yggdrasil\n"
        )),
    }
    match &found.domain {
        Some(d) => s.push_str(&format!(
            "domain = {}   # meta.domain: host certificates name <machine>.{d}\n",
            quoted(d)
        )),
        None => s.push_str(
            "# domain = \"clan\"   # DECIDE: meta.domain is not set; host certificates name <machine>.<domain>\n",
        ),
    }
    // [ssh] user: the targetHosts' most common user (root on a tie or when none names one);
    // machines with another get their own `user`.
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for u in found.targets.iter().filter_map(|t| t.user.as_deref()) {
        *counts.entry(u).or_default() += 1;
    }
    let top = counts.values().copied().max().unwrap_or(0);
    let ssh_user = if counts.get("root").copied().unwrap_or(0) == top {
        "root"
    } else {
        counts
            .iter()
            .find(|(_, n)| **n == top)
            .map_or("root", |(u, _)| *u)
    };
    s.push_str(&format!(
        "\n[ssh]\n\
         # DECIDE: how the harness authenticates: your ssh-agent, or a key file.\n\
         auth = \"agent\"\n\
         # auth = \"identity_file\"\n\
         # identity_file = \"~/.ssh/id_ed25519\"\n\
         user = {}\n\
         connect_timeout_secs = 5\n\
         command_timeout_secs = 20\n\n\
         [thresholds]\n\
         # DECIDE: what the fleet must meet (these are the defaults).\n\
         max_rtt_ms = 200\n\
         ping_count = 5\n\
         ping_interval_secs = 0.2\n\
         ping_timeout_secs = 2\n",
        quoted(ssh_user)
    ));
    for t in &found.targets {
        s.push_str(&format!(
            "\n[[machine]]\nname = {}\naddress = {}   # deploy.targetHost{}\n",
            quoted(&t.name),
            quoted(&t.address.to_string()),
            if matches!(t.address, Address::Name(_)) {
                ": a name, resolved when a live run connects"
            } else {
                ""
            }
        ));
        if let Some(p) = t.port {
            s.push_str(&format!("port = {p}\n"));
        }
        if let Some(u) = t.user.as_deref().filter(|u| *u != ssh_user) {
            s.push_str(&format!("user = {}\n", quoted(u)));
        }
    }
    for (name, why) in &found.left_out {
        s.push_str(&format!(
            "\n# Left out: {name}: {why}\n# [[machine]]\n# name = {}\n# address = \"\"\n",
            quoted(name)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_hosts_as_clan_writes_them() {
        let ok = |s: &str| parse_target_host(s).unwrap();
        assert_eq!(
            ok("root@cinnabar.zt"),
            (
                Some("root".into()),
                Address::Name("cinnabar.zt".into()),
                None
            )
        );
        assert_eq!(
            ok("203.0.113.10:2222"),
            (
                None,
                Address::Ip("203.0.113.10".parse().unwrap()),
                Some(2222)
            )
        );
        assert_eq!(
            ok("root@[fd00::1]:22"),
            (
                Some("root".into()),
                Address::Ip("fd00::1".parse().unwrap()),
                Some(22)
            )
        );
        assert_eq!(ok("fd00::1").1, Address::Ip("fd00::1".parse().unwrap()));
        for bad in [
            "root@-oProxyCommand=x",
            "a b",
            "host:0",
            "host:99999",
            "[fd00::1",
            "ro ot@h",
        ] {
            assert!(parse_target_host(bad).is_err(), "{bad}");
        }
    }
}
