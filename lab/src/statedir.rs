//! The lab's state directory. It holds the lab's private test keys and `lab.json`, whose pids
//! the lab signals and whose namespaces it deletes, as root: whoever can write it steers a root
//! process. So it must be a real directory of the lab's own user that nobody else can write; the
//! lab creates it with mode 0700 and refuses one that is a symlink, another user's, or writable
//! by group or others.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::LabError;
use crate::files::io;

/// Where the lab keeps its state unless told otherwise: under `/var/lib`, which only root can
/// write (a fixed name under world-writable `/tmp` can be made by anyone before the lab runs).
pub const DEFAULT_DIR: &str = "/var/lib/clan-coord-lab";

/// This process's effective uid: the owner the state directory must have.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Why `meta` (of `dir`, not followed) is no safe state directory for a process of `uid`.
fn unsafe_because(meta: &std::fs::Metadata, uid: u32) -> Option<(&'static str, &'static str)> {
    if meta.file_type().is_symlink() {
        Some((
            "is a symlink",
            "remove the link, or pass --dir a real directory",
        ))
    } else if !meta.is_dir() {
        Some(("is not a directory", "pass --dir a directory"))
    } else {
        unsafe_owner(meta, uid)
    }
}

/// Why a file or directory is writable by someone other than `uid`.
fn unsafe_owner(meta: &std::fs::Metadata, uid: u32) -> Option<(&'static str, &'static str)> {
    if meta.uid() != uid {
        Some((
            "is owned by another user",
            "pass --dir a directory of your own (the default is created for you)",
        ))
    } else if meta.mode() & 0o022 != 0 {
        Some((
            "is writable by group or others",
            "chmod 700 it, or pass --dir another directory",
        ))
    } else {
        None
    }
}

/// Checks an existing state directory; Ok(false) when there is none.
pub(crate) fn check(dir: &Path) -> Result<bool, LabError> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io(dir, e)),
    };
    let uid = euid();
    match unsafe_because(&meta, uid) {
        None => Ok(true),
        Some((why, fix)) => Err(LabError::UnsafeStateDir {
            dir: dir.to_path_buf(),
            why: format!(
                "{why} (owner uid {}, mode {:o}; the lab runs as uid {uid})",
                meta.uid(),
                meta.mode() & 0o7777
            ),
            fix: fix.into(),
        }),
    }
}

/// Checks a program the lab runs from its state directory: a regular file (not a link) of this
/// user's that nobody else can write.
pub(crate) fn check_file(p: &Path) -> Result<(), LabError> {
    let meta = std::fs::symlink_metadata(p).map_err(|e| io(p, e))?;
    let uid = euid();
    let why = if meta.file_type().is_file() {
        unsafe_owner(&meta, uid)
    } else {
        Some(("is not a regular file", "run `clan-coord lab up` again"))
    };
    match why {
        None => Ok(()),
        Some((why, _)) => Err(LabError::Invalid(format!(
            "{}: the lab's binary {why}; refusing to run it (run `clan-coord lab up` again)",
            p.display()
        ))),
    }
}

/// Puts the lab's own clan-coord binary at `dst` (in the state directory): a hard link to `exe`
/// when it is this user's and nobody else can write it, else a copy. Relays and rebuilds run
/// this file, never a path read back from lab.json.
pub(crate) fn install_exe(exe: &Path, dst: &Path) -> Result<(), LabError> {
    use std::os::unix::fs::PermissionsExt;
    let exe = std::fs::canonicalize(exe).map_err(|e| io(exe, e))?;
    let meta = std::fs::metadata(&exe).map_err(|e| io(&exe, e))?;
    if !meta.is_file() {
        return Err(LabError::Invalid(format!(
            "{}: the clan-coord binary is not a file",
            exe.display()
        )));
    }
    if let Some(p) = dst.parent() {
        std::fs::create_dir_all(p).map_err(|e| io(p, e))?;
    }
    let _ = std::fs::remove_file(dst);
    let uid = euid();
    if unsafe_owner(&meta, uid).is_none() && std::fs::hard_link(&exe, dst).is_ok() {
        return Ok(());
    }
    std::fs::copy(&exe, dst).map_err(|e| io(dst, e))?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(0o700)).map_err(|e| io(dst, e))
}

/// Creates the state directory (mode 0700; its parents as usual) when missing, checks it, and
/// returns its canonical path.
pub(crate) fn create(dir: &Path) -> Result<PathBuf, LabError> {
    if !check(dir)? {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|e| io(dir, e))?;
        check(dir)?;
    }
    std::fs::canonicalize(dir).map_err(|e| io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_lab_creates_its_directory_private() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/lab");
        let made = create(&d).unwrap();
        let mode = std::fs::metadata(&made).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // Again: an existing good directory is fine.
        assert_eq!(create(&d).unwrap(), made);
    }

    #[test]
    fn unsafe_directories_are_refused_with_a_fix() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("lab");
        create(&d).unwrap();
        for mode in [0o777, 0o770, 0o1777] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = create(&d).unwrap_err().to_string();
            assert!(
                e.contains("writable by group or others") && e.contains("chmod 700"),
                "{e}"
            );
        }
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(check(&d).unwrap(), "0755 is not writable by others");
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert!(check(&link)
            .unwrap_err()
            .to_string()
            .contains("is a symlink"));
        let file = t.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(check(&file)
            .unwrap_err()
            .to_string()
            .contains("not a directory"));
        assert!(!check(&t.path().join("missing")).unwrap());
    }

    #[test]
    fn the_labs_binary_is_linked_when_safe_and_copied_otherwise() {
        let t = tempfile::tempdir().unwrap();
        let exe = t.path().join("clan-coord-src");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dst = t.path().join("lab/bin/clan-coord");
        install_exe(&exe, &dst).unwrap();
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(ino(&dst), ino(&exe), "a safe binary is linked");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o777)).unwrap();
        install_exe(&exe, &dst).unwrap();
        assert_ne!(ino(&dst), ino(&exe), "a writable one is copied");
        assert_eq!(std::fs::metadata(&dst).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn another_users_directory_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let meta = std::fs::symlink_metadata(t.path()).unwrap();
        let (why, _) = unsafe_because(&meta, meta.uid() + 1).unwrap();
        assert_eq!(why, "is owned by another user");
    }
}
