//! Replay of cassettes, and recording of live runs into them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::cassette::{Cassette, Entry};
use super::{Cmd, Output, Transport};
use crate::error::TransportError;

/// A command's recordings (its output, or the transport error it never ran with), and which
/// one is next.
type Answers = (Vec<Result<Output, String>>, usize);

/// Answers commands from a cassette. Repeated commands get their recordings in order, then the
/// last one again (a monitor asks the same thing many times).
pub struct Replay {
    machine: String,
    cassette: String,
    entries: Mutex<HashMap<String, Answers>>,
}

impl Replay {
    /// Replay of `machine`'s log.
    pub fn new(machine: &str, cassette_path: &str, log: &[Entry]) -> Replay {
        let mut entries: HashMap<String, Answers> = HashMap::new();
        for e in log {
            entries
                .entry(e.command.clone())
                .or_default()
                .0
                .push(match &e.error {
                    Some(err) => Err(err.clone()),
                    None => Ok(e.output.clone()),
                });
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
        tracing::debug!(machine = %self.machine, command = %cmd, answer = ?outs[i].as_ref().map(|o| o.exit), "replayed");
        outs[i].clone().map_err(|error| TransportError::Recorded {
            machine: self.machine.clone(),
            command: cmd.text().into(),
            error,
        })
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

    /// Records what `cmd` answered, or the transport's error when it never ran (so that a run
    /// with an unreachable machine replays as it happened).
    fn record(
        &self,
        machine: &str,
        cmd: &Cmd,
        answer: &Result<Output, TransportError>,
    ) -> Result<(), TransportError> {
        let (out, error) = match answer {
            Ok(o) => (o.clone(), None),
            Err(e) => (
                Output {
                    stdout: String::new(),
                    stderr: String::new(),
                    exit: None,
                    duration: std::time::Duration::ZERO,
                },
                Some(e.to_string()),
            ),
        };
        for text in [&out.stdout, &out.stderr].into_iter().chain(error.as_ref()) {
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
                output: out,
                error,
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
                self.recorder.record(self.inner.name(), c, &o)?;
                o
            })
            .collect()
    }

    fn reconnects(&self) -> u64 {
        self.inner.reconnects()
    }

    fn run(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        let out = self.inner.run(cmd);
        self.recorder.record(self.inner.name(), cmd, &out)?;
        out
    }
}
