//! A lab machine is a container booted by real systemd: `systemd-nspawn --boot` of the shared
//! root file system ([`crate::rootfs`]) under a volatile overlay, in the machine's network
//! namespace, with its private files bound in ([`crate::binds`]). Its daemons are real units;
//! the lab reaches inside with `nsenter` into the container's init, as `machinectl shell` would.
//!
//! Each nspawn runs in its own cgroup (`clan-coord-lab/<namespace>` in each cgroup hierarchy the
//! host has): with `--keep-unit`, nspawn makes `payload/` and `supervisor/` in its caller's
//! cgroup, and a second machine would collide. `--register=no` (no machined on the host), so
//! nothing outside the lab's cgroups, namespaces and nspawn's own `/run/systemd/nspawn` is made,
//! and `lab down` removes those.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::binds::binds;
use crate::error::LabError;
use crate::process::{alive, await_cond, descendants, kill, run, spawn_detached, tail, POLL};
use crate::state::LabState;

/// How long a machine may take to boot (`systemctl is-system-running` says running); a loaded
/// host boots 8 machines in parallel in a few seconds.
pub(crate) const BOOT: Duration = Duration::from_secs(60);
/// How long a machine may take to power off after SIGTERM before it is killed.
pub(crate) const POWEROFF: Duration = Duration::from_secs(10);

/// The cgroup directories of the machine in namespace `ns`, one per hierarchy the host mounts.
pub(crate) fn cgroups(ns: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let roots: Vec<PathBuf> = if base.join("cgroup.procs").exists() {
        vec![base.to_path_buf()] // the unified hierarchy alone
    } else {
        ["systemd", "unified"]
            .iter()
            .map(|h| base.join(h))
            .filter(|p| p.join("cgroup.procs").exists())
            .collect()
    };
    roots
        .into_iter()
        .map(|r| r.join("clan-coord-lab").join(ns))
        .collect()
}

/// Starts machine `m`'s container; returns once nspawn runs (see [`await_booted`]).
pub(crate) fn boot(state: &mut LabState, m: &str, rootfs: &Path) -> Result<(), LabError> {
    let ns = state.ns(m);
    let netns = format!("/run/netns/{ns}");
    let mut argv: Vec<String> = vec![
        // Into the machine's network namespace first (where the lab expects its pid), then into
        // its own cgroups, then nspawn.
        "nsenter".into(),
        format!("--net={netns}"),
        "--".into(),
        "sh".into(),
        "-c".into(),
        r#"while [ "$1" != -- ]; do echo $$ > "$1" || exit 1; shift; done; shift; exec "$@""#
            .into(),
        "boot".into(),
    ];
    for cg in cgroups(&ns) {
        std::fs::create_dir_all(&cg).map_err(|e| crate::files::io(&cg, e))?;
        argv.push(cg.join("cgroup.procs").display().to_string());
    }
    argv.push("--".into());
    argv.extend(
        [
            "systemd-nspawn",
            "--quiet",
            "--directory",
            &rootfs.display().to_string(),
            "--machine",
            &ns,
            "--hostname",
            m,
            "--boot",
            "--register=no",
            "--keep-unit",
            "--volatile=overlay",
            "--link-journal=no",
            "--resolv-conf=off",
            "--timezone=off",
            "--console=passive",
            &format!("--network-namespace-path={netns}"),
            "--capability=CAP_NET_ADMIN",
            "--bind=/dev/net/tun",
        ]
        .map(String::from),
    );
    for (src, target) in binds(state, m) {
        argv.push(format!("--bind={}:{target}", src.display()));
    }
    if let Some(zt) = &state.zerotier {
        for (src, target) in crate::zerotier::binds(state, zt, m) {
            let ro = if target.starts_with("/usr/") {
                "-ro"
            } else {
                ""
            };
            argv.push(format!("--bind{ro}={}:{target}", src.display()));
        }
    }
    let log = state.mdir(m).join("log/console.log");
    let pid = spawn_detached(&argv, &log)?;
    state.pids.insert(format!("{m}/machine"), pid);
    state.save() // a crash from here on leaves a pid `lab up`/`lab down` can find
}

