//! The commands that read an operator's clan itself: `init` (a first machines.toml from the
//! inventory) and where `inventory`/`oracle` get their serialization (a file, or the flake
//! evaluated by clan-core through `nix eval`).

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use clan_coordination::error::InventoryError;
use clan_coordination::fleet::nix_eval_inventory;
use clan_coordination::init;
use clan_coordination::transport::local::Workstation;
use clan_coordination::transport::Transport;

/// A clan's inventory serialization: `nix eval` of the flake at `flake`, or the file `file`;
/// its text and where it came from.
pub(crate) fn serialization(
    flake: Option<&Path>,
    file: Option<&Path>,
) -> Result<(String, String), clan_coordination::Error> {
    match (flake, file) {
        (Some(dir), _) => eval(&nix_eval_inventory(&flake_ref(dir)?)),
        (None, Some(f)) => {
            let text = std::fs::read_to_string(f).map_err(|e| InventoryError::Read {
                path: f.to_path_buf(),
                source: e,
            })?;
            Ok((text, f.display().to_string()))
        }
        (None, None) => Err(InventoryError::Shape {
            origin: "the command line".into(),
            problem: "give --flake DIR (the clan repo, evaluated with nix) or an inventory serialization file".into(),
        }
        .into()),
    }
}

/// The fleet's addresses as the clan flake at `dir` exports them (`clan.exports`).
pub(crate) fn exports(
    dir: &Path,
) -> Result<Vec<clan_coordination::oracle::exports::ExportedPeer>, clan_coordination::Error> {
    let (text, origin) = eval(&clan_coordination::fleet::nix_eval_exports(&flake_ref(
        dir,
    )?))?;
    let v = serde_json::from_str(&text).map_err(|e| InventoryError::Shape {
        origin,
        problem: format!("not JSON: {e}"),
    })?;
    Ok(clan_coordination::oracle::exports::parse(&v))
}

/// Runs a `nix eval` on the workstation: its output and the command, or nix's words.
fn eval(
    cmd: &clan_coordination::transport::Cmd,
) -> Result<(String, String), clan_coordination::Error> {
    let ws = Workstation {
        timeout: std::time::Duration::from_secs(300),
    };
    let out = ws.run(cmd)?;
    if !out.success() {
        return Err(InventoryError::Shape {
            origin: cmd.text().to_string(),
            problem: format!(
                "nix eval failed: {}",
                clan_coordination::redact::excerpt(&out.stderr, 600)
            ),
        }
        .into());
    }
    Ok((out.stdout, cmd.text().to_string()))
}

/// `path:<absolute dir>`: a plain directory as a flake (a bare path inside a git checkout would
/// see only tracked files).
fn flake_ref(dir: &Path) -> Result<String, clan_coordination::Error> {
    let abs = std::fs::canonicalize(dir).map_err(|e| InventoryError::Read {
        path: dir.to_path_buf(),
        source: e,
    })?;
    if !abs.join("flake.nix").is_file() {
        return Err(InventoryError::Shape {
            origin: abs.display().to_string(),
            problem: "no flake.nix: give the clan repo's root".into(),
        }
        .into());
    }
    Ok(format!("path:{}", abs.display()))
}

/// `target` relative to directory `base` (both made absolute), as machines.toml resolves paths.
fn relative(target: &Path, base: &Path) -> PathBuf {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (t, b) = (abs(target), abs(base));
    let tc: Vec<Component> = t.components().collect();
    let bc: Vec<Component> = b.components().collect();
    let common = tc.iter().zip(&bc).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..bc.len() {
        out.push("..");
    }
    for c in &tc[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// `clan-coord init`: writes (or prints, with `-`) a machines.toml from the clan's inventory.
pub(crate) fn init_command(
    flake: Option<&Path>,
    inventory: Option<&Path>,
    out: &Path,
    force: bool,
) -> Result<ExitCode, clan_coordination::Error> {
    let to_stdout = out == Path::new("-");
    if !to_stdout && out.exists() && !force {
        return Err(clan_coordination::Error::Env {
            var: "--out",
            value: out.display().to_string(),
            reason: "exists: init never overwrites a machines.toml; pass --force, or another --out"
                .into(),
        });
    }
    let (text, origin) = serialization(flake, inventory)?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| InventoryError::Shape {
            origin: origin.clone(),
            problem: format!("not JSON: {e}"),
        })?;
    // Paths as machines.toml resolves them: relative to its own directory (stdout: the
    // working directory).
    let base = if to_stdout {
        PathBuf::from(".")
    } else {
        out.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    };
    let rel = |p: &Path| relative(p, &base).display().to_string();
    let source = match (flake, inventory) {
        (Some(dir), _) => init::Source::Flake {
            clan_dir: rel(dir),
            flake: flake_ref(dir)?,
        },
        (None, Some(f)) => init::Source::File {
            clan_dir: rel(f.parent().unwrap_or(Path::new("."))),
            inventory_json: rel(f),
        },
        (None, None) => return serialization(None, None).map(|_| ExitCode::FAILURE),
    };
    let found = init::read(&value);
    let from = match (flake, inventory) {
        (Some(d), _) => format!("the flake {}", d.display()),
        (None, Some(f)) => format!("the inventory {}", f.display()),
        (None, None) => String::new(),
    };
    let toml = init::machines_toml(&found, &source, &from);
    if to_stdout {
        print!("{toml}");
    } else {
        std::fs::write(out, &toml).map_err(|e| clan_coordination::Error::Write {
            path: out.to_path_buf(),
            source: e,
        })?;
    }
    eprintln!(
        "init: {} machine(s) written{}",
        found.targets.len(),
        if to_stdout {
            String::new()
        } else {
            format!(" to {}", out.display())
        }
    );
    for (m, why) in &found.left_out {
        eprintln!("init: left out {m}: {why}");
    }
    if let Err(why) = &found.overlay {
        eprintln!("init: overlay not set: {why}");
    }
    eprintln!(
        "init: review the lines marked DECIDE (authentication, thresholds) before a live run"
    );
    Ok(ExitCode::SUCCESS)
}
