//! The acceptance criteria, one `#[test]` each.
//!
//! How this binary works:
//! - A shared rstest `#[once]` fixture opens the fleet once for the whole binary: with
//!   `--features live` one SSH session per machine (from machines.toml, or `COORD_MACHINES`),
//!   reused by every test; without it, a cassette replay (`COORD_CASSETTE`, default
//!   `tests/cassettes/story-fleet.json`). The check code is the same in both modes.
//! - Record a live run: `COORD_RECORD=tests/cassettes/new.json cargo test --features live --test coordination`.
//! - `RUST_LOG=debug` shows every command, exit status and output excerpt (test-log).
//! - AC3 pins the resolved inventory instances in `snapshots/instances-<clan>.snap`; after an
//!   intended inventory change run `cargo insta review`.
//! - AC5 and AC6 rebuild every machine. Live, they run only with `COORD_DESTRUCTIVE=1` and fail
//!   fast with "not run: destructive" otherwise; they never run at the same time. Offline they
//!   replay a rebuild recorded on the lab (`COORD_REBUILD_CASSETTE`, default
//!   `tests/cassettes/lab/cassette.json`, from `clan-coord lab check --record tests/cassettes/lab`).
//! - AC7 judges a monitor log (`clan-coord monitor --for 24h --every 5m --log FILE`) named by
//!   `COORD_MONITOR_LOG` against `COORD_AC7_SPAN` (default 24h). Offline the default log is
//!   `tests/monitor/healthy-24h.jsonl`; live a log must be named.
//! - Each test prints its verdict (run with `--nocapture` to see passing ones) and adds it to
//!   `target/coordination/report.json`.

use clan_coordination::checks::{
    ac1_mesh, ac2_ssh, ac3_services, ac4_shared, ac5_rebuild, ac6_coordination, ac7_stability,
    Verdict,
};
use clan_coordination::fleet::Fleet;
use clan_coordination::inventory::snapshot_name;
use clan_coordination::mode::{Mode, Settings};
use clan_coordination::report;
use rstest::{fixture, rstest};

/// The fleet, opened once per test binary. A failure to open is kept as text so that every test
/// reports it instead of poisoning the fixture.
#[fixture]
#[once]
fn fleet() -> Result<Fleet, String> {
    let fleet = Fleet::from_env().map_err(|e| e.to_string())?;
    if fleet.cassette.is_none() {
        // Live: everything AC1–AC4 ask, one round trip per machine, before the tests ask.
        clan_coordination::observe::prefetch(&fleet);
    }
    Ok(fleet)
}

/// The fleet AC5/AC6 rebuild: live, the same one; offline, the recorded lab rebuild.
#[fixture]
#[once]
fn rebuild_fleet() -> Result<Fleet, String> {
    if cfg!(feature = "live") {
        return Fleet::from_env().map_err(|e| e.to_string());
    }
    let cassette = std::env::var_os("COORD_REBUILD_CASSETTE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/cassettes/lab/cassette.json")
        });
    Fleet::open(&Settings {
        mode: Mode::Replay { cassette },
        machines: None,
        report_dir: "target/coordination".into(),
    })
    .map_err(|e| e.to_string())
}

/// Rebuilds never overlap.
static REBUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn open(fleet: &Result<Fleet, String>) -> &Fleet {
    match fleet {
        Ok(f) => f,
        Err(e) => panic!("cannot open the fleet:\n{e}"),
    }
}

fn conclude(fleet: &Fleet, v: Verdict) {
    println!("{v}");
    let dir = Settings::from_env(cfg!(feature = "live"))
        .map(|s| s.report_dir)
        .unwrap_or_else(|_| "target/coordination".into());
    if let Err(e) = report::record(&dir, &fleet.origin, &v) {
        eprintln!("warning: {e}");
    }
    assert!(v.passed(), "{v}");
}

#[rstest]
#[test_log::test]
fn ac1_overlay_mesh(fleet: &Result<Fleet, String>) {
    let fleet = open(fleet);
    conclude(fleet, ac1_mesh::run(fleet));
}

#[rstest]
#[test_log::test]
fn ac2_ssh_via_overlay(fleet: &Result<Fleet, String>) {
    let fleet = open(fleet);
    conclude(fleet, ac2_ssh::run(fleet));
}

#[rstest]
#[test_log::test]
fn ac3_service_instances(fleet: &Result<Fleet, String>) {
    let fleet = open(fleet);
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
        description => format!("resolved instances of {}", fleet.inventory_origin.rsplit('/').next().unwrap_or_default()),
    }, {
        insta::assert_json_snapshot!(snapshot_name(&fleet.inventory), fleet.inventory.snapshot_value());
    });
    conclude(fleet, ac3_services::run(fleet));
}

#[rstest]
#[test_log::test]
fn ac4_shared_vars(fleet: &Result<Fleet, String>) {
    let fleet = open(fleet);
    conclude(fleet, ac4_shared::run(fleet));
}

#[rstest]
#[test_log::test]
fn ac5_multi_machine_rebuild(rebuild_fleet: &Result<Fleet, String>) {
    let fleet = open(rebuild_fleet);
    let _one = REBUILDING.lock().unwrap_or_else(|p| p.into_inner());
    conclude(fleet, ac5_rebuild::run(fleet));
}

#[rstest]
#[test_log::test]
fn ac6_service_coordination(rebuild_fleet: &Result<Fleet, String>) {
    let fleet = open(rebuild_fleet);
    let _one = REBUILDING.lock().unwrap_or_else(|p| p.into_inner());
    conclude(fleet, ac6_coordination::run(fleet));
}

#[test_log::test]
fn ac7_network_stability() {
    let span = std::env::var("COORD_AC7_SPAN").unwrap_or_else(|_| "24h".into());
    let span = clan_coordination::mode::parse_duration(&span)
        .unwrap_or_else(|e| panic!("COORD_AC7_SPAN: {e}"));
    let log = match std::env::var_os("COORD_MONITOR_LOG") {
        Some(l) => std::path::PathBuf::from(l),
        None if cfg!(feature = "live") => panic!(
            "not run: AC7 judges a monitor log; run `clan-coord monitor --for 24h --every 5m --log FILE` and set COORD_MONITOR_LOG=FILE"
        ),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/monitor/healthy-24h.jsonl"),
    };
    let v = ac7_stability::run(&log, span.as_secs_f64());
    println!("{v}");
    assert!(v.passed(), "{v}");
}
