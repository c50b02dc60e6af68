//! The lab's lifecycle: bring it up (keys, namespaces, files, daemons, then wait for the mesh),
//! report its status, and take it down, including namespaces a crashed lab left behind.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::deploy::{current_system, switch_to, write_closure, write_machine_files};
use crate::error::LabError;
use crate::files::{io, mkdir, write};
use crate::host::{free_subnets, inotify, is_root, unsupported};
use crate::install::install_missing;
use crate::machine::{self, await_overlay_daemon};
use crate::process::{alive, await_cond, in_parallel, ip, kill, run, POLL, READY};
use crate::state::{machine_names, valid_prefix, LabMachine, LabState};
use crate::statedir;
use crate::{binds, keys, repo, rootfs};

/// Options of `lab up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Number of machines (2..=16).
    pub machines: usize,
    /// State directory (created with mode 0700; see [`crate::statedir`]).
    pub dir: PathBuf,
    /// Namespace prefix (default `clab`).
    pub prefix: String,
    /// Install missing Debian packages with apt-get.
    pub install: bool,
    /// The clan-coord binary (for the `slow-link` relay and the rebuild command); None = this
    /// process's executable. The lab keeps its own link or copy of it in its state directory.
    pub exe: Option<PathBuf>,
    /// Where the machines' root file system is cached ([`rootfs::DEFAULT_CACHE`]).
    pub cache: PathBuf,
    /// The overlay: `yggdrasil` or `zerotier`.
    pub overlay: String,
    /// ZeroTier's vendored source (ZeroTier lab), built once into the cache.
    pub zerotier_src: PathBuf,
    /// clan-core's vendored source (ZeroTier lab: clan's zerotier tools).
    pub clan_core_src: PathBuf,
}

