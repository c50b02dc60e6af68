//! `[rebuild]` and `[[rebuild.artefact]]`: how machines are rebuilt (AC5/AC6) and what must be
//! identical afterwards. The command is an argv template, never a shell line, so only known
//! placeholders are allowed and machine names cannot inject anything.

use std::time::Duration;

use toml::Spanned;

use super::located::Source;
use super::raw::{RawArtefact, RawRebuild};
use crate::error::ConfigError;

/// Rebuilds (AC5/AC6): the command run on the workstation per machine and what to compare.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildConfig {
    /// argv template, split on whitespace; `{machine}`, `{flake}`, `{target}` are substituted
    /// with validated values. Never run through a shell.
    pub command: Vec<String>,
    /// Machines rebuilt at once.
    pub parallel: usize,
    /// Limit for one machine's rebuild.
    pub timeout: Duration,
    /// How long AC6 gives the mesh to form again after the rebuild restarted overlay daemons.
    pub settle: Duration,
    /// Files whose sha256 must be equal on every machine after the rebuild.
    pub artefacts: Vec<Artefact>,
    /// Units that must be running since the switch after a setting change (AC6); empty = the
    /// overlay daemon.
    pub restart_units: Vec<String>,
}

/// A file compared across machines after a rebuild.
#[derive(Debug, Clone, PartialEq)]
pub struct Artefact {
    /// Absolute path on the machines.
    pub path: String,
    /// Expected sha256 (hex), if known.
    pub expect_sha256: Option<String>,
}

/// One machine's rebuild limit in seconds: default (30 minutes), least, most (a day: a rebuild
/// that builds everything from source can take hours, never days).
const TIMEOUT_SECS: [u64; 3] = [1800, 1, 86_400];

/// How long the mesh may take to form again after AC6's rebuild: default (a restarted ZeroTier
/// node can take tens of seconds to find its peers and paths again), least (0: observe at
/// once), most (15 minutes).
const SETTLE_SECS: [u64; 3] = [60, 0, 900];

impl Default for RebuildConfig {
    fn default() -> Self {
        RebuildConfig {
            command: ["clan", "machines", "update", "{machine}"]
                .map(String::from)
                .to_vec(),
            parallel: 4,
            timeout: Duration::from_secs(TIMEOUT_SECS[0]),
            settle: Duration::from_secs(SETTLE_SECS[0]),
            artefacts: Vec::new(),
            restart_units: Vec::new(),
        }
    }
}

/// Validates `[rebuild]`; without it, `clan machines update {machine}`, 4 at once, 30 minutes.
pub(super) fn parse(src: &Source, raw: Option<RawRebuild>) -> Result<RebuildConfig, ConfigError> {
    let mut rebuild = RebuildConfig::default();
    let Some(r) = raw else {
        return Ok(rebuild);
    };
    if let Some(c) = &r.command {
        rebuild.command = command(src, c)?;
    }
    if let Some(p) = &r.parallel {
        if !(1..=64).contains(p.get_ref()) {
            return Err(src.error(
                p.span().start,
                "rebuild.parallel",
                format!("{} is out of range", p.get_ref()),
                "use 1 to 64",
            ));
        }
        rebuild.parallel = *p.get_ref();
    }
    let secs = |v: Option<&Spanned<u64>>, [default, least, most]: [u64; 3], field| {
        src.bounded(v, default, least, most, field)
            .map(Duration::from_secs)
    };
    rebuild.timeout = secs(
        r.timeout_secs.as_ref(),
        TIMEOUT_SECS,
        "rebuild.timeout_secs",
    )?;
    rebuild.settle = secs(r.settle_secs.as_ref(), SETTLE_SECS, "rebuild.settle_secs")?;
    for u in r.restart_units {
        let unit = src.unit(&u, "rebuild.restart_units", "yggdrasil.service")?;
        rebuild.restart_units.push(unit.into_string());
    }
    for a in r.artefacts {
        rebuild.artefacts.push(artefact(src, a)?);
    }
    Ok(rebuild)
}

/// The command split on whitespace; every `{...}` must be a known placeholder.
fn command(src: &Source, c: &Spanned<String>) -> Result<Vec<String>, ConfigError> {
    let argv: Vec<String> = c.get_ref().split_whitespace().map(String::from).collect();
    let bad = argv.iter().find(|a| {
        let mut rest = a.as_str();
        while let Some(i) = rest.find('{') {
            let after = &rest[i..];
            let Some(j) = after.find('}') else {
                return true;
            };
            if !matches!(&after[..=j], "{machine}" | "{flake}" | "{target}") {
                return true;
            }
            rest = &after[j + 1..];
        }
        false
    });
    if argv.is_empty() || bad.is_some() {
        return Err(src.error(
            c.span().start,
            "rebuild.command",
            match bad {
                Some(b) => format!("unknown placeholder in {b:?}"),
                None => "empty command".into(),
            },
            "use a program and arguments with {machine}, {flake} and {target} only (no shell)",
        ));
    }
    Ok(argv)
}

/// One `[[rebuild.artefact]]`: an absolute path safe to quote remotely, the digest normalised
/// to lowercase hex so it compares with `sha256sum` output.
fn artefact(src: &Source, a: RawArtefact) -> Result<Artefact, ConfigError> {
    let p = a.path.get_ref();
    if !p.starts_with('/')
        || p.split('/').any(|c| c == "..")
        || p.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(src.error(
            a.path.span().start,
            "rebuild.artefact.path",
            format!("{p:?} is not an absolute path without '..' or spaces"),
            "write the file's absolute path on the machines",
        ));
    }
    let expect_sha256 = match a.expect_sha256 {
        Some(h)
            if h.get_ref().len() == 64 && h.get_ref().bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Some(h.into_inner().to_ascii_lowercase())
        }
        Some(h) => {
            return Err(src.error(
                h.span().start,
                "rebuild.artefact.expect_sha256",
                format!("{:?} is not a sha256 hex digest", h.get_ref()),
                "64 hex digits, as `sha256sum` prints",
            ))
        }
        None => None,
    };
    Ok(Artefact {
        path: p.clone(),
        expect_sha256,
    })
}
