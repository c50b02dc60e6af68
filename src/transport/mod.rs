//! Running commands on machines. One trait, three implementations: SSH over ssh2 (live), cassette
//! replay (offline), and a recorder that wraps live transports. Check code cannot tell them apart.

pub mod batch;
pub mod cassette;
mod groups;
pub mod hostkey;
pub mod local;
pub mod netns;
pub mod outcome;
pub mod replay;
pub mod resolve;
pub mod ssh;

use std::fmt;
use std::time::Duration;

use once_cell::sync::Lazy;
use regex::Regex;

use crate::error::TransportError;

/// A remote command built from code literals and validated values. Values are always
/// shell-quoted, so nothing from config or remote output can splice shell syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    text: String,
    timeout: Option<Duration>,
    heavy: bool,
}

static SAFE: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"^[A-Za-z0-9_./:@%+=,-]+$").expect("static regex"));

/// Quotes `s` for a POSIX shell; plain words stay unquoted so cassettes stay readable.
pub fn quote(s: &str) -> String {
    if SAFE.is_match(s) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl Cmd {
    /// A program named by a literal in our code.
    pub fn new(program: &'static str) -> Cmd {
        Cmd {
            text: program.to_string(),
            timeout: None,
            heavy: false,
        }
    }

    /// A program and arguments from configuration (already validated by the caller), each
    /// word quoted: no shell syntax from config ever reaches a shell.
    pub fn argv(words: &[String]) -> Cmd {
        let mut it = words.iter();
        let mut c = Cmd {
            text: it.next().map(|p| quote(p)).unwrap_or_default(),
            timeout: None,
            heavy: false,
        };
        for w in it {
            c = c.arg(w);
        }
        c
    }

    /// A command line assembled by this crate from already-quoted parts (the batch runner).
    pub(crate) fn assembled(text: String, timeout: Option<Duration>) -> Cmd {
        Cmd {
            text,
            timeout,
            heavy: false,
        }
    }

    /// A fixed shell script from our code; values go in with [`Cmd::arg`] as `$1`, `$2`, ...
    pub fn sh(script: &'static str) -> Cmd {
        Cmd {
            text: format!("sh -c {} sh", quote(script)),
            timeout: None,
            heavy: false,
        }
    }

    /// Appends one argument, quoted.
    pub fn arg(mut self, a: impl AsRef<str>) -> Cmd {
        self.text.push(' ');
        self.text.push_str(&quote(a.as_ref()));
        self
    }

    /// Appends several arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, args: I) -> Cmd {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    /// Marks a command as costly on the machine (an SSH handshake, say): in a batch, at most a
    /// few of these run at once, so a big fleet does not starve its own probes.
    pub fn heavy(mut self) -> Cmd {
        self.heavy = true;
        self
    }

    /// Whether [`Cmd::heavy`] was set.
    pub fn is_heavy(&self) -> bool {
        self.heavy
    }

    /// Sets this command's deadline (default: the fleet's command timeout).
    pub fn timeout(mut self, d: Duration) -> Cmd {
        self.timeout = Some(d);
        self
    }

    /// The command line; also the cassette key.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The deadline, if set.
    pub fn deadline(&self) -> Option<Duration> {
        self.timeout
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Output {
    /// Standard output.
    #[serde(default)]
    pub stdout: String,
    /// Standard error.
    #[serde(default)]
    pub stderr: String,
    /// Exit status (`None` when killed by a signal).
    #[serde(default)]
    pub exit: Option<i32>,
    /// Wall time.
    #[serde(default, rename = "duration_ms", with = "millis")]
    pub duration: Duration,
}

impl Output {
    /// stdout and stderr joined, for parsers that look at both (ping, zerotier-cli errors).
    pub fn combined(&self) -> String {
        if self.stderr.is_empty() {
            self.stdout.clone()
        } else {
            format!("{}\n{}", self.stdout, self.stderr)
        }
    }
    /// Exit 0.
    pub fn success(&self) -> bool {
        self.exit == Some(0)
    }
}

mod millis {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms: u64 = serde::Deserialize::deserialize(d)?;
        Ok(Duration::from_millis(ms))
    }
}

/// Runs commands on one machine (or on the workstation).
pub trait Transport: Send + Sync {
    /// Machine name (`workstation` for local commands).
    fn name(&self) -> &str;
    /// Runs `cmd` and returns its output; a non-zero exit is an `Output`, not an error.
    fn run(&self, cmd: &Cmd) -> Result<Output, TransportError>;
    /// Runs independent commands; a transport may send them together in one round trip and
    /// run them concurrently. Results come back in order, one per command.
    fn run_many(&self, cmds: &[Cmd]) -> Vec<Result<Output, TransportError>> {
        cmds.iter().map(|c| self.run(c)).collect()
    }
    /// Keeps an idle session alive (long monitors); a no-op where there is no session.
    fn keepalive(&self) {}
    /// How many times the session was re-established after the first connect.
    fn reconnects(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_values_inert() {
        assert_eq!(quote("fddb:4344::1"), "fddb:4344::1");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("x'; rm -rf /; '"), r"'x'\''; rm -rf /; '\'''");
        assert_eq!(
            Cmd::sh("echo \"$1\"").arg("it's").text(),
            r#"sh -c 'echo "$1"' sh 'it'\''s'"#
        );
    }
}