/// Brings the lab up (cleaning a previous one in the same directory first) and returns its state.
/// Notices for the operator (packages being installed, leftovers removed, a host directory
/// created) go to `notice` as they happen: the library never prints.
pub fn up(opts: &UpOptions, notice: &mut dyn FnMut(&str)) -> Result<LabState, LabError> {
    let start = Instant::now();
    if !(2..=16).contains(&opts.machines) {
        return Err(LabError::Invalid(format!(
            "--machines {} is out of range: the lab has 2 to 16 machines",
            opts.machines
        )));
    }
    if !valid_prefix(&opts.prefix) {
        return Err(LabError::Invalid(format!(
            "prefix {:?}: use up to 8 lowercase letters/digits",
            opts.prefix
        )));
    }
    if opts.install && is_root() {
        install_missing(notice)?;
    }
    if let Some(why) = unsupported() {
        return Err(LabError::Unsupported { reason: why });
    }
    down_with(&opts.dir, notice)?;
    reap_orphans(&opts.prefix, notice)?;
    if !["yggdrasil", "zerotier"].contains(&opts.overlay.as_str()) {
        return Err(LabError::Invalid(format!(
            "--overlay {:?}: the lab runs yggdrasil or zerotier",
            opts.overlay
        )));
    }
    let rootfs = rootfs::ensure(&opts.cache, notice)?;
    let flake_inputs = crate::flake::prepare(&opts.cache, &opts.clan_core_src, notice)?;
    let zerotier = if opts.overlay == "zerotier" {
        let z = crate::zerotier::install::ensure(&opts.cache, &opts.zerotier_src, notice)?;
        let tools = crate::zerotier::clan_tools(&opts.cache, &opts.clan_core_src)?;
        Some(crate::zerotier::ZtLab {
            network_id: String::new(),
            bin: z.bin,
            tools,
        })
    } else {
        None
    };
    // Host safety: the lab's subnets must overlap nothing of the host's.
    let (mgmt_net, underlay_net) = free_subnets()?;
    let dir = statedir::create(&opts.dir)?;
    // A fresh fleet: no machine keeps files, keys or generations from a previous lab here.
    for sub in ["machines", "clan"] {
        let p = dir.join(sub);
        if p.exists() {
            std::fs::remove_dir_all(&p).map_err(|e| io(&p, e))?;
        }
    }
    let host_octets = |n: Ipv4Addr, i: usize| {
        let o = n.octets();
        Ipv4Addr::new(o[0], o[1], o[2], 10 + i as u8)
    };
    let mut state = LabState {
        dir: dir.clone(),
        prefix: opts.prefix.clone(),
        domain: "clan".into(),
        mgmt_net,
        underlay_net,
        machines: machine_names(opts.machines)
            .into_iter()
            .enumerate()
            .map(|(i, name)| LabMachine {
                name,
                index: i,
                mgmt_ip: host_octets(mgmt_net, i),
                // A /24 of its own inside the underlay (see net::UNDERLAY_LEN).
                underlay_ip: {
                    let o = underlay_net.octets();
                    Ipv4Addr::new(o[0], o[1], o[2] + i as u8, 10)
                },
                ygg_address: String::new(),
                ygg_key: String::new(),
                zt_node: String::new(),
                zt_ip: String::new(),
            })
            .collect(),
        pids: BTreeMap::new(),
        faults: BTreeMap::new(),
        rootfs,
        overlay: opts.overlay.clone(),
        zerotier: None,
        inotify_restore: None,
    };
    state.save()?;
    state.inotify_restore = inotify::make_room(opts.machines, notice)?;
    state.save()?;
    let exe = match &opts.exe {
        Some(e) => e.clone(),
        None => std::env::current_exe().map_err(|e| io(Path::new("/proc/self/exe"), e))?,
    };
    statedir::install_exe(&exe, &state.relay_exe())?;
    make_keys(&mut state)?;
    if let Some(mut zt) = zerotier {
        crate::zerotier::generate_vars(&mut state, &mut zt)?;
        crate::zerotier::write_shared_bin(&state)?;
        state.zerotier = Some(zt);
        state.save()?;
    }
    tracing::info!(elapsed = ?start.elapsed(), "lab keys");
    make_network(&state)?;
    tracing::info!(elapsed = ?start.elapsed(), "lab network");
    repo::write_repo(&state)?;
    // The lab's clan is a flake; clan-core evaluates its inventory, and that serialization is
    // inventory-serialization.json the repo holds (what a replay of a recording reads). Not
    // inventory.json: clan-core reads that file of a clan's root as inventory input.
    let clan = state.dir.join("clan");
    write(
        &clan.join("flake.nix"),
        &crate::flake::flake_nix(&state, &flake_inputs),
        0o644,
    )?;
    let (inventory, took) = crate::flake::eval(&clan, crate::flake::INVENTORY_ATTR)?;
    let pretty = serde_json::from_str::<serde_json::Value>(&inventory)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .map_err(|e| {
            LabError::Invalid(format!(
                "clan-core's inventory serialization is not JSON: {e}"
            ))
        })?;
    write(
        &clan.join(crate::flake::SERIALIZATION),
        &(pretty + "\n"),
        0o644,
    )?;
    tracing::info!(elapsed = ?start.elapsed(), nix_eval = ?took, "clan-core evaluated the lab's inventory");
    for i in 0..state.machines.len() {
        let m = state.machines[i].clone();
        write_machine_files(&state, &m)?;
        if let Some(zt) = &state.zerotier {
            crate::zerotier::write_machine_files(&state, zt, &m.name)?;
        }
        let path = write_closure(&state, &m, &current_system(&state, &m)?)?;
        switch_to(&state, &m.name, 1, &path)?;
    }
    write(&state.machines_file(), &repo::machines_toml(&state), 0o644)?;
    // Each machine mounts its own /nix; the host needs no mountpoint: nspawn makes it in the
    // machine's overlay.
    machine::boot_all(&mut state, notice)?;
    tracing::info!(elapsed = ?start.elapsed(), "lab machines booted");
    await_mesh(&state)?;
    binds::require_bound(&state)?;
    tracing::info!(elapsed = ?start.elapsed(), "lab up");
    Ok(state)
}

