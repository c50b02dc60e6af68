//! The design card's interface, end to end on a lab, as an operator runs it:
//! `cargo test --features live --test coordination` against the lab's machines.toml.
//!
//! - Healthy: exit 0, AC1–AC4 pass, AC5–AC7 show as ignored with their reasons.
//! - `--ignored ac5` without `COORD_DESTRUCTIVE=1` fails at once ("not run: destructive").
//! - With the opt-ins and `--include-ignored`: all seven pass (AC7 from a short monitor run).
//! - With a fault (the overlay stopped on gcp-vm): AC1 fails, naming the machine.
//! - The `cargo insta review` loop: an instance added to the lab clan's inventory makes AC3 fail
//!   with the snapshot diff naming it; `INSTA_UPDATE=always` (what accepting in `cargo insta
//!   review` writes) accepts it; the next run passes.
//!
//! The nested cargo builds the live test binary once (its dependencies are already built) in the
//! same target directory. Skips, visibly, where the lab cannot run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clan_coord_lab as lab;

mod common;
mod skip;

/// A nested `cargo test` that takes longer than this is killed and fails the test.
const CARGO_DEADLINE: Duration = Duration::from_secs(1200);

/// What one nested run printed, stdout and stderr together, and whether it exited 0.
struct Run {
    ok: bool,
    text: String,
}

/// `cargo test --features live --test coordination -- <args>` against the lab, with only the
/// `COORD_*`/`INSTA_*` variables given here (none inherited).
fn live(machines: &Path, work: &Path, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["test", "--features", "live", "--test", "coordination", "--"])
        .args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("COORD_") || k.starts_with("INSTA_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("COORD_MACHINES", machines)
        .env("COORD_REPORT_DIR", work.join("report"))
        .env("COORD_SNAPSHOT_DIR", work.join("snapshots"))
        .env("INSTA_UPDATE", "no")
        .envs(vars.iter().copied());
    let out_path = work.join("cargo.out");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = cmd
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > CARGO_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cargo test {args:?} ran over {CARGO_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = std::fs::read_to_string(&out_path).unwrap();
    eprintln!("--- cargo test -- {args:?} {vars:?}: {status}\n{text}");
    Run {
        ok: status.success(),
        text,
    }
}

#[test_log::test]
fn the_live_interface_on_the_lab() {
    let Some(l) = common::Lab::start("clabi") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::create_dir_all(w.join("snapshots")).unwrap();
    let snap = "instances-lab-clan.snap";
    std::fs::copy(
        Path::new("snapshots").join(snap),
        w.join("snapshots").join(snap),
    )
    .unwrap();
    let m = &l.machines;

    // Healthy, safe checks only.
    let r = live(m, w, &[], &[]);
    assert!(r.ok, "a healthy lab must pass the safe checks");
    assert!(r.text.contains("4 passed; 0 failed; 3 ignored"), "summary");
    for (test, why) in [
        (
            "ac5_multi_machine_rebuild",
            "destructive: rebuilds every machine",
        ),
        (
            "ac6_service_coordination",
            "destructive: rebuilds every machine",
        ),
        ("ac7_network_stability", "judges a monitor log"),
    ] {
        assert!(
            r.text.contains(&format!("test {test} ... ignored, {why}")),
            "{test} is shown ignored with its reason"
        );
    }

    // Asked for without its opt-in: fails at once.
    let r = live(m, w, &["--ignored", "ac5"], &[]);
    assert!(
        !r.ok && r.text.contains("not run: destructive"),
        "AC5 needs COORD_DESTRUCTIVE=1"
    );

    // Everything, with the opt-ins: AC7 judges a short monitor run.
    let log = w.join("monitor.jsonl");
    let status = Command::new(env!("CARGO_BIN_EXE_clan-coord"))
        .args(["monitor", "--machines"])
        .arg(m)
        .args(["--for", "8s", "--every", "2s", "--log"])
        .arg(&log)
        .status()
        .unwrap();
    assert!(status.success(), "monitor");
    let log = log.to_string_lossy().into_owned();
    let r = live(
        m,
        w,
        &["--include-ignored"],
        &[
            ("COORD_DESTRUCTIVE", "1"),
            ("COORD_MONITOR_LOG", &log),
            ("COORD_AC7_SPAN", "8s"),
        ],
    );
    assert!(
        r.ok && r.text.contains("7 passed; 0 failed; 0 ignored"),
        "all seven"
    );

    // A fault fails the test it affects, naming the machine.
    lab::fault(l.dir(), "gcp-vm", lab::Fault::OverlayDown).unwrap();
    let r = live(m, w, &["ac1"], &[]);
    lab::heal(l.dir(), None).unwrap();
    assert!(!r.ok, "AC1 must fail with the overlay down");
    assert!(r.text.contains("test ac1_overlay_mesh ... FAILED") && r.text.contains("gcp-vm"));

    // The insta review loop after an inventory change: a new instance, written the way clan's
    // own tools add one (the clan root's inventory.json, which clan-core merges into the
    // inventory); the harness sees it through clan-core's evaluation of the lab's flake.
    let inventory = l.dir().join("clan/inventory.json");
    let added = serde_json::json!({"instances": {"emergency-access-ops": {
        "module": {"input": "clan-core", "name": "emergency-access"},
        "roles": {"default": {"machines": {"gcp-vm": {}}}}
    }}});
    std::fs::write(&inventory, serde_json::to_string_pretty(&added).unwrap()).unwrap();
    let r = live(m, w, &["ac3"], &[]);
    assert!(!r.ok, "AC3 must fail on an unreviewed inventory change");
    assert!(
        r.text.contains("+  \"emergency-access-ops\"") || r.text.contains("emergency-access-ops"),
        "the snapshot diff names the new instance"
    );
    let r = live(m, w, &["ac3"], &[("INSTA_UPDATE", "always")]);
    assert!(r.ok, "accepting the change");
    let pinned = std::fs::read_to_string(w.join("snapshots").join(snap)).unwrap();
    assert!(
        pinned.contains("emergency-access-ops"),
        "the accepted snapshot holds the change"
    );
    let r = live(m, w, &["ac3"], &[]);
    assert!(r.ok, "the next run passes");
}
