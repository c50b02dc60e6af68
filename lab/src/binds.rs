//! What each lab machine has bound over the host's files and directories, and the check that the
//! binds still hold. A bind mount holds the inode it was made on: when the host's package manager
//! replaces a bound file (`/etc/shadow`, `/usr/bin/systemctl`) by a rename, the kernel drops the
//! mount in the machine too, and the machine silently sees the host's file again; when the lab's
//! own file is replaced by a rename, the machine keeps seeing the old one. Either way the machine
//! no longer runs what the lab deployed, so `lab status`, `lab up`, `lab check` and `lab rebuild`
//! look, and `lab heal` binds again.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::LabError;
use crate::process::run;
use crate::state::LabState;

/// The host directories each machine has its own of (bound below): the state directory must lie
/// outside them, or the machines would not see the lab's files.
pub(crate) const PRIVATE_DIRS: [&str; 4] = ["/etc/ssh", "/root", "/run", "/nix"];

/// Machine `m`'s binds: (source in the state directory, target inside the machine).
pub(crate) fn binds(state: &LabState, m: &str) -> Vec<(PathBuf, &'static str)> {
    let md = state.mdir(m);
    vec![
        (md.join("etc-ssh"), "/etc/ssh"),
        (md.join("root"), "/root"),
        (md.join("run"), "/run"),
        (md.join("shadow"), "/etc/shadow"),
        (state.dir.join("bin/systemctl"), "/usr/bin/systemctl"),
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
    /// Whether the machine now sees the host's own file (the host replaced it) rather than an
    /// older lab file (the lab's was replaced).
    pub host_file: bool,
}

impl std::fmt::Display for Detached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lab machine {}: {} no longer bound to {} ({}); run `clan-coord lab heal` or `lab up` again",
            self.machine,
            self.target,
            self.source.display(),
            if self.host_file {
                "the host replaced the file, and the machine sees the host's"
            } else {
                "the lab's file was replaced, and the machine still sees the old one"
            }
        )
    }
}

/// The binds of running machines that no longer show the lab's file: the file seen inside the
/// machine's mount namespace (through its anchor's `/proc/<pid>/root`) is compared by device
/// and inode with the lab's source. Machines that are not running are `lab status`'s to report.
pub fn detached(state: &LabState) -> Vec<Detached> {
    let mut out = Vec::new();
    for m in &state.machines {
        let Ok(anchor) = state.anchor(&m.name) else {
            continue;
        };
        let root = PathBuf::from(format!("/proc/{anchor}/root"));
        for (source, target) in binds(state, &m.name) {
            let seen = id(&root.join(target.trim_start_matches('/')));
            if seen.is_some() && seen == id(&source) {
                continue;
            }
            out.push(Detached {
                machine: m.name.clone(),
                target,
                host_file: seen.is_some() && seen == id(Path::new(target)),
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

/// Binds again what no longer holds on machine `m`. A stale bind (over a replaced lab file, whose
/// inode is unlinked) cannot be mounted over and is unmounted first; where the host replaced the
/// file, its bind is already gone.
pub(crate) fn rebind(state: &LabState, m: &str) -> Result<(), LabError> {
    let anchor = state.anchor(m)?.to_string();
    let in_machine = |argv: &[&str]| {
        let mut args = vec!["-t", anchor.as_str(), "-m", "--"];
        args.extend(argv);
        run("nsenter", &args)
    };
    for d in detached(state).into_iter().filter(|d| d.machine == m) {
        if !d.host_file {
            in_machine(&["umount", d.target])?;
        }
        in_machine(&["mount", "--bind", &d.source.display().to_string(), d.target])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every directory a machine gets its own of is one the state directory must avoid.
    #[test]
    fn private_dirs_are_the_directory_binds() {
        let state: LabState = serde_json::from_value(serde_json::json!({"dir": "/var/lib/lab",
            "prefix": "clab", "domain": "clan", "mgmt_net": "198.18.100.0",
            "underlay_net": "198.18.101.0", "machines": [], "pids": {}}))
        .unwrap();
        let dirs: Vec<&str> = binds(&state, "m")
            .into_iter()
            .filter(|(src, _)| !src.ends_with("shadow") && !src.ends_with("systemctl"))
            .map(|(_, t)| t)
            .collect();
        let mut want = PRIVATE_DIRS.to_vec();
        want.sort();
        let mut dirs = dirs;
        dirs.sort();
        assert_eq!(dirs, want);
    }
}