fn make_keys(state: &mut LabState) -> Result<(), LabError> {
    let d = state.dir.clone();
    mkdir(&d.join("ca"))?;
    keys::ed25519(&d.join("ca/ca"), "clan-coord lab CA (test key)")?;
    mkdir(&d.join("foreign-ca"))?;
    keys::ed25519(&d.join("foreign-ca/ca"), "a foreign CA (test key)")?;
    mkdir(&d.join("workstation"))?;
    keys::ed25519(
        &d.join("workstation/id_ed25519"),
        "lab workstation (test key)",
    )?;
    let domain = state.domain.clone();
    in_parallel(state.machines.iter_mut(), |m| {
        let k = d.join("machines").join(&m.name).join("keys");
        mkdir(&k)?;
        let host_pub = keys::ed25519(&k.join("host"), &m.name)?;
        keys::sign_host(
            &d.join("ca/ca"),
            &host_pub,
            &m.name,
            &format!("{}.{domain}", m.name),
        )?;
        keys::ed25519(&k.join("root"), &format!("root@{}", m.name))?;
        let conf = run("yggdrasil", &["-genconf", "-json"])?;
        write(&k.join("yggdrasil.json"), &conf, 0o600)?;
        let conf_path = k.join("yggdrasil.json");
        let p = conf_path.display().to_string();
        m.ygg_address = run("yggdrasil", &["-useconffile", &p, "-address"])?
            .trim()
            .to_string();
        let v: serde_json::Value = serde_json::from_str(&conf)
            .map_err(|e| LabError::Invalid(format!("yggdrasil -genconf: {e}")))?;
        m.ygg_key = v["PublicKey"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        Ok(())
    })?;
    state.save()
}

fn make_network(state: &LabState) -> Result<(), LabError> {
    for ns in state.namespaces() {
        ip(&["netns", "add", &ns])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
    }
    let (ws, netns) = (state.ns_ws(), state.ns_net());
    let gw = {
        let o = state.mgmt_net.octets();
        format!("{}.{}.{}.1/24", o[0], o[1], o[2])
    };
    ip(&["-n", &ws, "link", "add", "br0", "type", "bridge"])?;
    ip(&["-n", &ws, "addr", "add", &gw, "dev", "br0"])?;
    ip(&["-n", &ws, "link", "set", "br0", "up"])?;
    ip(&["-n", &netns, "link", "add", "br1", "type", "bridge"])?;
    ip(&["-n", &netns, "link", "set", "br1", "up"])?;
    for m in &state.machines {
        let ns = state.ns(&m.name);
        let (mp, up) = (format!("m{}", m.index), m.underlay_port());
        // Both ends are created directly in their namespaces: nothing appears in the host's.
        ip(&[
            "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &mp, "netns", &ws,
        ])?;
        ip(&[
            "link", "add", "eth1", "netns", &ns, "type", "veth", "peer", "name", &up, "netns",
            &netns,
        ])?;
        ip(&["-n", &ws, "link", "set", &mp, "master", "br0", "up"])?;
        ip(&["-n", &netns, "link", "set", &up, "master", "br1", "up"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/24", m.mgmt_ip),
            "dev",
            "eth0",
        ])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/{}", m.underlay_ip, crate::net::UNDERLAY_LEN),
            "dev",
            "eth1",
        ])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns, "link", "set", "eth1", "up"])?;
    }
    Ok(())
}
/// Waits until the lab's overlay connects every machine with every other (either overlay).
pub(crate) fn await_mesh(state: &LabState) -> Result<(), LabError> {
    match &state.zerotier {
        Some(zt) => crate::zerotier::await_ready(state, zt),
        None => await_ready(state),
    }
}

