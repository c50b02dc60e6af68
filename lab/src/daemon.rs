//! The lab machines' processes: the anchor holding each machine's UTS and mount namespaces, and
//! the daemons (sshd, yggdrasil) started into them and tracked by pid, as systemd units would be.

use crate::binds::binds;
use crate::error::LabError;
use crate::files::write;
use crate::process::{
    alive, await_cond, comm, kill, listening_sockets, signal_and_await, spawn_detached, tail, READY,
};
use crate::shim;
use crate::state::LabState;

/// Starts machine `m`'s anchor: its hostname and private mounts, held open while it sleeps.
pub(crate) fn start_anchor(state: &mut LabState, m: &str) -> Result<(), LabError> {
    let md = state.mdir(m);
    let argv: Vec<String> = [
        "ip",
        "netns",
        "exec",
        &state.ns(m),
        "unshare",
        "--uts",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        shim::ANCHOR,
        "anchor",
        m,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(
        binds(state, m)
            .into_iter()
            .flat_map(|(src, target)| [src.display().to_string(), target.to_string()]),
    )
    .collect();
    let log = md.join("log/anchor.log");
    let pid = spawn_detached(&argv, &log)?;
    state.pids.insert(format!("{m}/anchor"), pid);
    state.save()?; // a crash from here on leaves a pid `lab up`/`lab down` can find
    await_cond(m, "namespace anchor", READY, || {
        if !alive(pid) {
            return Err(format!("anchor exited: {}", tail(&log, 5)));
        }
        Ok(comm(pid) == "sleep")
    })
}

/// Starts a lab daemon (`sshd` or `yggdrasil`) inside machine `m` and waits until it serves.
pub(crate) fn start_daemon(state: &mut LabState, m: &str, which: &str) -> Result<(), LabError> {
    let anchor = state.anchor(m)?.to_string();
    let md = state.mdir(m);
    let (unit, prog): (&str, Vec<&str>) = match which {
        "sshd" => (
            "sshd.service",
            vec!["/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/sshd_config"],
        ),
        _ => (
            "yggdrasil.service",
            vec![
                "/usr/sbin/yggdrasil",
                "-useconffile",
                "/run/yggdrasil/yggdrasil.conf",
                "-logto",
                "stdout",
            ],
        ),
    };
    let mut argv: Vec<String> = ["nsenter", "-t", &anchor, "-n", "-u", "-m", "--"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.extend(prog.iter().map(|s| s.to_string()));
    let log = md.join(format!("log/{which}.log"));
    let ready_file = match which {
        "sshd" => md.join("run/sshd.pid"),
        _ => md.join("run/yggdrasil/yggdrasil.sock"),
    };
    let _ = std::fs::remove_file(&ready_file);
    let pid = spawn_detached(&argv, &log)?;
    state.pids.insert(format!("{m}/{which}"), pid);
    state.save()?;
    let _ = std::fs::remove_file(md.join(format!("run/lab/units/{unit}.stopped")));
    write(
        &md.join(format!("run/lab/units/{unit}.pid")),
        &format!("{pid}\n"),
        0o644,
    )?;
    await_cond(m, which, READY, || {
        if !alive(pid) {
            return Err(format!("{which} exited: {}", tail(&log, 5)));
        }
        Ok(ready_file.exists())
    })
}

/// Makes machine `m`'s sshd reload its configuration, keys and certificate; waits until it has.
///
/// SIGHUP makes sshd close its listening sockets and re-execute itself, which loads the keys and
/// certificate again before it listens. The wait is on that condition, not on a log line: every
/// socket sshd listens on is new (none held before the signal) and there are as many as before.
/// The sockets are read before the signal, so a fast sshd cannot finish before the wait looks.
pub(crate) fn reload_sshd(state: &LabState, m: &str) -> Result<(), LabError> {
    let Some(p) = state.tracked(&format!("{m}/sshd")) else {
        return Ok(());
    };
    let log = state.mdir(m).join("log/sshd.log");
    signal_and_await(
        m,
        "sshd reload",
        READY,
        || listening_sockets(p),
        || kill(p, "-HUP"),
        |before, now| {
            if !now.is_empty() && now.is_disjoint(before) && now.len() >= before.len() {
                return Ok(true);
            }
            Err(format!(
                "sshd pid {p} listens on socket(s) {now:?}, on {before:?} before SIGHUP \
                 (want {} new); log tail: {}",
                before.len().max(1),
                tail(&log, 3)
            ))
        },
    )
}