/// The host pid of the container's init (pid 1 inside), below nspawn `pid`.
pub(crate) fn init_of(pid: u32) -> Option<u32> {
    descendants(pid).into_iter().find(|p| {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| l.strip_prefix("NSpid:")).map(|v| {
                    let ids: Vec<&str> = v.split_whitespace().collect();
                    ids.len() >= 2 && ids.last() == Some(&"1")
                })
            })
            .unwrap_or(false)
    })
}

/// Runs `argv` inside machine `m` (all its namespaces, as its root).
pub(crate) fn exec(state: &LabState, m: &str, argv: &[&str]) -> Result<String, LabError> {
    run("nsenter", &nsenter_args(state, m, argv)?)
}

/// [`exec`] whatever the exit status: (stdout, stderr).
fn exec_any(state: &LabState, m: &str, argv: &[&str]) -> Result<(String, String), LabError> {
    crate::process::run_any("nsenter", &nsenter_args(state, m, argv)?)
}

/// `nsenter` arguments that run `argv` in every namespace of machine `m`'s init.
fn nsenter_args(state: &LabState, m: &str, argv: &[&str]) -> Result<Vec<String>, LabError> {
    let mut args: Vec<String> = [
        "-t".to_string(),
        state.init(m)?.to_string(),
        "-a".into(),
        "--".into(),
    ]
    .to_vec();
    args.extend(argv.iter().map(|a| a.to_string()));
    Ok(args)
}

/// `systemctl <verb> <units>` inside machine `m`.
pub(crate) fn systemctl(
    state: &LabState,
    m: &str,
    verb: &str,
    units: &[&str],
) -> Result<String, LabError> {
    let mut argv = vec!["systemctl", verb];
    argv.extend(units);
    exec(state, m, &argv)
}

/// A unit's `ActiveState` and `MainPID` (container pid) inside machine `m`.
pub(crate) fn unit_state(state: &LabState, m: &str, unit: &str) -> Result<(String, u32), LabError> {
    let out = exec(
        state,
        m,
        &["systemctl", "show", "-p", "ActiveState,MainPID", unit],
    )?;
    let get = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_default()
            .to_string()
    };
    Ok((get("ActiveState"), get("MainPID").parse().unwrap_or(0)))
}

/// What [`await_booted`] calls a boot that is still not done after [`BOOT`].
const STALLED: &str = "boot (systemctl is-system-running)";

/// Boots every machine and waits until each runs. A machine whose boot stalls (systemd still not
/// running after [`BOOT`]) is powered off and booted once more, saying what it waited on: seen
/// once in CI (`is-system-running` said nothing else for 60 s), never in 90 boots here, idle or
/// loaded. A machine that fails (degraded, nspawn gone) is an error at once.
pub(crate) fn boot_all(state: &mut LabState, notice: &mut dyn FnMut(&str)) -> Result<(), LabError> {
    let rootfs = state.rootfs.clone();
    let names: Vec<String> = state.machines.iter().map(|m| m.name.clone()).collect();
    for n in &names {
        boot(state, n, &rootfs)?;
    }
    let results: Vec<(String, Result<(), LabError>)> = std::thread::scope(|s| {
        let st = &*state;
        let handles: Vec<_> = names
            .iter()
            .map(|n| (n.clone(), s.spawn(move || await_booted(st, n))))
            .collect();
        handles
            .into_iter()
            .map(|(n, h)| {
                let r = h.join().unwrap_or_else(|_| {
                    Err(LabError::Invalid("lab worker thread panicked".into()))
                });
                (n, r)
            })
            .collect()
    });
    for (n, r) in results {
        match r {
            Err(e @ LabError::NotReady { .. }) if e.to_string().contains(STALLED) => {
                tracing::warn!(machine = %n, error = %e, "boot stalled; booting once more");
                notice(&format!("lab: {e}; booting {n} once more"));
                reboot(state, &n)?;
            }
            r => r?,
        }
    }
    Ok(())
}

