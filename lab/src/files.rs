//! Small file helpers every part of the lab uses, so that an I/O failure always names its path.

use std::path::Path;

use crate::error::LabError;

/// An I/O error on `p`.
pub(crate) fn io(p: &Path, e: std::io::Error) -> LabError {
    LabError::Io {
        path: p.to_path_buf(),
        source: e,
    }
}

/// Writes a file (creating parents) with a mode.
pub(crate) fn write(path: &Path, text: &str, mode: u32) -> Result<(), LabError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(|e| io(p, e))?;
    }
    std::fs::write(path, text).map_err(|e| io(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| io(path, e))
}

/// Creates a directory and its parents.
pub(crate) fn mkdir(p: &Path) -> Result<(), LabError> {
    std::fs::create_dir_all(p).map_err(|e| io(p, e))
}

/// Waits for and takes an exclusive `flock` on `path` (created if missing); held until the file
/// is dropped. What keeps two labs from building one cache, or changing one lab, at once.
pub(crate) fn lock_exclusive(path: &Path) -> Result<std::fs::File, LabError> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| io(path, e))?;
    // SAFETY: flock on a descriptor we own; released when the file is closed (on drop).
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io(path, std::io::Error::last_os_error()));
    }
    Ok(f)
}
