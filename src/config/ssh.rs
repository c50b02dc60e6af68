//! `[ssh]`: how the harness reaches machines. Key-based only: a password would need a prompt the
//! harness must never show, so only the agent or a key file are accepted.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::located::Source;
use super::raw::RawSsh;
use crate::error::ConfigError;

/// How the harness authenticates to machines. Never a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshAuth {
    /// Keys offered by the running ssh-agent (`SSH_AUTH_SOCK`).
    Agent,
    /// A private key file (no passphrase prompt: use the agent for protected keys).
    IdentityFile(PathBuf),
}

/// SSH settings shared by all machines.
#[derive(Debug, Clone)]
pub struct SshSettings {
    /// Authentication method.
    pub auth: SshAuth,
    /// Remote user (clan deploys as root).
    pub user: String,
    /// TCP connect plus handshake limit.
    pub connect_timeout: Duration,
    /// Default deadline of one remote command.
    pub command_timeout: Duration,
    /// known_hosts file for machines the clan repo has no host key for.
    pub known_hosts: Option<PathBuf>,
    /// Network namespace (name under /run/netns) the SSH sockets are opened in: the lab's
    /// workstation namespace, so the harness reaches lab machines without any lab route in the
    /// host's own namespace. None = the harness's own namespace.
    pub netns: Option<String>,
}

/// TCP connect plus handshake limit in seconds: default, least, most. Zero would fail every
/// connection at once; libssh2 takes the limit as u32 milliseconds, where a huge value wraps
/// (536870912 s became 0, "no timeout").
const CONNECT_SECS: [u64; 3] = [5, 1, 300];
/// One remote command's default deadline in seconds: default, least, most (an hour).
const COMMAND_SECS: [u64; 3] = [20, 1, 3600];

/// `[default, least, most]` seconds of `field` as a duration.
fn secs(
    src: &Source,
    v: Option<&Spanned<u64>>,
    [d, lo, hi]: [u64; 3],
    field: &str,
) -> Result<Duration, ConfigError> {
    src.bounded(v, d, lo, hi, field).map(Duration::from_secs)
}

/// Validates `[ssh]`; without the table: agent, root, 5 s connect, 20 s per command.
pub(super) fn parse(src: &Source, raw: Option<RawSsh>) -> Result<SshSettings, ConfigError> {
    let Some(s) = raw else {
        return Ok(SshSettings {
            auth: SshAuth::Agent,
            user: "root".into(),
            connect_timeout: Duration::from_secs(CONNECT_SECS[0]),
            command_timeout: Duration::from_secs(COMMAND_SECS[0]),
            known_hosts: None,
            netns: None,
        });
    };
    let method = s
        .auth
        .as_ref()
        .map(|a| (a.get_ref().as_str(), a.span().start));
    let auth = match (method, &s.identity_file) {
        (None | Some(("agent", _)), None) => SshAuth::Agent,
        (None | Some(("identity_file", _)), Some(f)) => {
            SshAuth::IdentityFile(src.path(f, "ssh.identity_file")?)
        }
        (Some(("identity_file", at)), None) => {
            return Err(src.error(
                at,
                "ssh.identity_file",
                "auth = \"identity_file\" but no identity_file is given".into(),
                "add identity_file = \"path/to/key\"",
            ))
        }
        (Some(("agent", _)), Some(f)) => {
            return Err(src.error(
                f.span().start,
                "ssh.identity_file",
                "identity_file is set while auth = \"agent\"".into(),
                "drop identity_file, or set auth = \"identity_file\"",
            ))
        }
        (Some((other, at)), _) => {
            return Err(src.error(
                at,
                "ssh.auth",
                format!("unknown auth method {other:?}"),
                "use \"agent\" or \"identity_file\" (passwords are never used)",
            ));
        }
    };
    let user = match &s.user {
        Some(u) => src.name(u, "ssh.user")?.to_string(),
        None => "root".into(),
    };
    Ok(SshSettings {
        auth,
        user,
        connect_timeout: secs(
            src,
            s.connect_timeout_secs.as_ref(),
            CONNECT_SECS,
            "ssh.connect_timeout_secs",
        )?,
        command_timeout: secs(
            src,
            s.command_timeout_secs.as_ref(),
            COMMAND_SECS,
            "ssh.command_timeout_secs",
        )?,
        known_hosts: match &s.known_hosts {
            Some(p) => Some(src.path(p, "ssh.known_hosts")?),
            None => None,
        },
        netns: match &s.netns {
            Some(n) => Some(src.name(n, "ssh.netns")?.to_string()),
            None => None,
        },
    })
}
