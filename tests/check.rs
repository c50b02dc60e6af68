//! `clan-coord check` replays every criterion its cassette holds evidence for, and says which it
//! did not run and why (after the table, and as `not_run` in report.json): a cassette recording
//! a failed rebuild fails AC5 and exits non-zero; a cassette that holds no rebuild runs AC1–AC4
//! and names AC5, AC6 and AC7 as not run.

use std::path::Path;
use std::process::Command;

/// Runs `check --cassette <cassette>` with a fresh report directory: exit code, stdout, and
/// report.json's `not_run`.
fn check(cassette: &str) -> (Option<i32>, String, serde_json::Value) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clan-coord"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("COORD_")) {
        cmd.env_remove(k);
    }
    let out = cmd
        .current_dir(root)
        .args(["check", "--cassette", cassette])
        .env("COORD_REPORT_DIR", report.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.path().join("report.json")).unwrap())
            .unwrap();
    (out.status.code(), stdout, json["not_run"].clone())
}

fn row<'a>(stdout: &'a str, id: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{id} ")) && l.contains("  "))
        .unwrap_or_else(|| panic!("no {id} row in\n{stdout}"))
}

#[test]
fn a_cassette_with_a_failed_rebuild_fails_ac5_and_exits_non_zero() {
    let (code, out, not_run) = check("tests/cassettes/broken/rebuild-failed.json");
    assert_eq!(code, Some(1), "{out}");
    assert!(row(&out, "AC5").contains(" FAIL "), "{out}");
    assert!(row(&out, "AC6").contains(" FAIL "), "{out}");
    for ac in ["AC1", "AC2", "AC3", "AC4"] {
        assert!(row(&out, ac).contains(" PASS "), "{out}");
    }
    assert!(out.contains("(rebuild.failed)"), "{out}");
    assert!(
        out.contains("\nnot run: AC7 (judges a monitor log)\n"),
        "{out}"
    );
    assert_eq!(
        not_run,
        serde_json::json!([{"criterion": "AC7", "reason": "judges a monitor log"}])
    );
}

/// A cassette without rebuilds (the story fleet's observations alone) runs AC1–AC4 and names
/// AC5, AC6 and AC7 as not run.
#[test]
fn a_cassette_without_rebuilds_says_what_it_did_not_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let story = root.join("tests/cassettes/story-fleet/cassette.json");
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&story).unwrap()).unwrap();
    c["workstation"]
        .as_array_mut()
        .unwrap()
        .retain(|e| !e["command"].as_str().unwrap().contains(" rebuild "));
    c["machines_file"] = root
        .join("tests/cassettes/story-fleet/machines.toml")
        .display()
        .to_string()
        .into();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("observations-only.json");
    std::fs::write(&path, c.to_string()).unwrap();
    let (code, out, not_run) = check(path.to_str().unwrap());
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "\nnot run: AC5, AC6 (no rebuild in this cassette), AC7 (judges a monitor log)\n"
        ),
        "{out}"
    );
    assert!(!out.lines().any(|l| l.starts_with("AC5 ")), "{out}");
    let ids: Vec<&str> = not_run
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["criterion"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["AC5", "AC6", "AC7"]);
}

/// The story fleet (the ZeroTier lab's recording) and the yggdrasil lab's both hold their two
/// rebuild rounds: all six criteria run and pass.
#[rstest::rstest]
#[case("tests/cassettes/story-fleet/cassette.json")]
#[case("tests/cassettes/lab/cassette.json")]
fn a_recording_with_rebuilds_runs_ac5_and_ac6_and_passes(#[case] cassette: &str) {
    let (code, out, _) = check(cassette);
    assert_eq!(code, Some(0), "{out}");
    for ac in ["AC1", "AC2", "AC3", "AC4", "AC5", "AC6"] {
        assert!(row(&out, ac).contains(" PASS "), "{out}");
    }
    assert!(
        out.contains("\nnot run: AC7 (judges a monitor log)\n"),
        "{out}"
    );
}

/// `check` is live unless asked to replay: the repo's example machines.toml names documentation
/// addresses, so a live `check` refuses it and says how to replay; `--replay` replays the story.
#[test]
fn check_is_live_unless_asked_to_replay() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_clan-coord"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("COORD_")) {
            cmd.env_remove(k);
        }
        let report = tempfile::tempdir().unwrap();
        let out = cmd
            .current_dir(root)
            .args(args)
            .env("COORD_REPORT_DIR", report.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&["check"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("documentation address") && err.contains("check --replay"),
        "{err}"
    );
    assert!(!err.contains("has no recording"), "{err}");
    let (code, out, err) = run(&["check", "--replay"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("fleet: ")
            && out.contains("(replay of tests/cassettes/story-fleet/cassette.json)"),
        "{out}"
    );
    let (code, _, err) = run(&["check", "--replay", "a.json", "--cassette", "b.json"]);
    assert_eq!(code, Some(2), "{err}");
}
