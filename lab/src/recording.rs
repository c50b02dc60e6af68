//! Recording a live run of the lab for offline replay: the lab's public clan repo and a
//! machines.toml beside the cassette, so the recording replays without the lab.

use std::path::{Path, PathBuf};

use crate::error::LabError;
use crate::files::{io, mkdir, write};
use crate::repo;
use crate::state::LabState;

/// Records a live run of the running lab for offline replay: copies the lab's clan repo (public
/// vars, placeholders, inventory) to `<out>/clan`, writes `<out>/machines.toml` pointing at it and
/// returns the path the cassette should be recorded to (`<out>/cassette.json`).
pub fn prepare_recording(state: &LabState, out: &Path) -> Result<PathBuf, LabError> {
    let clan = out.join("clan");
    let _ = std::fs::remove_dir_all(&clan);
    copy_tree(&state.dir.join("clan"), &clan)?;
    write(
        &out.join("machines.toml"),
        &repo::machines_toml_with(
            state,
            "clan",
            "Recorded from the lab for offline replay: tests/verdicts.rs replays cassette.json",
        ),
        0o644,
    )?;
    Ok(out.join("cassette.json"))
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), LabError> {
    mkdir(to)?;
    for e in std::fs::read_dir(from).map_err(|e| io(from, e))? {
        let e = e.map_err(|e| io(from, e))?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type().map_err(|e| io(&src, e))?;
        if ft.is_symlink() {
            let target = std::fs::read_link(&src).map_err(|e| io(&src, e))?;
            std::os::unix::fs::symlink(target, &dst).map_err(|e| io(&dst, e))?;
        } else if ft.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| io(&src, e))?;
        }
    }
    Ok(())
}

/// Points a finished recording at its own machines.toml and says where it came from.
pub fn finish_recording(state: &LabState, out: &Path) -> Result<(), LabError> {
    let machines = state.machines.len();
    let p = out.join("cassette.json");
    // The workstation's `nix eval` of the lab's flake names it by its path in the lab directory;
    // the recording names it `path:clan`, as its machines.toml does, so a replay answers with
    // what clan-core evaluated live.
    let live_flake = format!("path:{}#", state.dir.join("clan").display());
    let text = std::fs::read_to_string(&p)
        .map_err(|e| io(&p, e))?
        .replace(&live_flake, "path:clan#");
    let mut v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| LabError::Invalid(format!("{}: {e}", p.display())))?;
    v["machines_file"] = serde_json::json!("machines.toml");
    v["description"] = serde_json::json!(format!(
        "recorded live from a healthy {machines}-machine clan-coord lab (`clan-coord lab check --record`)"
    ));
    write(
        &p,
        &(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"),
        0o644,
    )
}
