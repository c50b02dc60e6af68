//! The verdict corpus: every broken cassette makes exactly its intended criterion fail, with the
//! intended finding code naming the intended machine, while the other criteria still pass; the
//! healthy cassette passes all. Failing findings must say what was seen, expected and why.

use std::path::{Path, PathBuf};

use clan_coordination::checks::Verdict;
use clan_coordination::env::Settings;
use clan_coordination::fleet::Fleet;
use rstest::rstest;

#[allow(dead_code)] // the lab half of common is for the lab tests
mod common;
mod skip;

/// The cases of `each_broken_fleet_...` are globbed when this file compiles; depending on the
/// fault table that writes the corpus (`cargo xtask broken`) recompiles it when a fleet is added.
/// tests/generated.rs fails on a broken cassette the table does not write.
const _FAULT_TABLE: &str = include_str!("../xtask/src/broken.rs");

fn verdicts(cassette: &Path) -> (Fleet, Vec<Verdict>) {
    let fleet = Fleet::open(&Settings::replay(cassette.to_path_buf()))
        .unwrap_or_else(|e| panic!("{}: {e}", cassette.display()));
    let v = common::verdicts(&fleet);
    (fleet, v)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cassettes")
}

#[test]
fn healthy_fleet_passes_every_criterion() {
    let (_, vs) = verdicts(&root().join("story-fleet.json"));
    for v in &vs {
        assert!(v.passed(), "{v}");
    }
}

/// A real run, recorded from the healthy lab (`clan-coord lab check --record tests/cassettes/lab`),
/// replays to the same verdicts: the replay path matches a live one.
#[test]
fn recorded_lab_run_replays_to_all_passing() {
    let (fleet, vs) = verdicts(&root().join("lab/cassette.json"));
    assert_eq!(fleet.machines(), vec!["hetzner-vm", "gcp-vm"]);
    for v in &vs {
        assert!(v.passed(), "{v}");
    }
}

#[test]
fn broken_corpus_has_at_least_12_fleets() {
    let files: Vec<PathBuf> = std::fs::read_dir(root().join("broken"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert!(
        files.len() >= 12,
        "the corpus needs at least 12 broken fleets, found {}",
        files.len()
    );
}

/// One case per broken fleet, named after its file.
#[rstest]
fn each_broken_fleet_fails_exactly_its_criterion_with_its_cause(
    #[base_dir = "tests/cassettes/broken"]
    #[files("*.json")]
    f: PathBuf,
) {
    let (fleet, vs) = verdicts(&f);
    let expect = fleet
        .cassette
        .as_ref()
        .and_then(|c| c.cassette.expect.clone())
        .unwrap_or_else(|| panic!("{} has no expect block", f.display()));
    for v in &vs {
        if v.criterion == expect.criterion {
            assert!(
                !v.passed(),
                "{}: {} should fail\n{v}",
                f.display(),
                v.criterion
            );
            let hit = v.failures().find(|x| {
                x.code == expect.code
                    && (x.machine == expect.machine
                        || x.to.as_deref() == Some(expect.machine.as_str()))
            });
            let hit = hit.unwrap_or_else(|| {
                panic!(
                    "{}: no failing finding {} naming {}\n{v}",
                    f.display(),
                    expect.code,
                    expect.machine
                )
            });
            assert!(
                !hit.seen.is_empty() && !hit.expected.is_empty() && !hit.cause.is_empty(),
                "{}: finding lacks seen/expected/cause: {hit}",
                f.display()
            );
            for x in v.failures() {
                assert!(
                    !x.cause.is_empty(),
                    "{}: failing finding without a likely cause: {x}",
                    f.display()
                );
            }
        } else if let Some(also) = expect.also.iter().find(|a| v.criterion == a.criterion) {
            assert!(
                v.failures()
                    .any(|x| x.code == also.code && !x.cause.is_empty()),
                "{}: {} should also fail with {}\n{v}",
                f.display(),
                v.criterion,
                also.code
            );
        } else {
            assert!(
                v.passed(),
                "{}: {} should still pass\n{v}",
                f.display(),
                v.criterion
            );
        }
    }
}

#[test]
fn missing_recording_names_machine_and_command() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("empty.json");
    std::fs::write(
        &c,
        format!(
            r#"{{"format":1,"machines_file":"{}/machines.toml","machines":{{}}}}"#,
            env!("CARGO_MANIFEST_DIR")
        ),
    )
    .unwrap();
    let (_, vs) = verdicts(&c);
    let text = vs[0].to_string();
    assert!(!vs[0].passed());
    assert!(
        text.contains("has no recording of `zerotier-cli -j info`"),
        "{text}"
    );
}

/// A slow path and one slow echo both fail AC1's RTT check, with different likely causes.
#[test]
fn one_slow_echo_is_told_from_a_slow_path() {
    let cause = |name: &str| {
        let (_, vs) = verdicts(&root().join("broken").join(name));
        let ac1 = vs.iter().find(|v| v.criterion == "AC1").unwrap();
        let f = ac1.failures().find(|x| x.code == "mesh.rtt-high").unwrap();
        (f.seen.clone(), f.cause.clone())
    };
    let (seen, why) = cause("mesh-one-slow-echo.json");
    assert!(seen.contains("echoes 119.0, 264.2, 120.2"), "{seen}");
    assert!(
        why.starts_with("one slow echo (icmp_seq=2, 264.2 ms; the other 4 at most 120.2 ms)"),
        "{why}"
    );
    let (_, why) = cause("mesh-rtt-250.json");
    assert!(why.starts_with("slow path"), "{why}");
}
