//! Shared by the lab tests: bring a lab up in a temporary directory under its own namespace
//! prefix, and tear it down however the test ends. Shared by the lab and the replay tests: the
//! verdicts of a fleet.

use std::path::{Path, PathBuf};

use clan_coord_lab as lab;
use clan_coordination::checks::Verdict;
use clan_coordination::fleet::Fleet;
use clan_coordination::names::Criterion;
use clan_coordination::suite::{self, RunOptions};

/// The verdicts on `fleet`: AC1–AC4, and AC5–AC6 too for recordings with rebuilds (the lab's).
/// The one place the tests run the checks on a whole fleet.
#[allow(dead_code)] // not every test that shares this module judges a fleet
pub fn verdicts(fleet: &Fleet) -> Vec<Verdict> {
    let mut criteria = Criterion::OBSERVED.to_vec();
    // Recordings with rebuilds (the lab's) are judged on AC5 and AC6 too.
    if fleet
        .cassette
        .as_ref()
        .is_some_and(|c| !c.cassette.workstation.is_empty())
    {
        criteria.extend([Criterion::Ac5, Criterion::Ac6]);
    }
    let progress = |l: &str| eprintln!("{l}");
    suite::run(
        fleet,
        &criteria,
        &RunOptions::verdicts_only(false, &progress),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A 2-machine lab in a temporary directory, torn down on drop (a failed assertion must not
/// leave it running).
pub struct Lab {
    tmp: tempfile::TempDir,
    /// Its machines.toml.
    pub machines: PathBuf,
}

impl Lab {
    /// Brings the lab up under namespace `prefix`; None (after reporting the skip, see `skip`)
    /// where the lab cannot run, so the test passes visibly skipped.
    #[allow(dead_code)] // each test binary uses part of this module
    pub fn start(prefix: &str) -> Option<Lab> {
        if let Some(why) = lab::unsupported() {
            crate::skip::skip(&why);
            return None;
        }
        if !clan_core_src().is_file() {
            crate::skip::skip(&format!(
                "clan-core's vendored source {} is not there (the lab's clan flake needs it)",
                clan_core_src().display()
            ));
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let machines = up(tmp.path(), prefix);
        Some(Lab { tmp, machines })
    }

    /// [`Lab::start`] with the ZeroTier overlay; None (skipped, with the reason) where the lab or
    /// ZeroTier's vendored source is not there.
    #[allow(dead_code)] // each test binary uses part of this module
    pub fn start_zerotier(prefix: &str) -> Option<Lab> {
        if let Some(why) = lab::unsupported() {
            crate::skip::skip(&why);
            return None;
        }
        if !clan_core_src().is_file() {
            crate::skip::skip(&format!(
                "clan-core's vendored source {} is not there (the lab's clan flake needs it)",
                clan_core_src().display()
            ));
            return None;
        }
        let src = zerotier_src();
        if !src.is_file() {
            crate::skip::skip(&format!(
                "ZeroTier's vendored source {} is not there",
                src.display()
            ));
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let machines = up_with(tmp.path(), prefix, "zerotier");
        Some(Lab { tmp, machines })
    }

    /// The lab directory (lab.json, clan repo, machine dirs).
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = lab::down(self.tmp.path());
    }
}

/// ZeroTier's vendored source: `COORD_ZEROTIER_SRC`, else `../shared/vendor/` beside the project.
fn zerotier_src() -> PathBuf {
    std::env::var_os("COORD_ZEROTIER_SRC").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vendor/zerotierone-1.14.1.tar.gz"),
        PathBuf::from,
    )
}

/// clan-core's vendored source: `COORD_CLAN_CORE_SRC`, else `../shared/vendor/` beside the project.
fn clan_core_src() -> PathBuf {
    std::env::var_os("COORD_CLAN_CORE_SRC").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vendor/clan-core-d7c35d91.tar.gz"),
        PathBuf::from,
    )
}

/// Brings up a 2-machine lab in `dir` with namespace `prefix`; returns its machines.toml.
#[allow(dead_code)] // each test binary uses part of this module
pub fn up(dir: &Path, prefix: &str) -> PathBuf {
    up_with(dir, prefix, "yggdrasil")
}

/// [`up`] with the given overlay (`yggdrasil` or `zerotier`).
pub fn up_with(dir: &Path, prefix: &str, overlay: &str) -> PathBuf {
    lab::up(
        &lab::UpOptions {
            machines: 2,
            dir: dir.to_path_buf(),
            prefix: prefix.into(),
            install: false,
            exe: Some(env!("CARGO_BIN_EXE_clan-coord").into()),
            cache: lab::rootfs::DEFAULT_CACHE.into(),
            overlay: overlay.into(),
            zerotier_src: zerotier_src(),
            clan_core_src: clan_core_src(),
        },
        &mut |notice| eprintln!("{notice}"),
    )
    .unwrap()
    .machines_file()
}

#[allow(dead_code)] // each test binary uses part of this module
/// The identities (device, inode) of the lab's network namespaces, read while they exist.
pub fn netns_ids(names: &[String]) -> Vec<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    names
        .iter()
        .filter_map(|n| std::fs::metadata(Path::new("/run/netns").join(n)).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect()
}

#[allow(dead_code)] // each test binary uses part of this module
/// Nothing of a lab that was brought down is left on the host: no namespace, no tracked
/// process, no process in any of its network namespaces (an orphaned `sshd: root@notty`
/// session would be one, in a namespace that no longer has a name), no cgroup and nothing
/// under `/run/systemd/nspawn` of its machines, no mount on the host under the lab's directory
/// or of its namespaces, no link in the host's namespace named for the lab.
pub fn assert_nothing_left(state: &lab::LabState, netns: &[(u64, u64)]) {
    use std::os::unix::fs::MetadataExt;
    let dir = state.dir.display().to_string();
    let ns_mounts: Vec<String> = state
        .namespaces()
        .iter()
        .map(|ns| format!("/run/netns/{ns}"))
        .collect();
    for line in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
    {
        let point = line.split(' ').nth(4).unwrap_or_default();
        assert!(
            !point.starts_with(&dir) && !ns_mounts.iter().any(|m| m == point),
            "mount {point} left behind"
        );
    }
    let links = std::process::Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(
        !links.contains(&state.prefix),
        "a link named for the lab ({}) in the host's namespace:\n{links}",
        state.prefix
    );
    for ns in state.namespaces() {
        assert!(
            !Path::new("/run/netns").join(&ns).exists(),
            "{ns} left behind"
        );
    }
    for (k, p) in &state.pids {
        assert!(!lab::alive(*p), "{k} ({p}) still running");
    }
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(m) = std::fs::metadata(e.path().join("ns/net")) else {
            continue;
        };
        if netns.contains(&(m.dev(), m.ino())) {
            let cmd = std::fs::read_to_string(e.path().join("cmdline")).unwrap_or_default();
            let state = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // A zombie waiting for its reaper holds nothing; anything else is left behind.
            assert!(
                state
                    .rsplit_once(") ")
                    .is_some_and(|(_, r)| r.starts_with('Z')),
                "process {:?} ({}) left in a lab namespace",
                e.file_name(),
                cmd.replace('\0', " ")
            );
        }
    }
    for m in &state.machines {
        let ns = format!("{}-{}", state.prefix, m.name);
        for h in ["systemd", "unified", ""] {
            let cg = Path::new("/sys/fs/cgroup")
                .join(h)
                .join("clan-coord-lab")
                .join(&ns);
            assert!(!cg.exists(), "cgroup {} left behind", cg.display());
        }
        let p = Path::new("/run/systemd/nspawn/propagate").join(&ns);
        assert!(!p.exists(), "{} left behind", p.display());
    }
}