/// Waits until machine `m` has booted: `systemctl is-system-running` says `running`. A machine
/// that comes up `degraded` is an error naming its failed units and their journal.
pub(crate) fn await_booted(state: &LabState, m: &str) -> Result<(), LabError> {
    let key = format!("{m}/machine");
    let pid = *state
        .pids
        .get(&key)
        .ok_or_else(|| LabError::Invalid(format!("machine {m} was not started")))?;
    let log = state.mdir(m).join("log/console.log");
    let mut degraded = None;
    let mut exited = None;
    let waited = await_cond(m, STALLED, BOOT, || {
        if !alive(pid) {
            exited = Some(tail(&log, 5));
            return Ok(true);
        }
        // Until the launcher has joined the machine's namespace and become nspawn, and nspawn
        // has started the machine's init, there is nothing to ask.
        if state.check_pid(&key, pid).is_err() || init_of(pid).is_none() {
            return Ok(false);
        }
        // is-system-running exits non-zero unless running: read its word either way.
        let (word, err) =
            exec_any(state, m, &["systemctl", "is-system-running"]).map_err(|e| e.to_string())?;
        match word.trim() {
            "running" => Ok(true),
            "degraded" => {
                degraded = Some(());
                Ok(true)
            }
            w => Err(format!("systemctl is-system-running: {w:?} {err}")
                .trim()
                .to_string()),
        }
    })
    .map_err(|e| match e {
        // Still starting: say which jobs it waits on, and what the console showed.
        LabError::NotReady {
            machine,
            what,
            waited,
            detail,
        } => {
            let jobs = exec_any(
                state,
                m,
                &["systemctl", "list-jobs", "--no-legend", "--plain"],
            )
            .map(|(o, _)| o.lines().map(str::trim).collect::<Vec<_>>().join("; "))
            .unwrap_or_default();
            LabError::NotReady {
                machine,
                what,
                waited,
                detail: format!("{detail}; jobs: [{jobs}]; console: {}", tail(&log, 5)),
            }
        }
        e => e,
    });
    if let Some(console) = exited {
        return Err(LabError::NotReady {
            machine: m.into(),
            what: "boot".into(),
            waited: Duration::ZERO,
            detail: format!("systemd-nspawn exited: {console}"),
        });
    }
    waited?;
    if degraded.is_some() {
        let failed = exec(
            state,
            m,
            &["systemctl", "--failed", "--no-legend", "--plain"],
        )
        .unwrap_or_default();
        let journal = exec(
            state,
            m,
            &[
                "journalctl",
                "-b",
                "-p",
                "err",
                "--no-pager",
                "-n",
                "5",
                "-o",
                "cat",
            ],
        )
        .unwrap_or_default();
        return Err(LabError::NotReady {
            machine: m.into(),
            what: "boot".into(),
            waited: Duration::ZERO,
            detail: format!(
                "systemd says degraded; failed units: {}; last errors: {}",
                failed.trim().replace('\n', "; "),
                journal.trim().replace('\n', " ⏎ ")
            ),
        });
    }
    Ok(())
}

/// Powers the given nspawn pids off (SIGTERM makes nspawn shut the container down cleanly), in
/// parallel, waits (bounded), then kills what is left and is still `ours` (a pid that ended
/// during the wait may have been reused).
pub(crate) fn poweroff(pids: &[u32], ours: impl Fn(u32) -> bool) {
    for p in pids {
        kill(*p, "-TERM");
    }
    let start = Instant::now();
    while pids.iter().any(|p| alive(*p)) && start.elapsed() < POWEROFF {
        std::thread::sleep(POLL);
    }
    for p in pids.iter().filter(|p| ours(**p)) {
        kill(*p, "-KILL");
    }
}

/// Removes what nspawn leaves on the host once the machine in namespace `ns` is off: its
/// cgroups (deepest first) and its entries under `/run/systemd/nspawn` (that directory too once
/// empty).
pub(crate) fn clean_up(ns: &str) {
    for cg in cgroups(ns) {
        remove_cgroup(&cg);
        if let Some(parent) = cg.parent() {
            let _ = std::fs::remove_dir(parent); // only when no other lab's machine is in it
        }
    }
    let nspawn = Path::new("/run/systemd/nspawn");
    let _ = std::fs::remove_dir(nspawn.join("propagate").join(ns));
    for d in ["propagate", "locks"] {
        let _ = std::fs::remove_dir(nspawn.join(d));
    }
    let _ = std::fs::remove_dir(nspawn);
}

