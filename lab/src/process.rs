//! Host processes the lab runs and tracks: host tools run to completion, daemons started
//! detached, bounded waits, and the checks that keep the lab from signalling a pid that is no
//! longer its own.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::LabError;

/// How long a daemon or condition may take to become ready.
pub(crate) const READY: Duration = Duration::from_secs(15);
/// How often bounded waits look again.
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// Runs a host tool; Ok(stdout) or an error carrying its stderr.
pub(crate) fn run<S: AsRef<OsStr>>(prog: &str, args: &[S]) -> Result<String, LabError> {
    let out = Command::new(prog)
        .args(args)
        .output()
        .map_err(|e| LabError::Tool {
            tool: prog.into(),
            reason: format!("cannot start: {e}"),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let argv: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        Err(LabError::Tool {
            tool: format!("{prog} {}", argv.join(" ")),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Runs `ip` on the host.
pub(crate) fn ip(args: &[&str]) -> Result<String, LabError> {
    run("ip", args)
}

/// Starts `argv` detached (own session, reparented to init), output appended to `log`; its pid.
pub(crate) fn spawn_detached(argv: &[String], log: &Path) -> Result<u32, LabError> {
    let mut args: Vec<String> = vec![
        "-c".into(),
        r#"log="$1"; shift; setsid "$@" >>"$log" 2>&1 </dev/null & echo $!"#.into(),
        "sh".into(),
        log.display().to_string(),
    ];
    args.extend(argv.iter().cloned());
    let out = run("sh", &args)?;
    out.trim().parse().map_err(|_| LabError::Tool {
        tool: argv.join(" "),
        reason: format!("no pid from launcher: {out:?}"),
    })
}

/// A process that exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

/// The process's program name (`/proc/<pid>/comm`), empty when it is gone.
pub(crate) fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Waits (bounded, polling) until `cond` holds.
pub(crate) fn await_cond(
    machine: &str,
    what: &str,
    limit: Duration,
    mut cond: impl FnMut() -> Result<bool, String>,
) -> Result<(), LabError> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        match cond() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = e,
        }
        if start.elapsed() > limit {
            return Err(LabError::NotReady {
                machine: machine.into(),
                what: what.into(),
                waited: start.elapsed(),
                detail: last,
            });
        }
        std::thread::sleep(POLL);
    }
}

/// The last `n` lines of a log, on one line: the detail of a daemon that did not come up.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let t = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = t.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" ⏎ ")
}
/// Runs `f` on every item on its own thread; the first error wins, a panic becomes an error.
pub(crate) fn in_parallel<T: Send>(
    items: impl IntoIterator<Item = T>,
    f: impl Fn(T) -> Result<(), LabError> + Sync,
) -> Result<(), LabError> {
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = items.into_iter().map(|x| s.spawn(move || f(x))).collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(LabError::Invalid("lab worker thread panicked".into())))
        })
    })
}
/// Every process below `pid` (children, their children, ...), from /proc.
pub(crate) fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let child: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid = stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()?;
            Some((child, ppid))
        })
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for &(c, pp) in &parents {
            if pp == p && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

/// Sends `sig` (e.g. `-TERM`) to `pid` if it is still alive.
pub(crate) fn kill(pid: u32, sig: &str) {
    if alive(pid) {
        let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
    }
}

/// The program a tracked role runs, so that a pid reused by another process after a crash is
/// never signalled.
fn expected_comm(role_key: &str) -> &'static str {
    match role_key.rsplit('/').next() {
        Some("anchor") => "sleep",
        Some("sshd") => "sshd",
        Some(r) if r.starts_with("relay-") => "clan-coord",
        _ => "yggdrasil",
    }
}

/// Whether `pid` is still the process tracked as `key`: never signal a reused pid.
pub(crate) fn ours(key: &str, pid: u32) -> bool {
    let c = comm(pid);
    // `comm` is the program until exec completes; a freshly started one may still show the launcher.
    alive(pid)
        && (c == expected_comm(key)
            || c == "nsenter"
            || c == "setsid"
            || c == "ip"
            || c == "unshare")
}
/// Ends `pid` with TERM and waits (bounded) until it is gone.
pub(crate) fn stop(pid: u32) -> Result<(), LabError> {
    kill(pid, "-TERM");
    await_cond("lab", &format!("process {pid} to end"), READY, || {
        Ok(!alive(pid))
    })
}
