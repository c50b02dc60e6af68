//! Host processes the lab runs and tracks: host tools run to completion, daemons started
//! detached, bounded waits. Which pids are still the lab's own is [`crate::state`]'s to say.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::LabError;

/// How long a daemon or condition may take to become ready.
pub(crate) const READY: Duration = Duration::from_secs(15);
/// How often bounded waits look again.
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// Runs a host tool to completion: its output, or an error if it cannot start.
fn output<S: AsRef<OsStr>>(prog: &str, args: &[S]) -> Result<std::process::Output, LabError> {
    Command::new(prog)
        .args(args)
        .output()
        .map_err(|e| LabError::Tool {
            tool: prog.into(),
            reason: format!("cannot start: {e}"),
        })
}

/// Runs a host tool; Ok(stdout) or an error carrying its stderr.
pub(crate) fn run<S: AsRef<OsStr>>(prog: &str, args: &[S]) -> Result<String, LabError> {
    let out = output(prog, args)?;
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

/// Runs a host tool to completion whatever its exit status: (stdout, stderr). For tools that
/// answer with a word and a status both (`systemctl is-system-running` says `starting` and exits 1).
pub(crate) fn run_any<S: AsRef<OsStr>>(
    prog: &str,
    args: &[S],
) -> Result<(String, String), LabError> {
    let out = output(prog, args)?;
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    ))
}

/// Runs `ip` on the host.
pub(crate) fn ip(args: &[&str]) -> Result<String, LabError> {
    run("ip", args)
}

/// Starts `argv` detached (own session, reparented to init), output appended to `log`; its pid.
/// The daemon gets no other descriptor of this process's: one inherited from the caller (a
/// `flock` on a lock file, a jobserver pipe) would otherwise stay open as long as the lab runs.
pub(crate) fn spawn_detached(argv: &[String], log: &Path) -> Result<u32, LabError> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        r#"log="$1"; shift; setsid "$@" >>"$log" 2>&1 </dev/null & echo $!"#,
        "sh",
    ])
    .arg(log)
    .args(argv);
    // SAFETY: the hook runs between fork and exec and only makes async-signal-safe system
    // calls (close_range, fcntl); it allocates nothing and takes no lock.
    unsafe { cmd.pre_exec(close_on_exec_from_3) };
    let out = cmd.output().map_err(|e| LabError::Tool {
        tool: "sh".into(),
        reason: format!("cannot start the launcher: {e}"),
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().map_err(|_| LabError::Tool {
        tool: argv.join(" "),
        reason: format!(
            "no pid from launcher: {text:?} ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    })
}

/// Marks every descriptor from 3 up close-on-exec (in a forked child, before exec).
fn close_on_exec_from_3() -> std::io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with the CLOEXEC flag only sets flags on this process's descriptors.
    let r = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if r != 0 {
        // Kernels before 5.11: one fcntl per possible descriptor (EBADF for closed ones).
        for fd in 3..4096 {
            // SAFETY: F_SETFD on any number is harmless; closed descriptors just fail.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
    Ok(())
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

/// Sends an event (`signal`) and waits, bounded, until its effect shows. Race-free: the baseline is
/// observed before the signal, so an effect that lands before the wait starts (a fast daemon on
/// a loaded host) is still seen. `done(before, now)` says whether the effect shows, or why not.
pub(crate) fn signal_and_await<T>(
    machine: &str,
    what: &str,
    limit: Duration,
    observe: impl Fn() -> T,
    signal: impl FnOnce(),
    done: impl Fn(&T, &T) -> Result<bool, String>,
) -> Result<(), LabError> {
    let before = observe();
    signal();
    await_cond(machine, what, limit, || done(&before, &observe()))
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

/// Ends `pid` with TERM and waits (bounded) until it is gone.
pub(crate) fn stop(pid: u32) -> Result<(), LabError> {
    kill(pid, "-TERM");
    await_cond("lab", &format!("process {pid} to end"), READY, || {
        Ok(!alive(pid))
    })
}

/// Runs a long host tool (a build, debootstrap) in `cwd`, its output appended to `log` after a
/// header line, calling `tick` with the time so far every 30 s while it runs; an error carries
/// its exit status and the log's last lines.
pub(crate) fn run_logged(
    prog: &str,
    args: &[&str],
    cwd: Option<&Path>,
    log: &Path,
    tick: &mut dyn FnMut(Duration),
) -> Result<(), LabError> {
    use std::io::Write as _;
    let io = |e| crate::files::io(log, e);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io)?;
    let _ = writeln!(f, "\n== clan-coord lab: {prog} {}", args.join(" "));
    let err = f.try_clone().map_err(io)?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(f)
        .stderr(err);
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().map_err(|e| LabError::Tool {
        tool: prog.into(),
        reason: format!("cannot start: {e}"),
    })?;
    let (started, mut last) = (Instant::now(), Instant::now());
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| LabError::Tool {
            tool: prog.into(),
            reason: e.to_string(),
        })? {
            break s;
        }
        if last.elapsed() >= Duration::from_secs(30) {
            last = Instant::now();
            tick(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if status.success() {
        Ok(())
    } else {
        Err(LabError::Tool {
            tool: format!("{prog} {}", args.join(" ")),
            reason: format!(
                "{status}; last lines of {}: {}",
                log.display(),
                tail(log, 4)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A daemon that reacts to its signal at once: its log line is written before the wait
    /// starts. A wait that takes its baseline after signalling never sees the line appear.
    #[test]
    fn an_effect_that_lands_before_the_wait_starts_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sshd.log");
        std::fs::write(&log, "Server listening on 0.0.0.0 port 22.\n").unwrap();
        let count = || {
            std::fs::read_to_string(&log)
                .unwrap()
                .matches("Server listening")
                .count()
        };
        let fast_daemon = || {
            let mut t = std::fs::read_to_string(&log).unwrap();
            t.push_str("Received SIGHUP; restarting.\nServer listening on 0.0.0.0 port 22.\n");
            std::fs::write(&log, t).unwrap();
        };
        signal_and_await(
            "m",
            "reload",
            Duration::from_millis(300),
            count,
            fast_daemon,
            |before, now| {
                if now > before {
                    Ok(true)
                } else {
                    Err(format!("{now} line(s), {before} before the signal"))
                }
            },
        )
        .unwrap();
    }

    #[test]
    fn daemons_inherit_no_descriptor_but_their_log() {
        let dir = tempfile::tempdir().unwrap();
        let held = dir.path().join("held.lock");
        let f = std::fs::File::create(&held).unwrap();
        // As a caller's inherited descriptor is: open across exec (no close-on-exec).
        // SAFETY: dup of an fd we own; the copy is closed below.
        let fd = unsafe { libc::dup(std::os::fd::AsRawFd::as_raw_fd(&f)) };
        assert!(fd > 2);
        let pid = spawn_detached(
            &["sleep".to_string(), "30".to_string()],
            &dir.path().join("log"),
        )
        .unwrap();
        let open: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .collect();
        kill(pid, "-KILL");
        // SAFETY: closes the dup made above.
        unsafe { libc::close(fd) };
        assert!(
            !open.contains(&held),
            "the daemon holds {}: {open:?}",
            held.display()
        );
    }

    #[test]
    fn a_missed_effect_is_an_error_with_what_was_seen() {
        let e = signal_and_await(
            "m",
            "reload",
            Duration::from_millis(50),
            || 1,
            || {},
            |b, n| Err(format!("saw {n}, {b} before")),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("m: reload not ready") && e.contains("saw 1, 1 before"),
            "{e}"
        );
    }
}
