//! The acceptance criteria, one `#[test]` each.
//!
//! How this binary works:
//! - A shared rstest `#[once]` fixture opens the fleet once for the whole binary: with
//!   `--features live` one SSH session per machine (from machines.toml, or `COORD_MACHINES`),
//!   reused by every test; without it, a cassette replay (`COORD_CASSETTE`, default
//!   `tests/cassettes/story-fleet/cassette.json`). The check code is the same in both modes.
//! - Record a live run: `COORD_RECORD=tests/cassettes/new.json cargo test --features live --test coordination`.
//! - `RUST_LOG=debug` shows every command, exit status and output excerpt (test-log).
//! - AC3 pins the resolved inventory instances in `snapshots/instances-<clan>.snap`
//!   (`COORD_SNAPSHOT_DIR` to use another directory); after an intended inventory change run
//!   `cargo insta review`.
//! - AC5 and AC6 rebuild every machine. In a live build they are ignored unless asked for
//!   (`-- --ignored ac5 ac6` or `--include-ignored`), run only with `COORD_DESTRUCTIVE=1` and fail
//!   fast with "not run: destructive" otherwise; they never run at the same time. Offline they
//!   replay a rebuild recorded on the lab (`COORD_REBUILD_CASSETTE`, default the story fleet's,
//!   from `clan-coord lab check --record tests/cassettes/story-fleet`: AC6 changes the zerotier
//!   network's MTU).
//! - AC7 judges a monitor log (`clan-coord monitor --for 24h --every 5m --log FILE`) named by
//!   `COORD_MONITOR_LOG` against `COORD_AC7_SPAN` (default 24h). Offline the default log is
//!   `tests/monitor/healthy-24h.jsonl`; in a live build the test is ignored unless asked for, and
//!   then a log must be named.
//! - Each test prints its verdict (run with `--nocapture` to see passing ones) and adds it to
//!   `target/coordination/report.json`.

use std::path::PathBuf;

use clan_coordination::checks::{self, ac7_stability, Verdict};
use clan_coordination::env::{Mode, Settings};
use clan_coordination::fleet::Fleet;
use clan_coordination::inventory::{pinned_snapshot, snapshot_name};
use clan_coordination::names::Criterion;
use clan_coordination::observe::Observations;
use clan_coordination::report;
use clan_coordination::suite::{self, RunOptions};
use rstest::{fixture, rstest};

/// The switches, the fleet and its one observation for AC1–AC4.
struct Observed {
    settings: Settings,
    fleet: Fleet,
    obs: Observations,
}

/// Opened once per test binary and observed once (one round trip per machine). A failure to
/// open is kept as text so that every test reports it instead of poisoning the fixture.
#[fixture]
#[once]
fn observed() -> Result<Observed, String> {
    let settings = Settings::from_env(cfg!(feature = "live")).map_err(|e| e.to_string())?;
    let fleet = Fleet::open(&settings).map_err(|e| e.to_string())?;
    let obs = suite::observe_read_only(&fleet, &Criterion::OBSERVED);
    Ok(Observed {
        settings,
        fleet,
        obs,
    })
}

/// The fleet AC5/AC6 rebuild: live, the same machines; offline, the recorded lab rebuild.
#[fixture]
#[once]
fn rebuild_fleet() -> Result<(Settings, Fleet), String> {
    let settings = Settings::from_env(cfg!(feature = "live")).map_err(|e| e.to_string())?;
    let mut open = settings.clone();
    if let Mode::Replay { .. } = settings.mode {
        open.mode = Mode::Replay {
            cassette: settings.rebuild_cassette.clone(),
        };
        open.machines = None;
    }
    let fleet = Fleet::open(&open).map_err(|e| e.to_string())?;
    Ok((settings, fleet))
}

/// Rebuilds never overlap.
static REBUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn open<T>(r: &Result<T, String>) -> &T {
    match r {
        Ok(x) => x,
        Err(e) => panic!("cannot open the fleet:\n{e}"),
    }
}

fn conclude(settings: &Settings, fleet: &Fleet, v: Verdict) {
    println!("{v}");
    if let Err(e) = report::record(&settings.report_dir, &fleet.origin.to_string(), &v) {
        eprintln!("warning: {e}");
    }
    assert!(v.passed(), "{v}");
}

