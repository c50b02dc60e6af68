//! Real faults brought into a running lab (a daemon stopped, a link cut, a foreign certificate,
//! drifted or revoked vars, a slow link, SSH sessions cut) and `heal`, which undoes them all from
//! the lab's keys: the lab's failing fleet, so each criterion can be seen to fail for its cause.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use crate::deploy::write_machine_files;
use crate::error::LabError;
use crate::files::{io, mkdir, write};
use crate::lifecycle::await_mesh;
use crate::machine::{self, reload_sshd, systemctl, unit_state};
use crate::process::{
    alive, await_cond, comm, descendants, ip, kill, signal_and_await, spawn_detached, stop, READY,
};
use crate::state::{LabMachine, LabState, StateLock};
use crate::statedir;
use crate::{binds, keys};

/// A fault `lab fault` can bring in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// `systemctl stop` of the overlay's unit (`yggdrasil.service`, `zerotierone.service`).
    OverlayDown,
    /// The machine's underlay link down.
    LinkDown,
    /// `systemctl stop sshd.service`.
    SshdDown,
    /// sshd serves a certificate signed by a CA the clan does not trust.
    ForeignCert,
    /// The shared root password hash differs on the machine.
    SharedVarDrift,
    /// The machine's root key removed from every peer's authorized keys.
    UserKeyRevoked,
    /// The machine's underlay wire delayed in user space, 150 ms each way (both overlays).
    SlowLink,
    /// One-shot: every sshd process of the machine killed (as by the OOM killer); systemd
    /// restarts the listener.
    SessionsCut,
    /// The overlay daemon's deployed configuration broken (as by a bad deploy): its unit fails
    /// for real (systemd restarts it until its start limit, then `failed`, `Result=exit-code`).
    OverlayFail,
    /// ZeroTier lab: the controller deauthorises the machine (its member `authorized: false`
    /// through the controller's local API, as an operator's `zerotier-cli`/API call would).
    ZtDeauthorize,
    /// ZeroTier lab: the machine's identity regenerated (`clan vars generate`) and deployed, its
    /// daemon not restarted: it runs the old identity while the vars name a new node id and ip.
    ZtIdentityDrift,
    /// ZeroTier lab: the network recreated (a new network id from clan's generator, the vars and
    /// the controller moved to it, the controller redeployed); the peers are left on the old one.
    ZtNetworkRecreated,
    /// One-shot: the overlay daemon killed (SIGKILL, as by a crash); systemd logs the failure
    /// in the journal and restarts it (`Restart=always`, as NixOS's unit has).
    OverlayCrash,
}

impl Fault {
    /// Every fault, in the order `lab fault --help` names them.
    pub const ALL: [Fault; 13] = [
        Fault::OverlayDown,
        Fault::LinkDown,
        Fault::SshdDown,
        Fault::ForeignCert,
        Fault::SharedVarDrift,
        Fault::UserKeyRevoked,
        Fault::SlowLink,
        Fault::OverlayFail,
        Fault::SessionsCut,
        Fault::OverlayCrash,
        Fault::ZtDeauthorize,
        Fault::ZtIdentityDrift,
        Fault::ZtNetworkRecreated,
    ];

    /// The kind's name on the command line and in `lab.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::OverlayDown => "overlay-down",
            Fault::LinkDown => "link-down",
            Fault::SshdDown => "sshd-down",
            Fault::ForeignCert => "foreign-cert",
            Fault::SharedVarDrift => "shared-var-drift",
            Fault::UserKeyRevoked => "user-key-revoked",
            Fault::SlowLink => "slow-link",
            Fault::SessionsCut => "sessions-cut",
            Fault::OverlayCrash => "overlay-crash",
            Fault::OverlayFail => "overlay-fail",
            Fault::ZtDeauthorize => "zt-deauthorize",
            Fault::ZtIdentityDrift => "zt-identity-drift",
            Fault::ZtNetworkRecreated => "zt-network-recreated",
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Fault {
    type Err = LabError;

    /// Parses a kind; an unknown one is an error naming the valid kinds.
    fn from_str(s: &str) -> Result<Fault, LabError> {
        Fault::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                LabError::Invalid(format!(
                    "unknown fault {s:?}; kinds: {}",
                    Fault::ALL.map(Fault::as_str).join(", ")
                ))
            })
    }
}

/// Delay the `slow-link` relay adds to every round trip with the machine: half of it each way.
pub const SLOW_LINK_DELAY: Duration = Duration::from_millis(300);

