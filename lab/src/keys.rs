//! Real OpenSSH key material for the lab and the loopback tests, made by `ssh-keygen` exactly as an
//! operator (or clan's `openssh` generators) would make it: ed25519 keys, a CA, host certificates
//! with principal `<machine>.<domain>` and no validity limit. Every key made here is a test key.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::LabError;

/// Runs `ssh-keygen` with `args`, mapping failure to a [`LabError`] that carries its stderr.
fn keygen(args: &[&std::ffi::OsStr]) -> Result<(), LabError> {
    let out = Command::new("ssh-keygen")
        .args(args)
        .output()
        .map_err(|e| LabError::Tool {
            tool: "ssh-keygen".into(),
            reason: format!("cannot start: {e} (install openssh-client)"),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Tool {
            tool: "ssh-keygen".into(),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Makes an unencrypted ed25519 key pair at `path` / `path.pub` unless it already exists.
pub fn ed25519(path: &Path, comment: &str) -> Result<PathBuf, LabError> {
    if !path.exists() {
        keygen(&[
            "-q".as_ref(),
            "-t".as_ref(),
            "ed25519".as_ref(),
            "-N".as_ref(),
            "".as_ref(),
            "-C".as_ref(),
            comment.as_ref(),
            "-f".as_ref(),
            path.as_os_str(),
        ])?;
    }
    Ok(pub_path(path))
}

/// Signs `host_pub` with `ca` as a host certificate for `principal`; returns the `-cert.pub` path.
pub fn sign_host(
    ca: &Path,
    host_pub: &Path,
    identity: &str,
    principal: &str,
) -> Result<PathBuf, LabError> {
    keygen(&[
        "-q".as_ref(),
        "-s".as_ref(),
        ca.as_os_str(),
        "-I".as_ref(),
        identity.as_ref(),
        "-h".as_ref(),
        "-n".as_ref(),
        principal.as_ref(),
        host_pub.as_os_str(),
    ])?;
    let stem = host_pub.to_string_lossy();
    let stem = stem.strip_suffix(".pub").unwrap_or(&stem);
    Ok(PathBuf::from(format!("{stem}-cert.pub")))
}

/// `key` → `key.pub`.
pub fn pub_path(key: &Path) -> PathBuf {
    let mut s = key.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}
