//! The lab's one error type. Each variant carries what an operator needs (tool, file, machine,
//! how long the lab waited), so the message alone says what broke.

use std::path::PathBuf;

/// A problem building, faulting or tearing down the lab fleet.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A host tool failed or is missing.
    #[error("lab: {tool}: {reason}")]
    Tool {
        /// The program.
        tool: String,
        /// Its stderr or why it could not start.
        reason: String,
    },
    /// A lab file could not be read or written.
    #[error("lab: {path}: {source}", path = path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The lab cannot run on this host (not root, no namespaces, packages missing).
    #[error("lab cannot run here: {reason}")]
    Unsupported {
        /// What is missing and how to get it.
        reason: String,
    },
    /// A chosen lab subnet collides with the host's own addresses or routes.
    #[error("lab subnet {subnet} overlaps the host's {what}; refusing to start (choose another with --subnet)")]
    SubnetInUse {
        /// The lab subnet.
        subnet: String,
        /// The host route or address it overlaps.
        what: String,
    },
    /// The state directory is not safe to act on as root.
    #[error("lab state directory {dir} {why}: it holds the lab's private keys and the pids it signals as root, so it must be a directory of the lab's own user that nobody else can write (mode 0700); {fix}", dir = dir.display())]
    UnsafeStateDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        why: String,
        /// How to fix it.
        fix: String,
    },
    /// A request to the lab is invalid.
    #[error("lab: {0}")]
    Invalid(String),
    /// A lab daemon did not become ready in time.
    #[error("lab: {machine}: {what} not ready after {waited:?}: {detail}")]
    NotReady {
        /// The machine.
        machine: String,
        /// The daemon or condition.
        what: String,
        /// How long the lab waited.
        waited: std::time::Duration,
        /// Last observation (log tail).
        detail: String,
    },
}
