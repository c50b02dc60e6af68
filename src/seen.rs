//! What one command showed, kept with the command and exit status so that a verdict can quote it.

use crate::redact;
use crate::transport::{Cmd, Output};

/// What one command showed: the command, its exit, an excerpt, and the parsed value or why not.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Seen<T> {
    /// Command line.
    pub command: String,
    /// Exit status.
    pub exit: Option<i32>,
    /// Output excerpt, through [`redact`]: probes only print hashes and public data, and output
    /// that holds a secret anyway is withheld (length and hash only).
    pub excerpt: String,
    /// Parsed value, or the transport/parse error (withheld like the excerpt).
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
        Seen::with_excerpt(cmd, result, |o| redact::excerpt(&o.combined(), 300), parse)
    }

    /// [`Seen::of`] with the excerpt chosen by `show` (the SSH hop leaves out `debug` lines).
    /// Output holding a secret is withheld whole, whatever `show` picks, and is not parsed: a
    /// value or parse error made from it could carry a piece that does not look secret alone.
    pub fn with_excerpt(
        cmd: &Cmd,
        result: Result<Output, String>,
        show: impl FnOnce(&Output) -> String,
        parse: impl FnOnce(&Output) -> Result<T, String>,
    ) -> Seen<T> {
        match result {
            Ok(out) => {
                let all = out.combined();
                let (excerpt, value) = match redact::detect(&all) {
                    None => (show(&out), parse(&out)),
                    Some(kind) => {
                        let withheld = redact::withheld(kind, &all);
                        let why = format!("not parsed: the output holds a secret, {withheld}");
                        (withheld, Err(why))
                    }
                };
                Seen {
                    command: cmd.text().into(),
                    exit: out.exit,
                    excerpt,
                    value: value.map_err(|e| redact::withhold(&e).into_owned()),
                }
            }
            Err(e) => Seen {
                command: cmd.text().into(),
                exit: None,
                excerpt: String::new(),
                value: Err(redact::withhold(&e).into_owned()),
            },
        }
    }

    /// A probe that did not run, and why.
    pub fn not_run(why: String) -> Seen<T> {
        Seen {
            command: String::new(),
            exit: None,
            excerpt: String::new(),
            value: Err(redact::withhold(&why).into_owned()),
        }
    }
}
