//! Getting `zerotier-one` 1.14.x for the lab: one on PATH if it is 1.14 or newer (copied into the
//! cache, keyed by its sha256), otherwise a build of the vendored upstream source (sha256 checked) into a cache outside the checkout,
//! keyed by that sha256, so the five-minute build happens once per machine. The build also makes
//! the lab's planet tool (`mkworld.cpp`, compiled against the same sources). Progress lines go to
//! the caller; the compiler's output to a log file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sha2::Digest;

use crate::error::LabError;
use crate::files::{io, lock_exclusive, mkdir, write};
use crate::process::run_logged;

/// The vendored source the lab builds, and its sha256 (`../shared/vendor/README.md`).
pub const SOURCE_NAME: &str = "zerotierone-1.14.1.tar.gz";
/// sha256 of [`SOURCE_NAME`].
pub const SOURCE_SHA256: &str = "62be9e40317044b7f5b1ce0d673bab5c553338caa9a7c218d8af082d159639df";
/// The build's compiler output.
pub const BUILD_LOG: &str = "/var/log/clan-coord-lab-zerotier-build.log";
/// The lab's planet generator, built with ZeroTier.
const MKWORLD: &str = include_str!("../../zerotier/mkworld.cpp");

/// Where the lab's ZeroTier programs are: `zerotier-one` (also `zerotier-cli` and
/// `zerotier-idtool` by its argv\[0\]) and `clan-coord-mkworld`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeroTier {
    /// Directory holding `zerotier-one`, `zerotier-cli`, `zerotier-idtool`, `clan-coord-mkworld`.
    pub bin: PathBuf,
}

/// Where to look for the vendored source: the path given (flag or `COORD_ZEROTIER_SRC`), else
/// `../shared/vendor/` beside the project.
pub fn default_source(project_root: &Path) -> PathBuf {
    project_root.join("../shared/vendor").join(SOURCE_NAME)
}

/// `zerotier-one -v` says `1.14.1`: is it 1.14 or newer?
pub fn new_enough(version: &str) -> bool {
    let mut p = version.trim().split('.').map(|x| x.parse::<u32>().ok());
    match (p.next().flatten(), p.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= (1, 14),
        _ => false,
    }
}

pub(crate) fn sha256_file(p: &Path) -> Result<String, LabError> {
    let mut f = std::fs::File::open(p).map_err(|e| io(p, e))?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| io(p, e))?;
    Ok(hex::encode(h.finalize()))
}

fn on_path(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(prog))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file())
}

