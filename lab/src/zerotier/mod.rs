//! The ZeroTier lab (`lab up --overlay zerotier`): the story's own overlay, run as clan runs it.
//! Machine 1 (`hetzner-vm`) is the controller of the instance `zerotier`, the others peers.
//!
//! Clan's flow with clan-core's own tools, run as they are (from the vendored clan-core):
//! `zerotier-generate` makes the vars on the workstation (each machine's identity secret, the
//! shared network id from the controller's identity, each machine's rfc4193 ip) in the current
//! vars layout; each machine gets its identity as a deployed var, and its `zerotierone.service`
//! does what clan's module does before the daemon starts (identity installed, `networks.d`
//! touched; the controller's network JSON in `controller.d`) and after (the controller allows
//! itself with `zerotier-members`); the controller's `zerotier-autoaccept-zerotier.service`
//! allows every member by ip, as clan's unit does. `/var/lib/zerotier-one` is each machine's own.
//!
//! Network rule: before a node's first start its `planet` is replaced by a private one whose only
//! root is the controller on the lab underlay (`mkworld.cpp`); `local.conf` turns off the TCP
//! fallback relay and port mapping, and keeps ZeroTier off the lab's management interface
//! (`eth0`, the workstation's, not a fleet path) besides clan's own interface blacklist.

pub mod faults;
pub mod install;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::LabError;
use crate::files::{io, mkdir, write};
use crate::process::{await_cond, in_parallel, run, READY};
use crate::state::LabState;

/// The clan instance name of the lab's zerotier service.
pub const INSTANCE: &str = "zerotier";
/// The vendored clan-core the lab takes clan's zerotier tools from.
pub const CLAN_CORE_NAME: &str = "clan-core-d7c35d91.tar.gz";
/// sha256 of [`CLAN_CORE_NAME`].
pub const CLAN_CORE_SHA256: &str =
    "39ffceacd00488154c516d76a81887f568d9de123de57fa401503a6dc1c23c20";
/// The private planet's world id ("clan"), not ZeroTier's (so the built-in planet never
/// replaces it).
const WORLD_ID: u64 = 0x636c_616e;

/// What a ZeroTier lab keeps in `lab.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZtLab {
    /// The instance's network id (clan's `zerotier-network-zerotier/network-id`).
    pub network_id: String,
    /// The ZeroTier programs ([`install::ZeroTier::bin`]).
    pub bin: PathBuf,
    /// clan-core's `zerotier-tools` Python package directory.
    pub tools: PathBuf,
}

impl ZtLab {
    pub(crate) fn validate(&self) -> Result<(), String> {
        let hex16 =
            self.network_id.len() == 16 && self.network_id.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex16 {
            return Err(format!(
                "network id {:?} is not 16 hex digits",
                self.network_id
            ));
        }
        for (what, p, leaf) in [
            ("zerotier bin", &self.bin, "zerotier-one"),
            ("clan zerotier tools", &self.tools, "zerotier_tools"),
        ] {
            if !p.is_absolute() || !p.join(leaf).exists() {
                return Err(format!("{what} {} is not the lab's", p.display()));
            }
        }
        Ok(())
    }
}

/// clan-core's `zerotier-tools` package, unpacked from the vendored clan-core (sha256 checked)
/// into the cache once.
pub fn clan_tools(cache: &Path, source: &Path) -> Result<PathBuf, LabError> {
    let dir = cache.join(format!("clan-core-{}", &CLAN_CORE_SHA256[..16]));
    let tools = dir.join("clanServices/zerotier/pkgs/zerotier-tools");
    if tools.join("zerotier_tools/members.py").is_file() {
        return Ok(tools);
    }
    if !source.is_file() {
        return Err(LabError::Invalid(format!(
            "clan-core's source {} is not there: pass --clan-core-src or COORD_CLAN_CORE_SRC (the vendored {CLAN_CORE_NAME})",
            source.display()
        )));
    }
    if install::sha256_file(source)? != CLAN_CORE_SHA256 {
        return Err(LabError::Invalid(format!(
            "{} is not the vendored {CLAN_CORE_NAME} (sha256 {CLAN_CORE_SHA256}): refusing it",
            source.display()
        )));
    }
    mkdir(&dir)?;
    run(
        "tar",
        &[
            "xzf".as_ref(),
            source.as_os_str(),
            "-C".as_ref(),
            dir.as_os_str(),
            "--strip-components=1".as_ref(),
            "clan-core/clanServices/zerotier".as_ref(),
        ],
    )?;
    Ok(tools)
}