/// Waits until every machine peers with every other over yggdrasil and reaches it by ping.
pub(crate) fn await_ready(state: &LabState) -> Result<(), LabError> {
    let n = state.machines.len();
    in_parallel(state.machines.iter(), |m| {
        await_overlay_daemon(state, &m.name)?;
        await_cond(&m.name, "yggdrasil peerings", READY, || {
            let out = state
                .exec_in(&m.name, &["yggdrasilctl", "-json", "getPeers"])
                .map_err(|e| e.to_string())?;
            Ok(peer_count(&out)? >= n - 1)
        })?;
        for o in state.machines.iter().filter(|o| o.name != m.name) {
            await_cond(
                &m.name,
                &format!("overlay route to {}", o.name),
                READY,
                || {
                    Ok(state
                        .exec_in(
                            &m.name,
                            &["ping", "-6", "-c", "1", "-W", "1", &o.ygg_address],
                        )
                        .is_ok())
                },
            )?;
        }
        Ok(())
    })
}
/// The number of connected peers in `yggdrasilctl -json getPeers` output. yggdrasilctl exits 0
/// even when it cannot reach the daemon; its "Fatal error" line is the signal. (The harness's
/// full parser lives in its probes; the lab only needs the count and must not depend on them.)
fn peer_count(text: &str) -> Result<usize, String> {
    let excerpt: String = text
        .trim()
        .chars()
        .take(120)
        .collect::<String>()
        .replace('\n', "⏎");
    let problem =
        |what: String| format!("yggdrasilctl getPeers: {what} (output starts: {excerpt:?})");
    if let Some(line) = text.lines().find(|l| l.contains("Fatal error")) {
        return Err(problem(line.to_string()));
    }
    let body = text.find('{').map_or(text, |i| &text[i..]);
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| problem(format!("not getPeers JSON: {e}")))?;
    v["peers"]
        .as_array()
        .map(Vec::len)
        .ok_or_else(|| problem("not getPeers JSON: no peers list".into()))
}

/// Stops the lab in `dir`: ends only its tracked processes, deletes only its namespaces. A
/// directory without a lab is fine (idempotent). Pids that are not the lab's are left alone,
/// with a warning in the log; [`down_with`] says so to the operator.
pub fn down(dir: &Path) -> Result<bool, LabError> {
    down_with(dir, &mut |n| tracing::warn!("{n}"))
}

/// [`down`], saying through `notice` which tracked pids it leaves alone and why.
pub fn down_with(dir: &Path, notice: &mut dyn FnMut(&str)) -> Result<bool, LabError> {
    let Some(state) = LabState::load(dir)? else {
        return Ok(false);
    };
    // Relays and machines together: SIGTERM (nspawn powers its machine off cleanly), then
    // KILL after a bounded wait.
    let mut pids: Vec<u32> = Vec::new();
    for (k, p) in &state.pids {
        match state.check_pid(k, *p) {
            Ok(()) => pids.push(*p),
            Err(why) if alive(*p) => notice(&format!(
                "lab down: not signalling pid {p} (tracked as {k}): {why}"
            )),
            Err(_) => {}
        }
    }
    // Re-checked before KILL inside: a pid that ended during the wait is not signalled again.
    machine::poweroff(&pids, |p| {
        state
            .pids
            .iter()
            .any(|(k, v)| *v == p && state.check_pid(k, p).is_ok())
    });
    for m in &state.machines {
        machine::clean_up(&state.ns(&m.name));
    }
    for ns in state.namespaces() {
        if Path::new("/run/netns").join(&ns).exists() {
            ip(&["netns", "del", &ns])?;
        }
    }
    if let Some(n) = state.inotify_restore {
        inotify::restore(n, notice)?;
    }
    let _ = std::fs::remove_file(dir.join("lab.json"));
    Ok(true)
}

