//! The likely causes of AC5 and AC6 follow from what their run saw: each broken fleet's finding
//! names what the before/after states, the rebuild's own output and the units' live state show,
//! and never a cause those observations rule out (a unit "not restarted" that the state probe
//! saw start after the switch; peers' daemons "down" that it saw running).

use std::path::Path;

use clan_coordination::checks::Verdict;
use clan_coordination::env::Settings;
use clan_coordination::fleet::Fleet;
use clan_coordination::suite::{self, RunOptions};

fn verdicts(fleet: &str) -> Vec<Verdict> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cassettes/broken")
        .join(format!("{fleet}.json"));
    let fleet = Fleet::open(&Settings::replay(path)).unwrap();
    let progress = |_: &str| {};
    let criteria = suite::default_criteria(&fleet);
    suite::run(
        &fleet,
        &criteria,
        &RunOptions::verdicts_only(false, &progress),
    )
    .unwrap()
}

/// (fleet, criterion, code, what the cause must say, what it must not say)
const CASES: &[(&str, &str, &str, &str, &str)] = &[
    ("rebuild-failed", "AC5", "rebuild.failed",
     "the rebuild exited 2 saying: error: lab: lab rebuild gcp-vm: error: A definition for option `services.yggdrasil.settings.Listen' of gcp-vm is not a port number: 70000; gcp-vm still runs the system it ran before (generation 1,", ""),
    ("rebuild-failed", "AC5", "rebuild.artefact-differs",
     "gcp-vm's rebuild failed, so it still has the previous version of /run/current-system/etc/nix/nix.conf", ""),
    ("rebuild-unit-down", "AC6", "coord.unit-down",
     "s) and did not come back after the switch: see `journalctl -u yggdrasil.service` on gcp-vm", ""),
    ("rebuild-artefact-missing", "AC5", "rebuild.artefact-missing",
     "gcp-vm's previous system had /run/current-system/etc/nix/nix.conf (sha256 1b8fe5823c18", "did not reach"),
    ("rebuild-no-generation", "AC5", "rebuild.no-generation",
     "-nixos-system-gcp-vm-26.05.lab) but its system profile still names generation 1: it was activated without registering a generation", ""),
    ("rebuild-not-switched", "AC5", "rebuild.not-switched",
     "gcp-vm still runs the system it ran before the rebuild while its profile moved to generation 2", ""),
    ("ygg-address-mismatch", "AC6", "ygg.address-mismatch",
     "yggdrasil.service on gcp-vm was restarted after the switch", "not restarted"),
    ("ygg-no-peers", "AC6", "ygg.no-peers",
     "although yggdrasil.service was running on hetzner-vm after the switch", "peers' daemons down"),
    ("ygg-unit-failed", "AC6", "ygg.unit",
     "s at the state probe) and is not running at this later observation", ""),
];

#[test]
fn ac5_and_ac6_causes_follow_from_what_the_run_saw() {
    let mut wrong = Vec::new();
    for (fleet, criterion, code, says, not) in CASES {
        let vs = verdicts(fleet);
        let v = vs.iter().find(|v| v.criterion == *criterion).unwrap();
        match v
            .failures()
            .find(|f| f.code == *code && f.machine == "gcp-vm")
        {
            None => wrong.push(format!("{fleet}: no {code} on gcp-vm\n{v}")),
            Some(f) if !f.cause.contains(says) || (!not.is_empty() && f.cause.contains(not)) => {
                wrong.push(format!(
                    "{fleet} {code}: cause\n  {}\nshould say\n  {says}\nand not {not:?}",
                    f.cause
                ))
            }
            Some(_) => {}
        };
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// The healthy lab recording: both rebuild rounds pass AC5 and AC6 with no cause to give.
#[test]
fn the_healthy_rebuilds_pass() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cassettes/lab/cassette.json");
    let fleet = Fleet::open(&Settings::replay(path)).unwrap();
    let progress = |_: &str| {};
    let vs = suite::run(
        &fleet,
        &suite::default_criteria(&fleet),
        &RunOptions::verdicts_only(false, &progress),
    )
    .unwrap();
    assert_eq!(vs.len(), 6);
    for v in &vs {
        assert!(v.passed(), "{v}");
    }
}
