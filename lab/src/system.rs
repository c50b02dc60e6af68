//! The lab's stand-in for evaluating a flake's NixOS configuration: `<clan>/lab-config.json` holds
//! the settings the lab's machines are built from (a shared `nix.conf`, the yggdrasil instance's
//! listen port, per-machine overrides). Evaluating it for one machine gives that machine's system:
//! a closure whose store path is the hash of its content, exactly as an unchanged configuration
//! gives an unchanged closure on NixOS. `lab rebuild` (the `clan machines update` stand-in)
//! applies it.

use serde_json::{json, Value};

use crate::error::LabError;
use crate::state::{LabMachine, LabState};

/// The default configuration the lab repo starts with.
pub fn default_config() -> Value {
    json!({
        "nix_conf": "experimental-features = nix-command flakes\ntrusted-users = root\n",
        "yggdrasil_port": 6443,
        "zerotier_mtu": 2800,
        "machines": {}
    })
}

/// One machine's evaluated system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct System {
    /// `/etc/nix/nix.conf`.
    pub nix_conf: String,
    /// yggdrasil listen port.
    pub port: u16,
    /// Peers' underlay URIs.
    pub peers: Vec<String>,
    /// The zerotier instance's network MTU (the controller's network settings; clan's default).
    pub zt_mtu: u32,
    /// Whether switching restarts daemons whose settings changed (false mirrors
    /// `clan machines update` leaving services running after a vars/settings change).
    pub restart_on_switch: bool,
}

/// Reads `<clan>/lab-config.json`.
pub fn read_config(state: &LabState) -> Result<Value, LabError> {
    let p = state.dir.join("clan/lab-config.json");
    let t = std::fs::read_to_string(&p).map_err(|e| LabError::Io {
        path: p.clone(),
        source: e,
    })?;
    serde_json::from_str(&t).map_err(|e| LabError::Invalid(format!("{}: {e}", p.display())))
}

fn port_of(cfg: &Value, m: &str) -> Result<u16, String> {
    let v = cfg["machines"][m]
        .get("yggdrasil_port")
        .unwrap_or(&cfg["yggdrasil_port"]);
    v.as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("error: A definition for option `services.yggdrasil.settings.Listen' of {m} is not a port number: {v}"))
}

/// Evaluates machine `m`'s system, or fails as `nix eval` would on a bad definition.
pub fn evaluate(state: &LabState, cfg: &Value, m: &LabMachine) -> Result<System, String> {
    let mut nix_conf = cfg["nix_conf"]
        .as_str()
        .ok_or("error: option `nix.extraOptions' is not of type `string'")?
        .to_string();
    if let Some(extra) = cfg["machines"][&m.name].get("nix_conf_extra") {
        let extra = extra.as_str().ok_or_else(|| format!("error: A definition for option `nix.extraOptions' of {} is not of type `strings concatenated with \"\\n\"': {extra}", m.name))?;
        nix_conf.push_str(extra);
    }
    let port = port_of(cfg, &m.name)?;
    let mut peers = Vec::new();
    for o in state.machines.iter().filter(|o| o.name != m.name) {
        peers.push(format!(
            "tcp://{}:{}",
            o.underlay_ip,
            port_of(cfg, &o.name).unwrap_or(6443)
        ));
    }
    let default_mtu = json!(2800);
    let mtu = cfg.get("zerotier_mtu").unwrap_or(&default_mtu);
    let zt_mtu = mtu
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| (1280..=10000).contains(v))
        .ok_or_else(|| format!("error: A definition for option `clan.core.zerotier.networks.zerotier.settings.mtu' is not an MTU ZeroTier accepts (1280-10000): {mtu}"))?;
    let restart_on_switch = cfg["machines"][&m.name]
        .get("restart_on_switch")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    Ok(System {
        nix_conf,
        port,
        peers,
        zt_mtu,
        restart_on_switch,
    })
}

/// The closure's content files (path in the closure → content); a ZeroTier lab machine's
/// overlay files come from [`crate::zerotier::closure_files`] instead of yggdrasil's.
pub fn closure(m: &LabMachine, sys: &System, yggdrasil: bool) -> Vec<(String, String)> {
    let mut files = vec![
        ("etc/nix/nix.conf".into(), sys.nix_conf.clone()),
        (
            "nixos-version".into(),
            "26.05.lab (clan-coord lab)\n".into(),
        ),
    ];
    if !yggdrasil {
        return files;
    }
    files.extend(ygg_files(m, sys));
    files
}

fn ygg_files(m: &LabMachine, sys: &System) -> Vec<(String, String)> {
    vec![
        (
            "etc/yggdrasil/settings.json".into(),
            serde_json::to_string_pretty(&json!({"Listen": [format!("tcp://{}:{}", m.underlay_ip, sys.port)], "Peers": sys.peers})).unwrap_or_default(),
        ),
        (
            // The unit's definition names its settings, as a NixOS unit names its config file
            // in the store: a settings change changes the unit file.
            "etc/systemd/system/yggdrasil.service".into(),
            format!(
                "[Service]\nExecStart=/usr/sbin/yggdrasil -useconffile /run/yggdrasil/yggdrasil.conf\n# settings: Listen port {}, peers {}\n",
                sys.port,
                sys.peers.join(" ")
            ),
        ),
    ]
}

/// Edits `<clan>/lab-config.json` (what an operator's commit to the clan repo is to a real fleet).
pub fn change(state: &LabState, f: impl FnOnce(&mut Value)) -> Result<(), LabError> {
    let mut cfg = read_config(state)?;
    f(&mut cfg);
    let p = state.dir.join("clan/lab-config.json");
    std::fs::write(&p, serde_json::to_string_pretty(&cfg).unwrap_or_default())
        .map_err(|e| LabError::Io { path: p, source: e })
}
