//! Shared by the lab tests: bring a lab up in a temporary directory under its own namespace
//! prefix, and tear it down however the test ends.

use std::path::{Path, PathBuf};

use clan_coordination::lab;

/// Tears the lab down on drop (a failed assertion must not leave it running).
pub struct Down<'a>(pub &'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = lab::down(self.0);
    }
}

/// Brings up a 2-machine lab in `dir` with namespace `prefix`; returns its machines.toml.
pub fn up(dir: &Path, prefix: &str) -> PathBuf {
    lab::up(&lab::UpOptions {
        machines: 2,
        dir: dir.to_path_buf(),
        prefix: prefix.into(),
        install: false,
        exe: Some(env!("CARGO_BIN_EXE_clan-coord").into()),
    })
    .unwrap()
    .machines_file()
}
