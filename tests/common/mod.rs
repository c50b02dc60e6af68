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
    pub fn start(prefix: &str) -> Option<Lab> {
        if let Some(why) = lab::unsupported() {
            crate::skip::skip(&why);
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let machines = up(tmp.path(), prefix);
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

/// Brings up a 2-machine lab in `dir` with namespace `prefix`; returns its machines.toml.
pub fn up(dir: &Path, prefix: &str) -> PathBuf {
    lab::up(
        &lab::UpOptions {
            machines: 2,
            dir: dir.to_path_buf(),
            prefix: prefix.into(),
            install: false,
            exe: Some(env!("CARGO_BIN_EXE_clan-coord").into()),
            cache: lab::rootfs::DEFAULT_CACHE.into(),
        },
        &mut |notice| eprintln!("{notice}"),
    )
    .unwrap()
    .machines_file()
}