/// Runs one of clan's zerotier tools on the workstation (host), as `clan vars generate` runs it.
fn clan_tool(zt: &ZtLab, module: &str, args: &[&str]) -> Result<String, LabError> {
    let path = format!(
        "{}:{}",
        zt.bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("python3")
        .args([
            "-c",
            &format!("import sys; from zerotier_tools.{module} import main; main()"),
        ])
        .args(args)
        .env("PYTHONPATH", &zt.tools)
        .env("PATH", path)
        .output()
        .map_err(|e| LabError::Tool {
            tool: format!("zerotier-{module}"),
            reason: format!("cannot start python3: {e}"),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Tool {
            tool: format!("clan's zerotier_tools.{module} {}", args.join(" ")),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// clan's `zerotier-generate --mode identity-only`: a new identity secret at `secret` (0600).
fn gen_identity(zt: &ZtLab, secret: &Path) -> Result<(), LabError> {
    let s = secret.display().to_string();
    clan_tool(
        zt,
        "generate",
        &["--mode", "identity-only", "--identity-secret", &s],
    )?;
    std::fs::set_permissions(secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| io(secret, e))
}

/// clan's `zerotier-generate --mode network-id`: a network id of the controller's identity.
fn gen_network_id(zt: &ZtLab, controller_secret: &Path, out: &Path) -> Result<String, LabError> {
    let (c, o) = (
        controller_secret.display().to_string(),
        out.display().to_string(),
    );
    clan_tool(
        zt,
        "generate",
        &[
            "--mode",
            "network-id",
            "--identity-secret-file",
            &c,
            "--network-id",
            &o,
        ],
    )?;
    read_trim(out)
}

/// clan's `zerotier-generate --mode compute-ip`: a member's address on a network.
fn gen_ip(zt: &ZtLab, secret: &Path, nwid_file: &Path, out: &Path) -> Result<String, LabError> {
    let [s, n, o] = [secret, nwid_file, out].map(|p| p.display().to_string());
    clan_tool(
        zt,
        "generate",
        &[
            "--mode",
            "compute-ip",
            "--identity-secret",
            &s,
            "--network-id-file",
            &n,
            "--ip",
            &o,
        ],
    )?;
    read_trim(out)
}

fn read_trim(p: &Path) -> Result<String, LabError> {
    Ok(std::fs::read_to_string(p)
        .map_err(|e| io(p, e))?
        .trim()
        .to_string())
}

/// The vars, as clan's generators make them: identities, the network id (from the controller's
/// identity), each machine's ip. Kept under `<dir>/machines/<m>/keys/` (secrets) and in the state.
pub(crate) fn generate_vars(state: &mut LabState, zt: &mut ZtLab) -> Result<(), LabError> {
    let keys: Vec<PathBuf> = state
        .machines
        .iter()
        .map(|m| state.dir.join("machines").join(&m.name).join("keys"))
        .collect();
    // Each machine's generators are independent of the others': run them in parallel, as the
    // workstation's `clan vars generate` may.
    in_parallel(keys.iter(), |k| {
        gen_identity(zt, &k.join("zerotier-identity-secret"))
    })?;
    let nwid_file = state.dir.join("clan-network-id");
    zt.network_id = gen_network_id(zt, &keys[0].join("zerotier-identity-secret"), &nwid_file)?;
    let zt_ro: &ZtLab = zt;
    in_parallel(keys.iter(), |k| {
        let secret = k.join("zerotier-identity-secret");
        gen_ip(zt_ro, &secret, &nwid_file, &k.join("zerotier-ip"))?;
        let idtool = zt_ro.bin.join("zerotier-idtool").display().to_string();
        let public = run(&idtool, &["getpublic", &secret.display().to_string()])?;
        write(&k.join("zerotier-identity.public"), &public, 0o644)
    })?;
    for (m, k) in state.machines.iter_mut().zip(&keys) {
        m.zt_ip = read_trim(&k.join("zerotier-ip"))?;
        // The node id is the identity's first field.
        let id = read_trim(&k.join("zerotier-identity-secret"))?;
        m.zt_node = id.split(':').next().unwrap_or_default().to_string();
    }
    Ok(())
}

/// The controller's network as clan's module writes it into `controller.d` (`default.nix`).
fn network_json(nwid: &str, mtu: u32) -> serde_json::Value {
    json!({
        "authTokens": [null], "authorizationEndpoint": "", "capabilities": [], "clientId": "",
        "dns": {}, "enableBroadcast": true, "id": nwid, "ipAssignmentPools": [], "mtu": mtu,
        "multicastLimit": 32, "name": INSTANCE, "uwid": nwid, "objtype": "network", "private": true,
        "remoteTraceLevel": 0, "remoteTraceTarget": null, "revision": 1, "routes": [],
        "rules": [{"not": false, "or": false, "type": "ACTION_ACCEPT"}], "rulesSource": "",
        "ssoEnabled": false, "tags": [], "v4AssignMode": {"zt": false},
        "v6AssignMode": {"6plane": false, "rfc4193": true, "zt": false}
    })
}

/// `local.conf`: clan's interface blacklist plus the lab's management interface; no TCP relay,
/// no port mapping (the network rule).
fn local_conf() -> String {
    json!({"settings": {
        "interfacePrefixBlacklist": ["ygg", "hyprspace", "tinc", "tailscale", "mycelium", "wg", "zt", "eth0"],
        "allowTcpFallbackRelay": false,
        "portMappingEnabled": false
    }})
    .to_string()
}

/// The machines' shared `/usr/local/bin`: `zerotier-cli`/`zerotier-idtool` (argv\[0\] of
/// `zerotier-one`) and clan's `zerotier-members`.
pub(crate) fn write_shared_bin(state: &LabState) -> Result<(), LabError> {
    let bin = state.dir.join("zt/bin");
    mkdir(&bin)?;
    for tool in ["zerotier-one", "zerotier-cli", "zerotier-idtool"] {
        let link = bin.join(tool);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/usr/local/lib/zerotier-one/zerotier-one", &link)
            .map_err(|e| io(&link, e))?;
    }
    write(
        &bin.join("zerotier-members"),
        "#!/bin/sh\n# clan-core's zerotier-members (clanServices/zerotier/pkgs/zerotier-tools), as packaged\n\
         PYTHONPATH=/usr/local/lib/clan-zerotier-tools exec python3 -c \
         'from zerotier_tools.members import main; main()' \"$@\"\n",
        0o755,
    )
}

/// Machine `m`'s ZeroTier binds (source, target), besides the lab's own ([`crate::binds`]).
pub(crate) fn binds(state: &LabState, zt: &ZtLab, m: &str) -> Vec<(PathBuf, String)> {
    let md = state.mdir(m);
    vec![
        (zt.bin.clone(), "/usr/local/lib/zerotier-one".into()),
        (
            zt.tools.clone(),
            "/usr/local/lib/clan-zerotier-tools".into(),
        ),
        (state.dir.join("zt/bin"), "/usr/local/bin".into()),
        (md.join("units"), "/usr/local/lib/systemd/system".into()),
        (md.join("zerotier-one"), "/var/lib/zerotier-one".into()),
    ]
}

/// Machine `m`'s ZeroTier files: its deployed identity var, its state directory (private planet,
/// `local.conf`, `networks.d`, the controller's network), and its units.
pub(crate) fn write_machine_files(state: &LabState, zt: &ZtLab, m: &str) -> Result<(), LabError> {
    let md = state.mdir(m);
    let keys = md.join("keys");
    let nwid = &zt.network_id;
    let controller = &state.machines[0];
    let is_controller = controller.name == m;
    let mtu = crate::deploy::current_system(state, state.machine(m)?)?.zt_mtu;
    write(
        &md.join(format!(
            "run/secrets/vars/zerotier-identity-{m}/identity-secret"
        )),
        &std::fs::read_to_string(keys.join("zerotier-identity-secret"))
            .map_err(|e| io(&keys, e))?,
        0o600,
    )?;
    let home = md.join("zerotier-one");
    mkdir(&home.join("networks.d"))?;
    write(&home.join(format!("networks.d/{nwid}.conf")), "", 0o644)?;
    write(&home.join("local.conf"), &local_conf(), 0o644)?;
    let planet = home.join("planet");
    if !planet.exists() {
        let root_public = state
            .dir
            .join("machines")
            .join(&controller.name)
            .join("keys/zerotier-identity.public");
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as u64);
        run(
            &zt.bin.join("clan-coord-mkworld").display().to_string(),
            &[
                planet.display().to_string(),
                WORLD_ID.to_string(),
                ts.to_string(),
                root_public.display().to_string(),
                format!("{}/9993", controller.underlay_ip),
            ],
        )?;
    }
    if is_controller {
        write(
            &home.join(format!("controller.d/network/{nwid}.json")),
            &network_json(nwid, mtu).to_string(),
            0o644,
        )?;
    }
    let units = md.join("units");
    write(
        &units.join("zerotierone.service"),
        &unit_text(state, zt, m, mtu),
        0o644,
    )?;
    let wants = units.join("multi-user.target.wants");
    mkdir(&wants)?;
    let mut enabled = vec!["zerotierone.service".to_string()];
    if is_controller {
        let allow: String = state
            .machines
            .iter()
            .map(|o| {
                format!(
                    "ExecStart=zerotier-members --network-id {nwid} allow --member-ip {}\n",
                    o.zt_ip
                )
            })
            .collect();
        let unit = format!("zerotier-autoaccept-{INSTANCE}.service");
        write(
            &units.join(&unit),
            &format!("[Unit]\nAfter=zerotierone.service\nRequires=zerotierone.service\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n{allow}\n[Install]\nWantedBy=multi-user.target\n"),
            0o644,
        )?;
        enabled.push(unit);
    }
    for u in enabled {
        let link = wants.join(&u);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(format!("../{u}"), &link).map_err(|e| io(&link, e))?;
    }
    Ok(())
}

/// `zerotierone.service` of machine `m`, as clan's module makes it (with the lab's program
/// paths). On the controller the definition names the network settings it installs, as clan's
/// `ExecStartPre` names its store file: a settings change changes the controller's unit.
pub(crate) fn unit_text(state: &LabState, zt: &ZtLab, m: &str, mtu: u32) -> String {
    let nwid = &zt.network_id;
    let mut post = String::new();
    if state.machines.first().is_some_and(|c| c.name == m) {
        post = format!(
            "# clan's init-zerotier-controller: network {nwid} with mtu {mtu} in controller.d\n\
             ExecStartPost=+/bin/sh -c 'zerotier-members --network-id {nwid} allow {}'\n",
            &nwid[..10]
        );
    }
    format!(
        "[Unit]\nDescription=ZeroTierOne\nAfter=network-online.target clan-lab-activation.service\nWants=network-online.target\n\n\
         [Service]\n\
         # clan's init-zerotier-identity: the identity from its deployed var\n\
         ExecStartPre=+/bin/sh -c 'cmp -s /run/secrets/vars/zerotier-identity-{m}/identity-secret /var/lib/zerotier-one/identity.secret || {{ cp /run/secrets/vars/zerotier-identity-{m}/identity-secret /var/lib/zerotier-one/identity.secret; zerotier-idtool getpublic /var/lib/zerotier-one/identity.secret > /var/lib/zerotier-one/identity.public; }}'\n\
         ExecStart=/usr/local/lib/zerotier-one/zerotier-one -p9993\n\
         # clan's configure-interface waits for the local API before anything uses it\n\
         ExecStartPost=/bin/sh -c 'i=0; until zerotier-cli info >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 300 ] || exit 1; sleep 0.1; done'\n\
         {post}Restart=always\n\n[Install]\nWantedBy=multi-user.target\n"
    )
}

/// The ZeroTier files of machine `m`'s system closure: its unit, and on the controller the
/// network settings.
pub(crate) fn closure_files(
    state: &LabState,
    zt: &ZtLab,
    m: &str,
    mtu: u32,
) -> Vec<(String, String)> {
    let mut files = vec![(
        "etc/systemd/system/zerotierone.service".to_string(),
        unit_text(state, zt, m, mtu),
    )];
    if state.machines.first().is_some_and(|c| c.name == m) {
        files.push((
            format!("etc/zerotier/{}.json", zt.network_id),
            network_json(&zt.network_id, mtu).to_string(),
        ));
    }
    files
}

/// Waits until every machine is ONLINE, has the network OK with its clan address, and pings
/// every other machine's address over ZeroTier.
pub(crate) fn await_ready(state: &LabState, zt: &ZtLab) -> Result<(), LabError> {
    let limit = READY * 4; // ZeroTier's root pings come every 5 s
    let start = std::time::Instant::now();
    in_parallel(state.machines.iter(), |m| {
        await_cond(
            &m.name,
            "zerotier ONLINE with the network OK",
            limit,
            || {
                let info = state
                    .exec_in(&m.name, &["zerotier-cli", "-j", "info"])
                    .map_err(|e| e.to_string())?;
                let nets = state
                    .exec_in(&m.name, &["zerotier-cli", "-j", "listnetworks"])
                    .map_err(|e| e.to_string())?;
                let online = serde_json::from_str::<serde_json::Value>(&info)
                    .ok()
                    .and_then(|v| v["online"].as_bool())
                    == Some(true);
                let ok = serde_json::from_str::<serde_json::Value>(&nets)
                    .ok()
                    .and_then(|v| {
                        v.as_array()?
                            .iter()
                            .find(|n| n["id"] == zt.network_id.as_str())
                            .map(|n| {
                                n["status"] == "OK"
                                    && n["assignedAddresses"].as_array().is_some_and(|a| {
                                        a.iter().any(|x| {
                                            x.as_str().is_some_and(|s| {
                                                s.starts_with(&format!("{}/", m.zt_ip))
                                            })
                                        })
                                    })
                            })
                    })
                    == Some(true);
                if online && ok {
                    Ok(true)
                } else {
                    Err(format!(
                        "online {online}, network OK with {}: {ok}",
                        m.zt_ip
                    ))
                }
            },
        )?;
        tracing::debug!(machine = %m.name, elapsed = ?start.elapsed(), "zerotier online, network OK");
        // Every peer pinged at once each round: a peer whose path is still being set up costs
        // one ping timeout per round, not one per peer.
        let mut left: Vec<&crate::state::LabMachine> =
            state.machines.iter().filter(|o| o.name != m.name).collect();
        await_cond(&m.name, "zerotier routes to every peer", limit, || {
            let ok: Vec<bool> = std::thread::scope(|sc| {
                let hs: Vec<_> = left
                    .iter()
                    .map(|o| {
                        sc.spawn(move || {
                            state
                                .exec_in(&m.name, &["ping", "-6", "-c", "1", "-W", "1", &o.zt_ip])
                                .is_ok()
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap_or(false)).collect()
            });
            let mut i = 0;
            left.retain(|_| {
                i += 1;
                !ok[i - 1]
            });
            tracing::debug!(machine = %m.name, elapsed = ?start.elapsed(), left = left.len(), "zerotier ping round");
            if left.is_empty() {
                Ok(true)
            } else {
                Err(format!(
                    "no reply yet from {}",
                    left.iter()
                        .map(|o| o.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        })?;
        Ok(())
    })
}

/// The zerotier vars in the lab repo (shared, current layout): identity secrets (placeholders
/// with recipients), each machine's ip, the network id.
pub(crate) fn write_repo_vars(state: &LabState, zt: &ZtLab, shared: &Path) -> Result<(), LabError> {
    write(
        &shared.join(format!("zerotier-network-{INSTANCE}/network-id/value")),
        &zt.network_id,
        0o644,
    )?;
    for m in &state.machines {
        crate::repo::secret(
            &shared.join(format!("zerotier-identity-{}/identity-secret", m.name)),
            &[m.name.as_str()],
        )?;
        write(
            &shared.join(format!("zerotier-ip-{}-{INSTANCE}/ip/value", m.name)),
            &m.zt_ip,
            0o644,
        )?;
    }
    Ok(())
}
