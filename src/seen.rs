//! What one command showed, kept with the command and exit status so that a verdict can quote it.

use crate::probe::excerpt;
use crate::transport::{Cmd, Output};

/// What one command showed: the command, its exit, an excerpt, and the parsed value or why not.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Seen<T> {
    /// Command line.
    pub command: String,
    /// Exit status.
    pub exit: Option<i32>,
    /// Output excerpt (never secret: probes only print hashes and public data).
    pub excerpt: String,
    /// Parsed value, or the transport/parse error.
    pub value: Result<T, String>,
}

impl<T> Seen<T> {
    /// The value, if any.
    pub fn ok(&self) -> Option<&T> {
        self.value.as_ref().ok()
    }

    /// What `cmd` answered (or why it could not run), parsed by `parse`; the excerpt is of
    /// stdout and stderr together.
    pub fn of(
        cmd: &Cmd,
        result: Result<Output, String>,
        parse: impl FnOnce(&Output) -> Result<T, String>,
    ) -> Seen<T> {
        Seen::with_excerpt(cmd, result, |o| excerpt(&o.combined(), 300), parse)
    }

    /// [`Seen::of`] with the excerpt chosen by `show` (the SSH hop leaves out `debug` lines).
    pub fn with_excerpt(
        cmd: &Cmd,
        result: Result<Output, String>,
        show: impl FnOnce(&Output) -> String,
        parse: impl FnOnce(&Output) -> Result<T, String>,
    ) -> Seen<T> {
        match result {
            Ok(out) => Seen {
                command: cmd.text().into(),
                exit: out.exit,
                excerpt: show(&out),
                value: parse(&out),
            },
            Err(e) => Seen {
                command: cmd.text().into(),
                exit: None,
                excerpt: String::new(),
                value: Err(e),
            },
        }
    }

    /// A probe that did not run, and why.
    pub fn not_run(why: String) -> Seen<T> {
        Seen {
            command: String::new(),
            exit: None,
            excerpt: String::new(),
            value: Err(why),
        }
    }
}