/// Removes namespaces a crashed lab with this prefix left behind without a state file (its
/// directory gone): the processes inside them are the lab's own (`ip netns pids`), so they are
/// ended, then the namespaces deleted. Names outside the lab's scheme are never touched.
fn reap_orphans(prefix: &str, notice: &mut dyn FnMut(&str)) -> Result<(), LabError> {
    let mut names = vec![format!("{prefix}-ws"), format!("{prefix}-net")];
    names.extend(machine_names(16).iter().map(|m| format!("{prefix}-{m}")));
    for ns in names {
        if !Path::new("/run/netns").join(&ns).exists() {
            continue;
        }
        notice(&format!(
            "lab: removing namespace {ns} left by a crashed lab"
        ));
        let pids: Vec<u32> = ip(&["netns", "pids", &ns])?
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        for p in &pids {
            kill(*p, "-KILL");
        }
        let start = Instant::now();
        while pids.iter().any(|p| alive(*p)) && start.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(POLL);
        }
        ip(&["netns", "del", &ns])?;
        machine::clean_up(&ns);
    }
    Ok(())
}

/// One line per machine: processes and addresses; then a line for each bind that no longer
/// holds ([`binds::detached`]).
pub fn status(dir: &Path) -> Result<String, LabError> {
    let Some(state) = LabState::load(dir)? else {
        return Ok(format!("no lab in {}", dir.display()));
    };
    let mut s = format!(
        "lab in {} ({} machines; machines file {})\n",
        state.dir.display(),
        state.machines.len(),
        state.machines_file().display()
    );
    for m in &state.machines {
        let key = format!("{}/machine", m.name);
        let machine = match (state.pids.get(&key), state.tracked(&key)) {
            (_, Some(p)) => {
                // systemd's own words: the system state and each unit's ActiveState.
                let word = |argv: &[&str]| match state.exec_in(&m.name, argv) {
                    Ok(w) => w.trim().replace('\n', " "),
                    Err(LabError::Tool { reason, .. }) => reason.trim().replace('\n', " "),
                    Err(e) => e.to_string(),
                };
                let overlay = if state.zerotier.is_some() {
                    "zerotierone.service"
                } else {
                    "yggdrasil.service"
                };
                format!(
                    "machine {p} ({}), sshd.service {}, {overlay} {}",
                    word(&["systemctl", "is-system-running"]),
                    word(&["systemctl", "is-active", "sshd.service"]),
                    word(&["systemctl", "is-active", overlay]),
                )
            }
            (Some(_), None) => "machine DOWN".to_string(),
            (None, _) => "machine -".to_string(),
        };
        s.push_str(&format!(
            "  {:<11} mgmt {:<15} {} {:<40} {machine}{}\n",
            m.name,
            m.mgmt_ip,
            if state.zerotier.is_some() {
                "zt "
            } else {
                "ygg"
            },
            if state.zerotier.is_some() {
                &m.zt_ip
            } else {
                &m.ygg_address
            },
            state
                .faults
                .get(&m.name)
                .map(|f| format!("  faults: {}", f.join(", ")))
                .unwrap_or_default()
        ));
    }
    for d in binds::detached(&state) {
        s.push_str(&format!("  {d}\n"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_short_clan_names() {
        for ok in ["clab", "clabt", "a", "ab-1", "12345678"] {
            assert!(valid_prefix(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "Clab", "c_lab", "123456789", "c.l"] {
            assert!(!valid_prefix(bad), "{bad}");
        }
    }

    #[test]
    fn peers_are_counted_and_a_fatal_error_is_an_error() {
        let two = r#"{"peers":[{"address":"200::1","key":"ab"},{"address":"200::2","key":"cd"}]}"#;
        assert_eq!(peer_count(two), Ok(2));
        assert_eq!(peer_count("log line\n{\"peers\":[]}"), Ok(0));
        let e = peer_count("2026/11/26 Fatal error: dial unix /run/yggdrasil/yggdrasil.sock: connect: no such file or directory\n").unwrap_err();
        assert!(e.contains("Fatal error"), "{e}");
        assert!(peer_count("garbage").is_err());
    }
}