/// Brings a real fault into machine `m`.
pub fn fault(dir: &Path, m: &str, kind: Fault) -> Result<(), LabError> {
    let _lock = StateLock::take(dir)?;
    let mut state = LabState::require(dir)?;
    let mach = state.machine(m)?.clone();
    let md = state.mdir(m);
    match kind {
        Fault::OverlayDown => {
            systemctl(&state, m, "stop", &[machine::overlay_unit(&state)])?;
        }
        Fault::SshdDown => {
            systemctl(&state, m, "stop", &["sshd.service"])?;
        }
        Fault::LinkDown => {
            underlay_link(&state, &mach, false)?;
        }
        Fault::SessionsCut => {
            // What the OOM killer or a crash does to SSH: every sshd process of the machine
            // dies, established sessions with it; systemd restarts the listener
            // (Restart=on-failure). A one-shot event: nothing stays broken, nothing to heal.
            let init = state.init(m)?;
            let victims: Vec<u32> = descendants(init)
                .into_iter()
                .filter(|p| comm(*p) == "sshd")
                .collect();
            signal_and_await(
                m,
                "sshd.service restarted by systemd",
                READY,
                || unit_state(&state, m, "sshd.service").map_or(0, |(_, pid)| pid),
                || victims.iter().for_each(|v| kill(*v, "-KILL")),
                |before, now| {
                    let left: Vec<&u32> = victims.iter().filter(|v| alive(**v)).collect();
                    if left.is_empty() && *now != 0 && now != before {
                        Ok(true)
                    } else {
                        Err(format!(
                            "sshd.service MainPID {now} (was {before}); killed sshd processes still alive: {left:?}"
                        ))
                    }
                },
            )?;
            return machine::await_served_cert(&state, m);
        }
        Fault::OverlayFail if state.zerotier.is_some() => {
            return Err(LabError::Invalid(format!(
                "{kind} is a yggdrasil lab fault (the ZeroTier lab has overlay-down, overlay-crash, zt-deauthorize, link-down, slow-link)"
            )));
        }
        Fault::ZtDeauthorize => zt_deauthorize(&state, m)?,
        Fault::ZtNetworkRecreated => match &state.zerotier {
            Some(zt) => crate::zerotier::faults::network_recreated(&state, zt)?,
            None => {
                return Err(LabError::Invalid(
                    "zt-network-recreated is a ZeroTier lab fault (lab up --overlay zerotier)"
                        .into(),
                ))
            }
        },
        Fault::ZtIdentityDrift => match &state.zerotier {
            Some(zt) => crate::zerotier::faults::identity_drift(&state, zt, m)?,
            None => {
                return Err(LabError::Invalid(
                    "zt-identity-drift is a ZeroTier lab fault (lab up --overlay zerotier)".into(),
                ))
            }
        },
        Fault::OverlayFail => {
            write(
                &md.join("etc-yggdrasil/yggdrasil.conf"),
                "{ this is not a yggdrasil configuration\n",
                0o600,
            )?;
            systemctl(&state, m, "restart", &["yggdrasil.service"])?;
            await_cond(m, "yggdrasil.service failed", READY, || {
                let (active, _) =
                    unit_state(&state, m, "yggdrasil.service").map_err(|e| e.to_string())?;
                if active == "failed" {
                    Ok(true)
                } else {
                    Err(format!("ActiveState={active}"))
                }
            })?;
        }
        Fault::OverlayCrash => {
            let unit = machine::overlay_unit(&state);
            signal_and_await(
                m,
                "the overlay daemon restarted by systemd",
                READY,
                || unit_state(&state, m, unit).map_or(0, |(_, pid)| pid),
                || {
                    let _ = systemctl(&state, m, "kill", &["--signal=SIGKILL", unit]);
                },
                |before, now| {
                    if *now != 0 && now != before {
                        Ok(true)
                    } else {
                        Err(format!("{unit} MainPID {now} (was {before})"))
                    }
                },
            )?;
            return machine::await_overlay_daemon(&state, m);
        }
        Fault::ForeignCert => {
            let tmp = md.join("keys/foreign");
            mkdir(&tmp)?;
            std::fs::copy(md.join("keys/host.pub"), tmp.join("host.pub"))
                .map_err(|e| io(&tmp, e))?;
            let cert = keys::sign_host(
                &state.dir.join("foreign-ca/ca"),
                &tmp.join("host.pub"),
                m,
                &format!("{m}.{}", state.domain),
            )?;
            let text = std::fs::read_to_string(&cert).map_err(|e| io(&cert, e))?;
            crate::deploy::set_served_cert(&state, m, &text)?;
            reload_sshd(&state, m)?;
        }
        Fault::SharedVarDrift => {
            write(
                &md.join("run/secrets-for-users/vars/shared/user-password-root/user-password-hash"),
                "$6$driftedsalt$a-different-lab-test-hash",
                0o600,
            )?;
        }
        Fault::UserKeyRevoked => {
            let key = std::fs::read_to_string(md.join("keys/root.pub")).map_err(|e| io(&md, e))?;
            for o in state.machines.iter().filter(|o| o.name != m) {
                let p = state.mdir(&o.name).join("etc-ssh/authorized_keys.d/root");
                let t = std::fs::read_to_string(&p).map_err(|e| io(&p, e))?;
                write(&p, &t.replace(&key, ""), 0o644)?;
            }
        }
        Fault::SlowLink => slow_link(&mut state, m)?,
    }
    let f = state.faults.entry(m.to_string()).or_default();
    if !f.iter().any(|x| x == kind.as_str()) {
        f.push(kind.to_string());
    }
    state.save()
}

