//! Pure parsers of remote command output into types. No I/O here: each function takes the text a
//! command printed (and its exit status where it matters) and returns a value or a clear error.
//! They must never panic, whatever the input (a fixture corpus test walks real outputs).

pub mod clan;
pub mod hashes;
pub mod journal;
pub mod nixos;
pub mod ping;
pub mod ssh;
pub mod systemd;
pub mod yggdrasil;
pub mod zerotier;
pub mod zerotier_ids;

/// Output that did not parse as the probe expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{probe}: {problem} (output starts: {excerpt:?})")]
pub struct ProbeError {
    /// Which parser.
    pub probe: &'static str,
    /// What was wrong.
    pub problem: String,
    /// First line(s) of the output, for the message.
    pub excerpt: String,
}

impl ProbeError {
    /// `problem` may quote a line of the output, so it passes the redaction point too.
    pub(crate) fn new(probe: &'static str, problem: impl Into<String>, output: &str) -> Self {
        ProbeError {
            probe,
            problem: crate::redact::withhold(&problem.into()).into_owned(),
            excerpt: excerpt(output, 120),
        }
    }
}

/// Quoting output in a message goes through the one redaction point.
pub use crate::redact::excerpt;
