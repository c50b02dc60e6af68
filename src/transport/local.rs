//! Workstation-side commands (e.g. `nix eval` of the inventory, the rebuilds), with the same
//! deadline rules. Each runs in its own process group, so a deadline kills everything it
//! started (a rebuild's nix and ssh), not just the shell; what a command leaves running when it
//! ends (a backgrounded helper holding its pipes) is killed with its group, so reading its output
//! cannot hang; Ctrl-C still reaches the group (`groups`).

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::groups;
use super::outcome::{self, Ended, OUTPUT_CAP};
use super::{Cmd, Output, Transport};
use crate::error::TransportError;

/// Runs commands on the machine the harness runs on, through `sh -c`.
pub struct Workstation {
    /// Default deadline.
    pub timeout: Duration,
}

/// Reads a pipe to its end, keeping the first [`OUTPUT_CAP`] bytes: the rest is read and
/// dropped, so the writer never blocks on a full pipe. True if anything was dropped.
fn drain(pipe: Option<impl Read>) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let Some(pipe) = pipe else {
        return (kept, false);
    };
    let mut pipe = pipe;
    let _ = pipe.by_ref().take(OUTPUT_CAP as u64).read_to_end(&mut kept);
    let dropped = std::io::copy(&mut pipe, &mut std::io::sink()).unwrap_or(0);
    (kept, dropped > 0)
}

/// Kills the child's whole process group (it leads one: `process_group(0)`), then reaps it and
/// returns how it ended.
fn kill_group(child: &mut Child) -> Option<ExitStatus> {
    if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: killpg only sends a signal; `pgid` is our child's pid, which leads its own
        // group and is not reaped yet (we wait below), so the id cannot have been reused.
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
    }
    let _ = child.kill();
    child.wait().ok()
}

/// True once the child has ended, without reaping it: while it is a zombie its pid, the id of
/// its group, cannot be reused, so what it left running in the group can still be killed.
fn has_ended(child: &Child) -> std::io::Result<bool> {
    let pid = libc::id_t::from(child.id());
    // SAFETY: waitid writes into `info`, a zeroed siginfo_t we own; WNOWAIT leaves the child
    // unreaped, WNOHANG returns at once (si_pid stays 0 while it runs).
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        if libc::waitid(libc::P_PID, pid, &mut info, flags) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(info.si_pid() != 0)
    }
}

/// How a local command ended: a signal is no exit, whether the kernel says so or the `sh -c`
/// around the command reports it as 128+n.
fn ended(status: ExitStatus) -> Ended {
    match (status.code(), status.signal()) {
        (Some(x), _) => outcome::from_sh_status(x),
        (None, Some(sig)) => Ended::Signal(outcome::signal_name(sig)),
        (None, None) => Ended::Unknown(format!("{status}")),
    }
}

impl Transport for Workstation {
    fn name(&self) -> &str {
        "workstation"
    }

