//! Replay of cassettes, and recording of live runs into them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::cassette::{Cassette, Entry};
use super::{Cmd, Output, Transport};
use crate::error::TransportError;

/// Answers commands from a cassette. Repeated commands get their recordings in order, then the
/// last one again (a monitor asks the same thing many times).
pub struct Replay {
    machine: String,
    cassette: String,
    entries: Mutex<HashMap<String, (Vec<Output>, usize)>>,
}

impl Replay {
    /// Replay of `machine`'s log.
    pub fn new(machine: &str, cassette_path: &str, log: &[Entry]) -> Replay {
        let mut entries: HashMap<String, (Vec<Output>, usize)> = HashMap::new();
        for e in log {
            entries
                .entry(e.command.clone())
                .or_default()
                .0
                .push(e.output.clone());
        }
        Replay {
            machine: machine.to_string(),
            cassette: cassette_path.to_string(),
            entries: Mutex::new(entries),
        }
    }
}

impl Transport for Replay {
    fn name(&self) -> &str {
        &self.machine
    }

    fn run(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let Some((outs, next)) = entries.get_mut(cmd.text()) else {
            return Err(TransportError::NoRecording {
                machine: self.machine.clone(),
                command: cmd.text().into(),
                cassette: self.cassette.clone(),
            });
        };
        let i = (*next).min(outs.len().saturating_sub(1));
        *next += 1;
        tracing::debug!(machine = %self.machine, command = %cmd, exit = ?outs[i].exit, "replayed");
        Ok(outs[i].clone())
    }
}

/// Shared sink of a recording: written to disk after every command so a crash loses nothing.
pub struct Recorder {
    path: PathBuf,
    cassette: Mutex<Cassette>,
}

impl Recorder {
    /// Starts a new cassette at `path`.
    pub fn new(path: PathBuf, description: String, machines_file: Option<String>) -> Arc<Recorder> {
        Arc::new(Recorder {
            path,
            cassette: Mutex::new(Cassette {
                format: super::cassette::FORMAT,
                description,
                machines_file,
                ..Default::default()
            }),
        })
    }

    fn record(&self, machine: &str, cmd: &Cmd, out: &Output) -> Result<(), TransportError> {
        for text in [&out.stdout, &out.stderr] {
            if let Err(kind) = crate::redact::refuse(text) {
                return Err(TransportError::SecretInOutput {
                    machine: machine.into(),
                    command: cmd.text().into(),
                    what: kind.to_string(),
                });
            }
        }
        let mut c = self.cassette.lock().unwrap_or_else(|p| p.into_inner());
        c.push(
            machine,
            Entry {
                command: cmd.text().into(),
                output: out.clone(),
            },
        );
        let json = serde_json::to_string_pretty(&*c).map_err(|e| TransportError::Cassette {
            path: self.path.display().to_string(),
            problem: e.to_string(),
        })?;
        std::fs::write(&self.path, json + "\n").map_err(|e| TransportError::Cassette {
            path: self.path.display().to_string(),
            problem: format!("cannot write: {e}"),
        })
    }
}

/// Wraps a live transport and records every exchange.
pub struct Recording {
    /// The live transport.
    pub inner: Arc<dyn Transport>,
    /// The sink.
    pub recorder: Arc<Recorder>,
}

impl Transport for Recording {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn keepalive(&self) {
        self.inner.keepalive()
    }

    fn run_many(&self, cmds: &[Cmd]) -> Vec<Result<Output, TransportError>> {
        let outs = self.inner.run_many(cmds);
        outs.into_iter()
            .zip(cmds)
            .map(|(o, c)| {
                let o = o?;
                self.recorder.record(self.inner.name(), c, &o)?;
                Ok(o)
            })
            .collect()
    }

    fn reconnects(&self) -> u64 {
        self.inner.reconnects()
    }

    fn run(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        let out = self.inner.run(cmd)?;
        self.recorder.record(self.inner.name(), cmd, &out)?;
        Ok(out)
    }
}
