//! Error types. Each carries the context an operator needs (file, machine, command, how long we
//! waited) so that the message alone says what broke; the cause sits in `#[source]`. Fields that
//! may quote remote output or repo files are shown through `redact::withhold`.

use std::path::PathBuf;
use std::time::Duration;

/// Crate-wide result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Top-level error of the harness.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// machines.toml could not be read or is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The clan repository (the oracle) could not be read.
    #[error(transparent)]
    Oracle(#[from] OracleError),
    /// The inventory could not be read or resolved.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// Talking to a machine failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Environment switches (`COORD_*`) are invalid.
    #[error("environment variable {var}={value:?} is invalid: {reason}", value = crate::redact::withhold(value), reason = crate::redact::withhold(reason))]
    Env {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A live run was pointed at a documentation address (the example machines.toml): nothing
    /// answers there, so the harness refuses to send it anything.
    #[error("{machine}: address {address} is a documentation address (RFC 5737 / RFC 3849), as in the example machines.toml; live runs never send traffic there\n  fix: put the machine's real address in {path}, or replay offline: `clan-coord check --replay`, or `cargo test` without --features live", path = path.display())]
    DocumentationAddress {
        /// The machine.
        machine: String,
        /// Its configured address.
        address: std::net::IpAddr,
        /// The machines.toml naming it.
        path: PathBuf,
    },
    /// A machine name that is not one (machines.toml is checked on load; this guards the type).
    #[error("{path}: {reason}", path = path.display())]
    MachineName {
        /// The machines file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Preparing a rebuild round failed (e.g. the lab could not change its repo).
    #[error("{criterion}: before the rebuild: {reason}", reason = crate::redact::withhold(reason))]
    BeforeRebuild {
        /// The criterion whose rebuild it was.
        criterion: crate::names::Criterion,
        /// What went wrong.
        reason: String,
    },
    /// A report would have held a secret (a path that quotes remote text without `redact`).
    #[error("refusing to write {path}: it would hold {kind}; the harness never stores secret content (this is a bug: report it)", path = path.display())]
    SecretInReport {
        /// The report file.
        path: PathBuf,
        /// What was recognised.
        kind: crate::redact::SecretKind,
    },
    /// Writing a report failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A problem in machines.toml, pointing at file, line and column.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}:{column}: {field}: {problem}\n  fix: {fix}", path = path.display(), problem = crate::redact::withhold(problem))]
pub struct ConfigError {
    /// The machines file.
    pub path: PathBuf,
    /// 1-based line (0 when the problem is not tied to a place).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The field (dotted path) concerned.
    pub field: String,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

/// A problem reading the clan repository's vars.
#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    /// A vars file could not be read.
    #[error("clan repo: cannot read {path}: {source}", path = path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A vars value does not parse.
    #[error("clan repo: {path}: {problem}", path = path.display(), problem = crate::redact::withhold(problem))]
    Value {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A vars file resolves (through a symlink) outside the repository: never read.
    #[error("clan repo: {path} resolves to {resolved}, outside the repository {repo}; refusing to read it\n  fix: a vars value is a file inside the repo: replace the link by the file, and check who made it point there", path = path.display(), resolved = resolved.display(), repo = repo.display())]
    OutsideRepo {
        /// The file as found in the repo.
        path: PathBuf,
        /// Where it leads.
        resolved: PathBuf,
        /// The repository root (canonical).
        repo: PathBuf,
    },
    /// A vars value is larger than any public value can be: not read.
    #[error("clan repo: {path} is larger than {cap} bytes, the most a vars value may hold (keys, addresses and certificates are far smaller); not read\n  fix: check the file: a value file holds one public value", path = path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap ([`crate::oracle::MAX_VALUE_BYTES`]).
        cap: u64,
    },
    /// The directory holds no `vars/`.
    #[error("clan repo {path} has no vars/ directory; point fleet.clan_dir at the root of the clan repository", path = path.display())]
    NoVars {
        /// The directory given.
        path: PathBuf,
    },
}

/// A problem with the inventory serialization.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The file could not be read.
    #[error("inventory: cannot read {path}: {source}", path = path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The JSON is malformed or of the wrong shape.
    #[error("inventory from {origin}: {problem}", problem = crate::redact::withhold(problem))]
    Shape {
        /// Where the JSON came from (file or command).
        origin: String,
        /// What is wrong.
        problem: String,
    },
}

/// A failure to run a command on a machine (or the workstation).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// TCP connect or SSH handshake did not finish.
    #[error("{machine}: cannot connect to {target} (waited {waited:?}): {reason}", reason = crate::redact::withhold(reason))]
    Connect {
        /// The machine.
        machine: String,
        /// Address and port.
        target: String,
        /// How long we waited.
        waited: Duration,
        /// What happened.
        reason: String,
    },
    /// The host presented a key other than the one the clan repo / known_hosts expects.
    #[error("{machine}: host key mismatch, refusing to connect\n  expected {expected} (from {source_of_truth})\n  seen     {seen}\n  likely cause: the machine was reinstalled without its clan vars host key, or something else answers at {target}")]
    HostKeyMismatch {
        /// The machine.
        machine: String,
        /// Address.
        target: String,
        /// Expected fingerprint.
        expected: String,
        /// Seen fingerprint.
        seen: String,
        /// Where the expected key came from.
        source_of_truth: String,
    },
    /// The repo's host certificate does not vouch for the machine.
    #[error("{machine}: host certificate {path} rejected: {reason}", reason = crate::redact::withhold(reason))]
    HostCertificate {
        /// The machine.
        machine: String,
        /// The certificate file.
        path: String,
        /// Why it was rejected.
        reason: String,
    },
    /// There is nothing to authenticate the host with (no vars key, no known_hosts entry).
    #[error("{machine}: no trusted host key for {target}: {reason}\n  fix: add vars/per-machine/{machine}/openssh/ssh.id_ed25519.pub to the clan repo, or an entry to the known_hosts file named in machines.toml (no trust on first use)", reason = crate::redact::withhold(reason))]
    NoTrustedHostKey {
        /// The machine.
        machine: String,
        /// Address.
        target: String,
        /// Details.
        reason: String,
    },
    /// User authentication failed.
    #[error("{machine}: authentication as {user} failed with {method}: {reason}", reason = crate::redact::withhold(reason))]
    Auth {
        /// The machine.
        machine: String,
        /// Remote user.
        user: String,
        /// agent or identity file.
        method: String,
        /// What the server said.
        reason: String,
    },
    /// The command did not finish before its deadline.
    #[error("{machine}: `{command}` did not finish within {waited:?}")]
    Timeout {
        /// The machine.
        machine: String,
        /// The command.
        command: String,
        /// How long we waited.
        waited: Duration,
    },
    /// An SSH channel error in the middle of a command.
    #[error("{machine}: `{command}` failed on the SSH channel: {reason}", reason = crate::redact::withhold(reason))]
    Channel {
        /// The machine.
        machine: String,
        /// The command.
        command: String,
        /// What happened.
        reason: String,
    },
    /// A local (workstation) command could not be started.
    #[error("workstation: cannot run `{command}`: {reason}", reason = crate::redact::withhold(reason))]
    Local {
        /// The command.
        command: String,
        /// Why.
        reason: String,
    },
    /// The cassette holds no answer for this command.
    #[error("{machine}: cassette {cassette} has no recording of `{command}`; re-record with COORD_RECORD against a live fleet, or add the entry (docs/cassettes.md)")]
    NoRecording {
        /// The machine.
        machine: String,
        /// The command.
        command: String,
        /// The cassette file.
        cassette: String,
    },
    /// A cassette's recording of a command that never ran (the machine could not be reached,
    /// the channel failed): the transport's words as they were recorded.
    #[error("{error}", error = crate::redact::withhold(error))]
    Recorded {
        /// The machine.
        machine: String,
        /// The command.
        command: String,
        /// The transport error's words.
        error: String,
    },
    /// The cassette file is missing or invalid.
    #[error("cassette {path}: {problem}", problem = crate::redact::withhold(problem))]
    Cassette {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// Recording refused output that looks like a secret.
    #[error("{machine}: refusing to record output of `{command}`: it looks like {what}; the harness never stores secret content (hash it on the remote side instead)")]
    SecretInOutput {
        /// The machine.
        machine: String,
        /// The command.
        command: String,
        /// Kind of secret detected.
        what: String,
    },
    /// The machine is not in the fleet.
    #[error("{machine}: no such machine in the fleet")]
    UnknownMachine {
        /// The name asked for.
        machine: String,
    },
}
