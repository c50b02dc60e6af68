//! What the harness's own SSH session to a machine did in one round. A command that could not
//! run there (the session stalled, dropped or was refused) means the harness did not observe that
//! machine then: an observer gap. It says nothing about the overlay between the machines, so the
//! analysis counts it against coverage, never as a disconnection (which needs a failed ping from
//! a machine that did answer).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::TransportError;

/// How the harness's session to a machine fared in a round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    /// Every command of the round answered.
    #[default]
    Connected,
    /// The session was opened again during the round, and then answered.
    Reconnected,
    /// A command did not finish within its deadline: the session hung.
    Stalled,
    /// The session could not be opened, or broke in the middle of a command.
    Dropped,
    /// The session was refused: host key, host certificate or authentication.
    Refused,
}

impl SessionState {
    /// The harness could not ask the machine something in this round.
    pub fn is_gap(self) -> bool {
        matches!(
            self,
            SessionState::Stalled | SessionState::Dropped | SessionState::Refused
        )
    }

    /// In words, for verdicts: "stalled", "dropped", ...
    pub fn word(self) -> &'static str {
        match self {
            SessionState::Connected => "connected",
            SessionState::Reconnected => "reconnected",
            SessionState::Stalled => "stalled",
            SessionState::Dropped => "dropped",
            SessionState::Refused => "was refused",
        }
    }

    /// The state a transport error shows: a command that ran into its deadline (the transport's
    /// timeout, or a channel error only after the whole deadline, as a timed-out batch reports)
    /// is a stall; a failed connect or a broken channel a drop; host trust and authentication a
    /// refusal. A replay without the recording is a drop: nothing answered.
    pub fn of(e: &TransportError, waited: Duration, deadline: Duration) -> SessionState {
        match e {
            TransportError::Timeout { .. } => SessionState::Stalled,
            TransportError::Channel { .. } if waited >= deadline => SessionState::Stalled,
            TransportError::HostKeyMismatch { .. }
            | TransportError::HostCertificate { .. }
            | TransportError::NoTrustedHostKey { .. }
            | TransportError::Auth { .. } => SessionState::Refused,
            _ => SessionState::Dropped,
        }
    }
}

/// The harness's session to one machine in one round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionSample {
    /// How it fared (the first failure of the round decides).
    pub state: SessionState,
    /// How long the harness waited on the command that failed first (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited: Option<f64>,
    /// The transport's error for that command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the harness could not ask the machine in this round (`overlay status`,
    /// `ping → hetzner-vm`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed: Vec<String>,
}

impl SessionSample {
    /// Records that `what` could not run: the first failure sets state, wait and error.
    pub fn failed(&mut self, what: &str, e: &TransportError, waited: Duration, deadline: Duration) {
        if !self.state.is_gap() {
            self.state = SessionState::of(e, waited, deadline);
            self.waited = Some((waited.as_secs_f64() * 10.0).round() / 10.0);
            self.error = Some(crate::redact::excerpt(&e.to_string(), 240));
        }
        self.missed.push(what.to_string());
    }

    /// In short: "the harness's session to gcp-vm stalled 14.0 s".
    pub fn summary(&self, machine: &str) -> String {
        let waited = self.waited.filter(|w| *w >= 0.1);
        let waited = match (self.state, waited) {
            (_, None) => String::new(),
            (SessionState::Stalled, Some(w)) => format!(" {w:.1} s"),
            (_, Some(w)) => format!(" after {w:.1} s"),
        };
        format!(
            "the harness's session to {machine} {}{waited}",
            self.state.word()
        )
    }

    /// With the transport's own words: "… stalled 14.0 s (gcp-vm: `ping …` did not finish …)".
    pub fn describe(&self, machine: &str) -> String {
        match &self.error {
            Some(e) => format!("{} ({e})", self.summary(machine)),
            None => self.summary(machine),
        }
    }
}
