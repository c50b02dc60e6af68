//! Workstation-side commands (e.g. `nix eval` of the inventory), with the same deadline rules.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Cmd, Output, Transport};
use crate::error::TransportError;

/// Runs commands on the machine the harness runs on, through `sh -c`.
pub struct Workstation {
    /// Default deadline.
    pub timeout: Duration,
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
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| TransportError::Local {
                command: cmd.text().into(),
                reason: e.to_string(),
            })?;
        let mut out_pipe = child.stdout.take();
        let mut err_pipe = child.stderr.take();
        let out_t = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(p) = out_pipe.as_mut() {
                let _ = p.read_to_string(&mut s);
            }
            s
        });
        let err_t = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(p) = err_pipe.as_mut() {
                let _ = p.read_to_string(&mut s);
            }
            s
        });
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let stdout = out_t.join().unwrap_or_default();
                    let stderr = err_t.join().unwrap_or_default();
                    return Ok(Output {
                        stdout,
                        stderr,
                        exit: status.code(),
                        duration: start.elapsed(),
                    });
                }
                Ok(None) if start.elapsed() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(TransportError::Timeout {
                        machine: "workstation".into(),
                        command: cmd.text().into(),
                        waited: start.elapsed(),
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => {
                    return Err(TransportError::Local {
                        command: cmd.text().into(),
                        reason: e.to_string(),
                    })
                }
            }
        }
    }
}
