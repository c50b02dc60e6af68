//! Workstation-side commands (e.g. `nix eval` of the inventory, the rebuilds), with the same
//! deadline rules. Each runs in its own process group, so a deadline kills everything it
//! started (a rebuild's nix and ssh), not just the shell.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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

/// Kills the child's whole process group (it leads one: `process_group(0)`), then reaps it.
fn kill_group(child: &mut Child) {
    if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: killpg only sends a signal; `pgid` is our child's pid, which leads its own
        // group and is not reaped yet (we wait below), so the id cannot have been reused.
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
    }
    let _ = child.kill();
    let _ = child.wait();
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
        let out_pipe = child.stdout.take();
        let err_pipe = child.stderr.take();
        let out_t = std::thread::spawn(move || drain(out_pipe));
        let err_t = std::thread::spawn(move || drain(err_pipe));
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let (stdout, out_cut) = out_t.join().unwrap_or_default();
                    let (stderr, err_cut) = err_t.join().unwrap_or_default();
                    let ended = ended(status);
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
                Ok(None) if start.elapsed() >= deadline => {
                    kill_group(&mut child);
                    return Err(TransportError::Timeout {
                        machine: "workstation".into(),
                        command: cmd.text().into(),
                        waited: start.elapsed(),
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
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
}