/// The ZeroTier controller's local API call that deauthorises machine `m`'s member; what clan's
/// `zerotier-members allow` does with `true`.
const DEAUTHORIZE: &str = r#"import http.client, sys
nwid, member = sys.argv[1], sys.argv[2]
token = open("/var/lib/zerotier-one/authtoken.secret").read()
c = http.client.HTTPConnection("localhost", 9993)
c.request("POST", f"/controller/network/{nwid}/member/{member}", '{"authorized": false}', {"X-ZT1-AUTH": token})
r = c.getresponse()
print(r.status, r.reason)
sys.exit(0 if r.status == 200 else 1)
"#;

fn zt_deauthorize(state: &LabState, m: &str) -> Result<(), LabError> {
    let Some(zt) = &state.zerotier else {
        return Err(LabError::Invalid(
            "zt-deauthorize is a ZeroTier lab fault (lab up --overlay zerotier)".into(),
        ));
    };
    let controller = &state.machines[0].name;
    if controller == m {
        return Err(LabError::Invalid(format!(
            "{m} is the controller: deauthorise a peer"
        )));
    }
    let node = state.machine(m)?.zt_node.clone();
    let controller_ip = state.machines[0].zt_ip.clone();
    // Returns once the revocation is in effect: m's pings to the controller get no reply (the
    // controller tells the member at once; ZeroTier's listnetworks on m still says OK).
    signal_and_await(
        m,
        "deauthorisation in effect",
        READY,
        || (),
        || {
            let _ = state.exec_in(
                controller,
                &["python3", "-c", DEAUTHORIZE, &zt.network_id, &node],
            );
        },
        |_, _| {
            let reached = state
                .exec_in(m, &["ping", "-6", "-c", "1", "-W", "1", &controller_ip])
                .is_ok();
            if reached {
                Err(format!(
                    "{m} still reaches the controller at {controller_ip}"
                ))
            } else {
                Ok(true)
            }
        },
    )
}

/// Sets a machine's underlay link (its port on the underlay bridge) up or down.
fn underlay_link(state: &LabState, m: &LabMachine, up: bool) -> Result<(), LabError> {
    let port = m.underlay_port();
    ip(&[
        "-n",
        &state.ns_net(),
        "link",
        "set",
        &port,
        if up { "up" } else { "down" },
    ])
    .map(|_| ())
}

/// `slow-link`: machine `m`'s underlay port leaves the lab's bridge and a TAP device takes its
/// place; the relay ([`crate::relay`]) carries the frames between them, each held
/// [`SLOW_LINK_DELAY`]/2 in each direction. Nothing in the machine changes (ZeroTier's sockets are
/// bound to its underlay interface; yggdrasil keeps its peerings). Waits until the relay holds
/// the device, then until the mesh has formed again (bounded).
fn slow_link(state: &mut LabState, m: &str) -> Result<(), LabError> {
    let exe = state.relay_exe();
    statedir::check_file(&exe)?;
    let net = state.ns_net();
    let me = state.machine(m)?.clone();
    let (port, tap) = (me.underlay_port(), crate::relay::tap_name(me.index));
    if ip(&["-n", &net, "link", "show", "dev", &tap]).is_ok() {
        return Err(LabError::Invalid(format!(
            "{m} already has a slow link ({tap} in {net}): `lab heal {m}` first"
        )));
    }
    ip(&["-n", &net, "tuntap", "add", "dev", &tap, "mode", "tap"])?;
    let argv: Vec<String> = vec![
        "nsenter".into(),
        format!("--net=/run/netns/{net}"),
        "--".into(),
        exe.display().to_string(),
        "lab".into(),
        "relay".into(),
        "--port".into(),
        port.clone(),
        "--tap".into(),
        tap.clone(),
        "--delay-ms".into(),
        (SLOW_LINK_DELAY.as_millis() / 2).to_string(),
    ];
    let pid = spawn_detached(&argv, &state.mdir(m).join("log/relay.log"))?;
    state.pids.insert(format!("{m}/relay"), pid);
    state.save()?;
    // A TAP device has a carrier only while a process holds it.
    ip(&["-n", &net, "link", "set", &tap, "up"])?;
    await_cond(m, "the slow-link relay on its device", READY, || {
        if !alive(pid) {
            return Err(format!(
                "the relay (pid {pid}) exited: see {m}'s log/relay.log"
            ));
        }
        let out = ip(&["-n", &net, "link", "show", "dev", &tap]).map_err(|e| e.to_string())?;
        Ok(!out.contains("NO-CARRIER"))
    })?;
    ip(&["-n", &net, "link", "set", &port, "nomaster"])?;
    let joined = ip(&["-n", &net, "link", "set", &tap, "master", "br1"]).and_then(|_| {
        if alive(pid) {
            Ok(())
        } else {
            Err(LabError::Invalid(format!(
                "the slow-link relay of {m} (pid {pid}) exited: see its log/relay.log"
            )))
        }
    });
    if let Err(e) = joined {
        // Never leave the machine off the bridge: its port goes back.
        ip(&["-n", &net, "link", "set", &port, "master", "br1"])?;
        return Err(e);
    }
    await_mesh(state)
}

