//! What each lab machine has bound in from the lab's state directory (private directories only:
//! host keys and sshd configuration, root's home, deployed vars, the yggdrasil configuration,
//! the lab store), and the check that the binds still hold. A bind holds the directory it was
//! made on: when the lab's directory is replaced (removed and made again), the machine keeps the
//! old one and no longer runs what the lab deploys, so `lab status`, `lab up`, `lab check` and
//! `lab rebuild` look, and `lab heal` reboots the machine, which binds again.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::LabError;
use crate::state::LabState;

/// Machine `m`'s binds: (source in the state directory, target inside the machine).
pub(crate) fn binds(state: &LabState, m: &str) -> Vec<(PathBuf, &'static str)> {
    let md = state.mdir(m);
    vec![
        (md.join("etc-ssh"), "/etc/ssh"),
        (md.join("root"), "/root"),
        (md.join("run/secrets"), "/run/secrets"),
        (md.join("run/secrets-for-users"), "/run/secrets-for-users"),
        (md.join("etc-yggdrasil"), "/etc/yggdrasil"),
        (md.join("nix"), "/nix"),
    ]
}

/// A file's identity: device and inode.
fn id(p: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// One bind of a running machine that no longer shows the lab's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detached {
    /// The machine.
    pub machine: String,
    /// The path inside the machine.
    pub target: &'static str,
    /// The lab's file it should show.
    pub source: PathBuf,
    /// Whether the machine sees its root file system's own path (the bind is gone) rather than
    /// an older lab directory (the lab's was replaced).
    pub host_file: bool,
}

impl std::fmt::Display for Detached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lab machine {}: {} no longer bound to {} ({}); run `clan-coord lab heal` (reboots it) or `lab up` again",
            self.machine,
            self.target,
            self.source.display(),
            if self.host_file {
                "the bind is gone, and the machine sees its root file system's"
            } else {
                "the lab's directory was replaced, and the machine still sees the old one"
            }
        )
    }
}

/// The binds of running machines that no longer show the lab's directory: what is seen inside
/// the machine's mount namespace (through its init's `/proc/<pid>/root`) is compared by device
/// and inode with the lab's source. Machines that are not running are `lab status`'s to report.
pub fn detached(state: &LabState) -> Vec<Detached> {
    let mut out = Vec::new();
    for m in &state.machines {
        let Ok(init) = state.init(&m.name) else {
            continue;
        };
        let root = PathBuf::from(format!("/proc/{init}/root"));
        for (source, target) in binds(state, &m.name) {
            let seen = id(&root.join(target.trim_start_matches('/')));
            if seen.is_some() && seen == id(&source) {
                continue;
            }
            out.push(Detached {
                machine: m.name.clone(),
                target,
                // An old lab directory lies on the state directory's file system; the root file
                // system's own path on the machine's overlay.
                host_file: match (seen, id(&source)) {
                    (Some((d, _)), Some((sd, _))) => d != sd,
                    _ => true,
                },
                source,
            });
        }
    }
    out
}

/// Refuses to go on with a lab whose binds no longer hold (the pre-check before the lab is used).
pub(crate) fn require_bound(state: &LabState) -> Result<(), LabError> {
    let d = detached(state);
    if d.is_empty() {
        return Ok(());
    }
    Err(LabError::Invalid(
        d.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    ))
}