/// The lab's ZeroTier: cached build if there, else a `zerotier-one` on PATH that is new enough
/// (the planet tool is still built from the source then), else a build from `source`.
pub fn ensure(
    cache: &Path,
    source: &Path,
    notice: &mut dyn FnMut(&str),
) -> Result<ZeroTier, LabError> {
    // A zerotier-one on PATH that is 1.14 or newer runs as it is (copied into the cache, keyed by
    // its sha256, since the machines see the cache, not the host's /usr); only the planet tool
    // is built then, from the vendored source.
    let on_path = on_path("zerotier-one").map(|p| {
        let v = Command::new(&p)
            .arg("-v")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        (p, v)
    });
    let installed = match &on_path {
        Some((p, v)) if new_enough(v) => Some((p.clone(), v.clone(), sha256_file(p)?)),
        _ => None,
    };
    let dir = match &installed {
        Some((_, _, sum)) => cache.join(format!("zerotier-path-{}", &sum[..16])),
        None => cache.join(format!("zerotier-{}", &SOURCE_SHA256[..16])),
    };
    let bin = dir.join("bin");
    let built =
        |bin: &Path| bin.join("zerotier-one").is_file() && bin.join("clan-coord-mkworld").is_file();
    if built(&bin) {
        return Ok(ZeroTier { bin });
    }
    // One build at a time: a second lab waits for the first's.
    mkdir(cache)?;
    let _lock = lock_exclusive(&cache.join("zerotier-build.lock"))?;
    if built(&bin) {
        return Ok(ZeroTier { bin });
    }
    match (&on_path, &installed) {
        (_, Some((p, v, _))) => notice(&format!(
            "lab: using {} (version {v}); building only the lab's planet tool from the vendored source",
            p.display()
        )),
        (Some((p, v)), None) => notice(&format!(
            "lab: {} is version {v:?}, older than 1.14: building the vendored source",
            p.display()
        )),
        (None, None) => {}
    }
    if !source.is_file() {
        return Err(LabError::Invalid(format!(
            "ZeroTier's source {} is not there: pass --zerotier-src or COORD_ZEROTIER_SRC \
             (the vendored {SOURCE_NAME}, sha256 {SOURCE_SHA256}); the lab's planet tool is built \
             from it even when zerotier-one 1.14 is installed",
            source.display()
        )));
    }
    // The build runs in its own directory: a relative path must not change meaning there.
    let source = &std::fs::canonicalize(source).map_err(|e| io(source, e))?;
    let sum = sha256_file(source)?;
    if sum != SOURCE_SHA256 {
        return Err(LabError::Invalid(format!(
            "{} has sha256 {sum}, not the vendored {SOURCE_NAME}'s {SOURCE_SHA256}: refusing to build it",
            source.display()
        )));
    }
    mkdir(cache)?;
    let work = dir.join("src");
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| io(&work, e))?;
    }
    mkdir(&work)?;
    notice(&format!(
        "lab: building {} from {} ({}, once per machine) into {}; compiler output: {BUILD_LOG}",
        if installed.is_some() {
            "the planet tool"
        } else {
            "ZeroTier 1.14.1"
        },
        source.display(),
        if installed.is_some() {
            "under a minute"
        } else {
            "about 5 minutes on 2 cores"
        },
        dir.display()
    ));
    let started = Instant::now();
    step(
        "tar",
        &[
            "xzf",
            &source.display().to_string(),
            "-C",
            &work.display().to_string(),
            "--strip-components=1",
        ],
        &work,
        notice,
        started,
    )?;
    let jobs = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .to_string();
    if installed.is_none() {
        step(
            "make",
            &[&format!("-j{jobs}"), "ZT_SSO_SUPPORTED=0", "one"],
            &work,
            notice,
            started,
        )?;
    }
    write(&work.join("clan-coord-mkworld.cpp"), MKWORLD, 0o644)?;
    let mut args: Vec<String> = [
        "-O2",
        "-std=c++17",
        "-pthread",
        "-I.",
        "-isystem",
        "ext",
        "-o",
        "clan-coord-mkworld",
        "clan-coord-mkworld.cpp",
    ]
    .map(String::from)
    .to_vec();
    for src in [
        "node/C25519.cpp",
        "node/Salsa20.cpp",
        "node/SHA512.cpp",
        "node/Identity.cpp",
        "node/Utils.cpp",
        "node/InetAddress.cpp",
        "osdep/OSUtils.cpp",
    ] {
        args.push(src.into());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    step("g++", &refs, &work, notice, started)?;
    let staging = dir.join("bin.partial");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| io(&staging, e))?;
    }
    mkdir(&staging)?;
    let one = match &installed {
        Some((p, _, _)) => p.clone(),
        None => work.join("zerotier-one"),
    };
    for (from, f) in [
        (one, "zerotier-one"),
        (work.join("clan-coord-mkworld"), "clan-coord-mkworld"),
    ] {
        std::fs::copy(&from, staging.join(f)).map_err(|e| io(&from, e))?;
    }
    for link in ["zerotier-cli", "zerotier-idtool"] {
        std::os::unix::fs::symlink("zerotier-one", staging.join(link))
            .map_err(|e| io(&staging.join(link), e))?;
    }
    if bin.exists() {
        std::fs::remove_dir_all(&bin).map_err(|e| io(&bin, e))?;
    }
    std::fs::rename(&staging, &bin).map_err(|e| io(&bin, e))?;
    std::fs::remove_dir_all(&work).map_err(|e| io(&work, e))?;
    notice(&format!(
        "lab: {} in {:.0?}",
        if installed.is_some() {
            "planet tool built"
        } else {
            "ZeroTier built"
        },
        started.elapsed()
    ));
    Ok(ZeroTier { bin })
}

/// Runs one build step in `dir`, output to the build log, a progress line every 30 s.
fn step(
    prog: &str,
    args: &[&str],
    dir: &Path,
    notice: &mut dyn FnMut(&str),
    started: Instant,
) -> Result<(), LabError> {
    run_logged(prog, args, Some(dir), Path::new(BUILD_LOG), &mut |_| {
        notice(&format!(
            "lab: building ZeroTier: {prog} running, {:.0?} so far",
            started.elapsed()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_1_14_are_new_enough() {
        for ok in ["1.14.1", "1.14.0\n", "1.16.0", "2.0.0"] {
            assert!(new_enough(ok), "{ok}");
        }
        for old in ["1.12.2", "1.8.4", "", "garbage"] {
            assert!(!new_enough(old), "{old}");
        }
    }

    #[test]
    fn a_source_with_another_sha256_is_refused_before_any_build() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join(SOURCE_NAME);
        std::fs::write(&src, "not the vendored tarball").unwrap();
        let e = ensure(&t.path().join("cache"), &src, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("refusing to build it") && e.contains(SOURCE_SHA256),
            "{e}"
        );
        let e = ensure(
            &t.path().join("cache"),
            &t.path().join("absent.tar.gz"),
            &mut |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("COORD_ZEROTIER_SRC"), "{e}");
    }
}