fn remove_cgroup(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Waits until machine `m`'s sshd serves the host certificate its sshd_config names (after a reload
/// or restart), probing as the workstation does with `ssh-keyscan` (a bare TCP connect makes
/// sshd log an error).
pub(crate) fn await_served_cert(state: &LabState, m: &str) -> Result<(), LabError> {
    let cert_file = crate::deploy::served_cert_file(state, m)?;
    let want = std::fs::read_to_string(&cert_file)
        .map_err(|e| crate::files::io(&cert_file, e))?
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let ip = state.machine(m)?.mgmt_ip.to_string();
    let ws = state.ns_ws();
    await_cond(
        m,
        "sshd serving its certificate",
        crate::process::READY,
        || {
            let out = run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &ws,
                    "ssh-keyscan",
                    "-c",
                    "-t",
                    "ed25519",
                    "-T",
                    "2",
                    &ip,
                ],
            )
            .map_err(|e| e.to_string())?;
            // `-c` prints `<cert type> <blob>` per certificate (no host column).
            let served: Vec<&str> = out
                .lines()
                .filter_map(|l| {
                    let mut w = l.split_whitespace();
                    w.position(|x| x.ends_with("-cert-v01@openssh.com"))?;
                    w.next()
                })
                .collect();
            if served.contains(&want.as_str()) {
                Ok(true)
            } else {
                Err(format!(
                    "ssh-keyscan -c saw {} certificate(s), not the one in {}",
                    served.len(),
                    cert_file.display()
                ))
            }
        },
    )
}

/// The unit of the lab's overlay daemon, named as on NixOS.
pub(crate) fn overlay_unit(state: &LabState) -> &'static str {
    if state.zerotier.is_some() {
        "zerotierone.service"
    } else {
        "yggdrasil.service"
    }
}

/// Waits until machine `m`'s overlay daemon answers: yggdrasil on its admin socket, ZeroTier on
/// its local API (`zerotier-cli -j info`).
pub(crate) fn await_overlay_daemon(state: &LabState, m: &str) -> Result<(), LabError> {
    if state.zerotier.is_some() {
        return await_cond(
            m,
            "zerotierone.service answering",
            crate::process::READY,
            || {
                let out =
                    exec(state, m, &["zerotier-cli", "-j", "info"]).map_err(|e| e.to_string())?;
                Ok(out.contains("\"address\""))
            },
        );
    }
    await_cond(
        m,
        "yggdrasil.service answering",
        crate::process::READY,
        || {
            let out =
                exec(state, m, &["yggdrasilctl", "-json", "getSelf"]).map_err(|e| e.to_string())?;
            if out.contains("Fatal error") || !out.contains('{') {
                return Err(format!("yggdrasilctl getSelf: {}", out.trim()));
            }
            Ok(true)
        },
    )
}

/// `systemctl restart` of the overlay's unit on machine `m`, then waits until it answers.
pub(crate) fn restart_overlay(state: &LabState, m: &str) -> Result<(), LabError> {
    systemctl(state, m, "restart", &[overlay_unit(state)])?;
    await_overlay_daemon(state, m)
}

/// `systemctl reload sshd.service` (SIGHUP: sshd re-executes and loads its keys and certificate
/// again) on machine `m`; waits until it serves the certificate in its `/etc/ssh`.
pub(crate) fn reload_sshd(state: &LabState, m: &str) -> Result<(), LabError> {
    systemctl(state, m, "reload", &["sshd.service"])?;
    await_served_cert(state, m)
}

/// Reboots machine `m` (power off, boot again from the lab's root file system, wait until it
/// runs): what binds its directories again.
pub(crate) fn reboot(state: &mut LabState, m: &str) -> Result<(), LabError> {
    let key = format!("{m}/machine");
    if let Some(pid) = state.tracked(&key) {
        poweroff(&[pid], |p| state.check_pid(&key, p).is_ok());
    }
    clean_up(&state.ns(m));
    let rootfs = state.rootfs.clone();
    boot(state, m, &rootfs)?;
    await_booted(state, m)
}
