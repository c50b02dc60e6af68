//! Shared by the lab tests: bring a lab up in a temporary directory under its own namespace
//! prefix, and tear it down however the test ends.

use std::path::{Path, PathBuf};

use clan_coord_lab as lab;

/// A 2-machine lab in a temporary directory, torn down on drop (a failed assertion must not
/// leave it running).
pub struct Lab {
    tmp: tempfile::TempDir,
    /// Its machines.toml.
    pub machines: PathBuf,
}

impl Lab {
    /// Brings the lab up under namespace `prefix`; None (after printing `SKIPPED <what>: why`)
    /// where the lab cannot run, so the test passes visibly skipped.
    pub fn start(what: &str, prefix: &str) -> Option<Lab> {
        if let Some(why) = lab::unsupported() {
            eprintln!("SKIPPED {what}: {why}");
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
        },
        &mut |notice| eprintln!("{notice}"),
    )
    .unwrap()
    .machines_file()
}