    fn run(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        let deadline = cmd.deadline().unwrap_or(self.timeout);
        let start = Instant::now();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(cmd.text())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| TransportError::Local {
                command: cmd.text().into(),
                reason: e.to_string(),
            })?;
        let _registered = libc::pid_t::try_from(child.id()).ok().map(groups::register);
        let out_pipe = child.stdout.take();
        let err_pipe = child.stderr.take();
        let out_t = std::thread::spawn(move || drain(out_pipe));
        let err_t = std::thread::spawn(move || drain(err_pipe));
        loop {
            match has_ended(&child) {
                Ok(true) => {
                    // The leader is done: whatever it left in its group goes with it (kill_group
                    // reaps the leader), so the pipes close and the reads below end.
                    let status = kill_group(&mut child);
                    let (stdout, out_cut) = out_t.join().unwrap_or_default();
                    let (stderr, err_cut) = err_t.join().unwrap_or_default();
                    let ended = match status {
                        Some(status) => ended(status),
                        None => Ended::Unknown("the command could not be reaped".into()),
                    };
                    let mut stderr = String::from_utf8_lossy(&stderr).into_owned();
                    if let Some(note) = ended.note() {
                        outcome::add_note(&mut stderr, &note);
                    }
                    for (stream, cut) in [("stdout", out_cut), ("stderr", err_cut)] {
                        if cut {
                            outcome::add_note(&mut stderr, &outcome::truncated_note(stream));
                        }
                    }
                    return Ok(Output {
                        stdout: String::from_utf8_lossy(&stdout).into_owned(),
                        stderr,
                        exit: ended.exit(),
                        duration: start.elapsed(),
                    });
                }
                Ok(false) if start.elapsed() >= deadline => {
                    kill_group(&mut child);
                    return Err(TransportError::Timeout {
                        machine: "workstation".into(),
                        command: cmd.text().into(),
                        waited: start.elapsed(),
                    });
                }
                Ok(false) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => {
                    kill_group(&mut child);
                    return Err(TransportError::Local {
                        command: cmd.text().into(),
                        reason: e.to_string(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws() -> Workstation {
        Workstation {
            timeout: Duration::from_secs(20),
        }
    }

    #[test]
    fn a_signal_is_no_exit_and_says_which() {
        let o = ws().run(&Cmd::sh("kill -9 $$")).unwrap();
        assert_eq!(o.exit, None);
        assert!(
            o.stderr.contains("killed by signal SIGKILL"),
            "{}",
            o.stderr
        );
        assert!(!o.success());
        let o = ws().run(&Cmd::sh("exit 3")).unwrap();
        assert_eq!((o.exit, o.stderr.as_str()), (Some(3), ""));
    }

    #[test]
    fn output_is_decoded_lossily_and_capped() {
        let o = ws()
            .run(&Cmd::sh("printf 'a\\377b'; printf 'c\\376' >&2"))
            .unwrap();
        assert_eq!(
            (o.stdout.as_str(), o.stderr.as_str()),
            ("a\u{fffd}b", "c\u{fffd}")
        );
        // 20 MiB: the first 16 are kept, the rest read and dropped (the writer finishes).
        let o = ws().run(&Cmd::sh("head -c 20971520 /dev/zero")).unwrap();
        assert_eq!((o.stdout.len(), o.exit), (OUTPUT_CAP, Some(0)));
        assert!(
            o.stderr.contains("stdout truncated at 16 MiB"),
            "{}",
            o.stderr
        );
    }

    /// Alive, not a zombie waiting for init to reap it.
    fn alive(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                let state = s
                    .rsplit_once(')')
                    .map(|(_, r)| r.trim_start())
                    .unwrap_or("");
                !state.starts_with('Z') && !state.starts_with('X')
            })
            .unwrap_or(false)
    }

    #[test]
    fn a_timed_out_rebuild_leaves_no_process_behind() {
        // A rebuild's shape: the shell starts nix, nix starts ssh; here two `sleep`s.
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let cmd = Cmd::sh("echo $$ >\"$1\"; sleep 1000 & echo $! >>\"$1\"; sleep 1000; wait")
            .arg(pids.display().to_string())
            .timeout(Duration::from_millis(500));
        let err = ws().run(&cmd).unwrap_err();
        assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
        let text = std::fs::read_to_string(&pids).unwrap();
        let ids: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(ids.len(), 2, "{text}");
        // SIGKILL is delivered at once; give the kernel a moment to tear the processes down.
        let start = Instant::now();
        while ids.iter().any(|p| alive(p)) && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        for p in &ids {
            assert!(!alive(p), "process {p} of the timed-out command still runs");
        }
        // The group is gone too, once init has reaped the orphans.
        let pgid: libc::pid_t = ids[0].parse().unwrap();
        while start.elapsed() < Duration::from_secs(5) {
            // SAFETY: signal 0 only checks whether the group exists.
            if unsafe { libc::kill(-pgid, 0) } != 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let gone = unsafe { libc::kill(-pgid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        assert!(gone, "process group {pgid} still has members");
    }

    /// Waits (bounded) until `path` holds `n` pids.
    fn pids(path: &std::path::Path, n: usize) -> Vec<String> {
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let ids: Vec<String> = text.split_whitespace().map(str::to_string).collect();
            if ids.len() >= n || start.elapsed() > Duration::from_secs(20) {
                return ids;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until none of `ids` runs.
    fn all_gone(ids: &[String]) -> bool {
        let start = Instant::now();
        while ids.iter().any(|p| alive(p)) && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        !ids.iter().any(|p| alive(p))
    }

    #[test]
    fn what_a_finished_command_leaves_running_is_killed_with_it() {
        // A helper left in the background holds the command's stdout: reading it to its end
        // waited for the helper (here for ever).
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pids");
        let cmd =
            Cmd::sh("sleep 1000 & echo $! >\"$1\"; echo done").arg(file.display().to_string());
        let o = ws().run(&cmd).unwrap();
        assert_eq!((o.stdout.as_str(), o.exit), ("done\n", Some(0)));
        assert!(
            all_gone(&pids(&file, 1)),
            "the background helper still runs"
        );
    }

    /// Run by [`ctrl_c_reaches_a_running_command`] in a child process of this test binary.
    #[test]
    #[ignore = "run by ctrl_c_reaches_a_running_command in a process of its own"]
    fn interrupted_command() {
        let Some(file) = std::env::var_os("CLAN_COORD_TEST_PIDS") else {
            return;
        };
        let cmd = Cmd::sh("echo $$ >\"$1\"; sleep 1000 & echo $! >>\"$1\"; wait")
            .arg(std::path::PathBuf::from(file).display().to_string());
        let _ = ws().run(&cmd);
    }

    #[test]
    fn ctrl_c_reaches_a_running_command() {
        // Its own group keeps a command from the terminal's Ctrl-C; the harness passes it on.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pids");
        let mut harness = Command::new(std::env::current_exe().unwrap());
        // As a harness started from a terminal: SIGINT at its default. A background job of a
        // script starts with it ignored, and then Ctrl-C reaches neither it nor its commands.
        // SAFETY: only async-signal-safe `signal` runs between fork and exec.
        unsafe {
            harness.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = harness
            .args(["--exact", "transport::local::tests::interrupted_command"])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env("CLAN_COORD_TEST_PIDS", &file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ids = pids(&file, 2);
        assert_eq!(ids.len(), 2, "the command did not start: {ids:?}");
        // SAFETY: sends SIGINT to our own child process.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "SIGINT did not end the harness"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.signal(), Some(libc::SIGINT), "{status}");
        assert!(
            all_gone(&ids),
            "the command's processes outlived the harness: {ids:?}"
        );
    }
}
