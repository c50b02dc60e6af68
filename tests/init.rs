//! `clan-coord init`: a machines.toml from the operator's clan that `plan` accepts, every machine
//! with its targetHost, what is left out said with the reason (stdout pinned by insta).

use std::path::Path;
use std::process::Command;

fn init(args: &[&str]) -> (Option<i32>, String, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clan-coord"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("COORD_")) {
        cmd.env_remove(k);
    }
    let out = cmd
        .current_dir(root)
        .arg("init")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Pins `text` in snapshots/ (the top-level directory of every insta snapshot here).
fn pin(name: &str, text: &str) {
    insta::with_settings!({
        snapshot_path => Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

/// What `plan` would make of it: the machines.toml parses as the crate root's.
fn accepted(text: &str) -> clan_coordination::config::FleetConfig {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    clan_coordination::config::parse(&root.join("machines.toml"), text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn init_on_the_example_clan_writes_what_plan_accepts() {
    let (code, out, err) = init(&[
        "--inventory",
        "examples/test-clan/inventory.json",
        "--out",
        "-",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let c = accepted(&out);
    assert_eq!(c.machines.len(), 2);
    pin("init-test-clan", &out);
}

#[test]
fn init_on_ten_machines_says_what_it_left_out_and_why() {
    let (code, out, err) = init(&[
        "--inventory",
        "tests/init/inventory-ten-machines.json",
        "--out",
        "-",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let c = accepted(&out);
    let names: Vec<&str> = c.machines.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["builder", "db-1", "edge-v6", "vpn-gw", "web-1", "web-2"]
    );
    for (m, why) in [
        ("macbook", "machineClass darwin"),
        ("mac-mini", "machineClass darwin"),
        ("new-box", "no deploy.targetHost"),
        ("lab-pi", "no deploy.targetHost"),
    ] {
        assert!(
            err.contains(&format!("init: left out {m}: {why}")),
            "{m}: {err}"
        );
        assert!(
            out.contains(&format!("# Left out: {m}: {why}")),
            "{m}: {out}"
        );
    }
    pin(
        "init-ten-machines",
        &format!("{out}\n--- stderr ---\n{err}"),
    );
}

#[test]
fn init_never_overwrites_and_writes_paths_relative_to_its_file() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("machines.toml");
    std::fs::write(&out, "mine").unwrap();
    let o = out.display().to_string();
    let (code, _, err) = init(&[
        "--inventory",
        "examples/test-clan/inventory.json",
        "--out",
        &o,
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("never overwrites"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "mine");
    let (code, _, err) = init(&[
        "--inventory",
        "examples/test-clan/inventory.json",
        "--out",
        &o,
        "--force",
    ]);
    assert_eq!(code, Some(0), "{err}");
    // Loaded from where it was written: its relative paths lead back to the example clan.
    let c = clan_coordination::config::load(&out).unwrap();
    assert!(
        c.clan_dir.ends_with("examples/test-clan"),
        "{:?}",
        c.clan_dir
    );
    let (code, _, err) = init(&["--out", "-"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--flake"), "{err}");
}