fn judge(o: &Result<Observed, String>, c: Criterion) {
    let o = open(o);
    conclude(
        &o.settings,
        &o.fleet,
        checks::evaluate(c, &o.fleet.expect, &o.obs),
    );
}

fn rebuilt(r: &Result<(Settings, Fleet), String>, c: Criterion) {
    let (settings, fleet) = open(r);
    let _one = REBUILDING.lock().unwrap_or_else(|p| p.into_inner());
    let progress = |l: &str| eprintln!("{l}");
    let opts = RunOptions {
        destructive: settings.destructive,
        report_dir: None,
        log_dir: settings.report_dir.clone(),
        progress: &progress,
        before_rebuild: None,
    };
    let v = suite::rebuild_verdict(fleet, c, &opts).unwrap_or_else(|e| panic!("{e}"));
    conclude(settings, fleet, v);
}

#[rstest]
#[test_log::test]
fn ac1_overlay_mesh(observed: &Result<Observed, String>) {
    judge(observed, Criterion::Ac1);
}

#[rstest]
#[test_log::test]
fn ac2_ssh_via_overlay(observed: &Result<Observed, String>) {
    judge(observed, Criterion::Ac2);
}

#[rstest]
#[test_log::test]
fn ac3_service_instances(observed: &Result<Observed, String>) {
    let o = open(observed);
    let exp = &o.fleet.expect;
    // insta takes a relative path from this file's directory; cargo runs tests from the crate root.
    let dir = std::env::current_dir()
        .unwrap_or_default()
        .join(&o.settings.snapshots);
    let name = snapshot_name(&exp.inventory);
    insta::with_settings!({
        snapshot_path => &dir,
        prepend_module_to_snapshot => false,
        omit_expression => true,
        description => format!("resolved instances of {}", exp.inventory_origin.rsplit('/').next().unwrap_or_default()),
    }, {
        insta::assert_json_snapshot!(name.clone(), exp.inventory.snapshot_value());
    });
    // insta has compared the instances with the reviewed snapshot, and with INSTA_UPDATE=always
    // just rewritten it: AC3 judges against the snapshot as it is now.
    let mut exp = exp.clone();
    exp.pinned_instances = pinned_snapshot(&dir, &name);
    conclude(
        &o.settings,
        &o.fleet,
        checks::evaluate(Criterion::Ac3, &exp, &o.obs),
    );
}

#[rstest]
#[test_log::test]
fn ac4_shared_vars(observed: &Result<Observed, String>) {
    judge(observed, Criterion::Ac4);
}

#[rstest]
#[test_log::test]
#[cfg_attr(
    feature = "live",
    ignore = "destructive: rebuilds every machine — run with COORD_DESTRUCTIVE=1 and `-- --include-ignored`"
)]
fn ac5_multi_machine_rebuild(rebuild_fleet: &Result<(Settings, Fleet), String>) {
    rebuilt(rebuild_fleet, Criterion::Ac5);
}

#[rstest]
#[test_log::test]
#[cfg_attr(
    feature = "live",
    ignore = "destructive: rebuilds every machine — run with COORD_DESTRUCTIVE=1 and `-- --include-ignored`"
)]
fn ac6_service_coordination(rebuild_fleet: &Result<(Settings, Fleet), String>) {
    rebuilt(rebuild_fleet, Criterion::Ac6);
}

#[test_log::test]
#[cfg_attr(
    feature = "live",
    ignore = "judges a monitor log — run `clan-coord monitor --log FILE`, then COORD_MONITOR_LOG=FILE and `-- --include-ignored`"
)]
fn ac7_network_stability() {
    let settings = Settings::from_env(cfg!(feature = "live")).unwrap_or_else(|e| panic!("{e}"));
    let log = match &settings.monitor_log {
        Some(l) => l.clone(),
        None if cfg!(feature = "live") => panic!(
            "not run: AC7 judges a monitor log; run `clan-coord monitor --for 24h --every 5m --log FILE` and set COORD_MONITOR_LOG=FILE"
        ),
        None => PathBuf::from("tests/monitor/healthy-24h.jsonl"),
    };
    let v = ac7_stability::run(&log, settings.ac7_span.as_secs_f64());
    println!("{v}");
    assert!(v.passed(), "{v}");
}
