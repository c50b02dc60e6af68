//! A machine's view as an SSH client (`plan::CLIENT_VIEW_SCRIPT`): its clock, the known_hosts
//! files `ssh -G` says the hop reads, and the `@cert-authority` lines of each, with file and line.
//!
//! ```text
//! now 1790000000 2026-09-21T14:13:20
//! globalknownhostsfile /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2
//! userknownhostsfile /dev/null
//! file /etc/ssh/ssh_known_hosts
//! 1:@cert-authority ssh-ca,*.clan ssh-ed25519 AAAA...
//! absent /etc/ssh/ssh_known_hosts2
//! file /dev/null
//! ```

use super::super::ProbeError;
use super::hop::FileLine;
use super::validity::{Clock, LocalTime};
use super::{parse_cert_authorities, CertAuthority};

/// What became of one known_hosts file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum FileState {
    /// Read; its `@cert-authority` lines.
    Read {
        /// Lines, in file order.
        authorities: Vec<(u32, CertAuthority)>,
    },
    /// Not there (ssh skips it).
    Absent,
    /// There but not readable by the probe.
    Unreadable,
}

/// One known_hosts file ssh reads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KnownHostsFile {
    /// Path as the script resolved it (`~/` expanded).
    pub path: String,
    /// Read, absent or unreadable.
    pub state: FileState,
}

/// The client view of one machine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClientView {
    /// The machine's clock when it answered.
    pub clock: Clock,
    /// `globalknownhostsfile` of `ssh -G`.
    pub global_files: Vec<String>,
    /// `userknownhostsfile` of `ssh -G`.
    pub user_files: Vec<String>,
    /// Each file, in the order ssh reads them.
    pub files: Vec<KnownHostsFile>,
}

/// One `@cert-authority` line with where it is.
#[derive(Debug, Clone, Copy)]
pub struct Located<'a> {
    /// `file:line`.
    pub file: &'a str,
    /// Line number.
    pub line: u32,
    /// The line.
    pub ca: &'a CertAuthority,
}

impl Located<'_> {
    /// `file:line`.
    pub fn at(&self) -> FileLine {
        FileLine {
            file: self.file.to_string(),
            line: self.line,
        }
    }
}

impl ClientView {
    /// Every `@cert-authority` line of every file read.
    pub fn authorities(&self) -> impl Iterator<Item = Located<'_>> {
        self.files.iter().flat_map(|f| match &f.state {
            FileState::Read { authorities } => authorities
                .iter()
                .map(|(n, ca)| Located {
                    file: &f.path,
                    line: *n,
                    ca,
                })
                .collect(),
            _ => Vec::new(),
        })
    }

    /// The lines ssh would try for a certificate checked under `name` (negations honoured).
    pub fn trusting(&self, name: &str) -> Vec<Located<'_>> {
        self.authorities().filter(|l| l.ca.matches(name)).collect()
    }

    /// The files and what became of each, for a finding: `/etc/ssh/ssh_known_hosts (2 CA
    /// lines), /etc/ssh/ssh_known_hosts2 (absent)`.
    pub fn files_read(&self) -> String {
        self.files
            .iter()
            .map(|f| match &f.state {
                FileState::Read { authorities } => {
                    format!(
                        "{} ({} CA line{})",
                        f.path,
                        authorities.len(),
                        if authorities.len() == 1 { "" } else { "s" }
                    )
                }
                FileState::Absent => format!("{} (absent)", f.path),
                FileState::Unreadable => format!("{} (unreadable)", f.path),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Parses the client view script's stdout.
pub fn parse_client_view(out: &str) -> Result<ClientView, ProbeError> {
    const P: &str = "client view";
    let err = |what: String| ProbeError::new(P, what, out);
    let mut clock = None;
    let (mut global_files, mut user_files, mut files) =
        (Vec::new(), Vec::new(), Vec::<KnownHostsFile>::new());
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "now" => {
                let mut f = rest.split_whitespace();
                let epoch = f.next().and_then(|e| e.parse::<i64>().ok());
                let local = f.next().and_then(LocalTime::parse);
                match (epoch, local) {
                    (Some(epoch), Some(local)) => clock = Some(Clock { epoch, local }),
                    _ => return Err(err(format!("bad clock line {line:?} (expected `now <unix seconds> <YYYY-MM-DDTHH:MM:SS>`)"))),
                }
            }
            "globalknownhostsfile" => {
                global_files = rest.split_whitespace().map(String::from).collect()
            }
            "userknownhostsfile" => {
                user_files = rest.split_whitespace().map(String::from).collect()
            }
            "file" => files.push(KnownHostsFile {
                path: rest.to_string(),
                state: FileState::Read {
                    authorities: Vec::new(),
                },
            }),
            "absent" | "unreadable" => files.push(KnownHostsFile {
                path: rest.to_string(),
                state: if word == "absent" {
                    FileState::Absent
                } else {
                    FileState::Unreadable
                },
            }),
            _ => {
                let numbered = line
                    .split_once(':')
                    .and_then(|(n, l)| Some((n.parse::<u32>().ok()?, l)));
                let (
                    Some((n, text)),
                    Some(KnownHostsFile {
                        path,
                        state: FileState::Read { authorities },
                    }),
                ) = (numbered, files.last_mut())
                else {
                    return Err(err(format!("unexpected line {line:?}")));
                };
                let found = parse_cert_authorities(text)
                    .map_err(|e| err(format!("{path}:{n}: {}", e.problem)))?;
                authorities.extend(found.into_iter().map(|ca| (n, ca)));
            }
        }
    }
    let clock = clock.ok_or_else(|| err("no `now` line".into()))?;
    if global_files.is_empty() && user_files.is_empty() {
        return Err(err("ssh -G named no known_hosts file".into()));
    }
    Ok(ClientView {
        clock,
        global_files,
        user_files,
        files,
    })
}