/// Ends machine `m`'s slow-link, whether one ran or not: its relay stopped, the TAP device
/// removed, its underlay port back in the bridge.
fn end_slow_link(state: &mut LabState, m: &str) -> Result<(), LabError> {
    let key = format!("{m}/relay");
    if let Some(p) = state.pids.get(&key).copied() {
        if state.check_pid(&key, p).is_ok() {
            stop(p)?;
        }
        state.pids.remove(&key);
    }
    let net = state.ns_net();
    let me = state.machine(m)?;
    let tap = crate::relay::tap_name(me.index);
    if ip(&["-n", &net, "link", "show", "dev", &tap]).is_ok() {
        ip(&["-n", &net, "link", "del", "dev", &tap])?;
    }
    let port = me.underlay_port();
    ip(&["-n", &net, "link", "set", &port, "master", "br1"]).map(|_| ())
}

/// Undoes every fault on `m` (or on all machines): files rewritten from the lab's keys, links up,
/// relays ended, stopped units started (a failed one reset first), sshd reloaded, a machine whose
/// binds no longer hold rebooted; then waits for the mesh.
pub fn heal(dir: &Path, only: Option<&str>) -> Result<(), LabError> {
    let _lock = StateLock::take(dir)?;
    let mut state = LabState::require(dir)?;
    let names: Vec<String> = match only {
        Some(m) => vec![state.machine(m)?.name.clone()],
        None => state.machines.iter().map(|m| m.name.clone()).collect(),
    };
    // Authorized keys live on the peers: rewrite every machine's files (and the repo's
    // zerotier vars, which identity drift changed).
    for i in 0..state.machines.len() {
        let m = state.machines[i].clone();
        write_machine_files(&state, &m)?;
        if let Some(zt) = &state.zerotier {
            crate::zerotier::write_machine_files(&state, zt, &m.name)?;
        }
    }
    if let Some(zt) = &state.zerotier {
        crate::zerotier::write_repo_vars(&state, zt, &state.dir.join("clan/vars/shared"))?;
        if crate::zerotier::faults::forget_other_networks(&state, zt)? {
            // The controller served another network: back to the lab's, as deployed.
            let controller = state.machines[0].name.clone();
            let autoaccept = format!("zerotier-autoaccept-{}.service", crate::zerotier::INSTANCE);
            systemctl(&state, &controller, "daemon-reload", &[])?;
            systemctl(
                &state,
                &controller,
                "restart",
                &["zerotierone.service", &autoaccept],
            )?;
        }
    }
    let detached = binds::detached(&state);
    for name in &names {
        let mach = state.machine(name)?.clone();
        underlay_link(&state, &mach, true)?;
        if detached.iter().any(|d| &d.machine == name) {
            machine::reboot(&mut state, name)?;
        }
        end_slow_link(&mut state, name)?;
        let units = ["sshd.service", machine::overlay_unit(&state)];
        systemctl(&state, name, "reset-failed", &units)?;
        systemctl(&state, name, "start", &units)?;
        reload_sshd(&state, name)?;
        let deauthorized = state
            .faults
            .get(name)
            .is_some_and(|f| f.iter().any(|k| k == Fault::ZtDeauthorize.as_str()));
        if deauthorized {
            // clan's auto-accept unit allows every member again.
            let controller = state.machines[0].name.clone();
            let unit = format!("zerotier-autoaccept-{}.service", crate::zerotier::INSTANCE);
            systemctl(&state, &controller, "restart", &[&unit])?;
        }
        state.faults.remove(name);
    }
    state.save()?;
    binds::require_bound(&state)?;
    await_mesh(&state)
}
