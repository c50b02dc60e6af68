//! AC5 and AC6 on the lab: real rebuilds (`clan-coord lab rebuild`, the lab's `clan machines
//! update`) of a changed lab repo. A shared change passes AC5; a machine whose configuration does
//! not evaluate fails AC5 naming it while the other is still checked; an overlay port change
//! passes AC6 with the mesh back; a daemon left unrestarted fails AC6 naming the machine and why.
//! Skips with a visible reason where the lab cannot run.

use std::path::Path;

use clan_coord_lab as lab;
use clan_coordination::checks::Verdict;
use clan_coordination::config;
use clan_coordination::fleet::Fleet;
use clan_coordination::names::Criterion;
use clan_coordination::suite::{self, RunOptions};

mod common;
mod skip;

fn fleet(machines: &Path) -> Fleet {
    Fleet::live(
        config::load(machines).unwrap(),
        None,
        Path::new("snapshots"),
    )
    .unwrap()
}

/// `criterion` judged on the lab, with the opt-in as given (the lab is disposable).
fn judged(machines: &Path, criterion: Criterion, destructive: bool) -> Verdict {
    let progress = |l: &str| eprintln!("{l}");
    let opts = RunOptions::verdicts_only(destructive, &progress);
    suite::rebuild_verdict(&fleet(machines), criterion, &opts).unwrap()
}

fn edit(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join("clan/lab-config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn fails_naming(v: &Verdict, code: &str, machine: &str) {
    assert!(!v.passed(), "{} should fail\n{v}", v.criterion);
    let hit = v
        .failures()
        .find(|x| x.code == code && x.machine == machine)
        .unwrap_or_else(|| panic!("no {code} naming {machine}\n{v}"));
    assert!(!hit.cause.is_empty() && !hit.seen.is_empty(), "{hit}");
    eprintln!("{}: {code} on {machine}: {}", v.criterion, hit.cause);
}

#[test_log::test]
fn rebuilds_on_the_lab() {
    let Some(l) = common::Lab::start("clabr") else {
        return;
    };
    let (dir, mf) = (l.dir(), l.machines.clone());

    // Without the opt-in a live run refuses, fast.
    {
        let v = judged(&mf, Criterion::Ac5, false);
        assert!(
            v.failures()
                .any(|x| x.code == "rebuild.not-run" && x.seen.contains("not run: destructive")),
            "{v}"
        );
    }

    // Nothing changed: every machine states an unchanged closure.
    let v = judged(&mf, Criterion::Ac5, true);
    assert!(v.passed(), "{v}");
    assert!(
        v.findings.iter().any(|x| x.code == "rebuild.unchanged"),
        "{v}"
    );

    // A shared setting changes: a new generation everywhere, the same nix.conf everywhere.
    edit(dir, |c| {
        c["nix_conf"] = "experimental-features = nix-command flakes\nmax-jobs = 4\n".into()
    });
    let v = judged(&mf, Criterion::Ac5, true);
    assert!(v.passed(), "{v}");
    assert_eq!(
        v.findings
            .iter()
            .filter(|x| x.code == "rebuild.generation")
            .count(),
        2,
        "{v}"
    );
    assert_eq!(
        v.findings
            .iter()
            .filter(|x| x.code == "rebuild.artefact")
            .count(),
        2,
        "{v}"
    );

    // gcp-vm's configuration does not evaluate: its rebuild fails, hetzner-vm is still checked.
    edit(dir, |c| {
        c["nix_conf"] = "experimental-features = nix-command flakes\nmax-jobs = 8\n".into();
        c["machines"]["gcp-vm"] = serde_json::json!({"nix_conf_extra": 42});
    });
    let v = judged(&mf, Criterion::Ac5, true);
    fails_naming(&v, "rebuild.failed", "gcp-vm");
    assert!(
        v.findings
            .iter()
            .any(|x| x.code == "rebuild.generation" && x.machine == "hetzner-vm"),
        "{v}"
    );
    fails_naming(&v, "rebuild.artefact-differs", "gcp-vm");
    edit(dir, |c| c["machines"] = serde_json::json!({}));
    assert!(judged(&mf, Criterion::Ac5, true).passed());

    // An overlay setting changes: the daemons restart, the mesh and the hops come back.
    edit(dir, |c| c["yggdrasil_port"] = 6500.into());
    let v = judged(&mf, Criterion::Ac6, true);
    assert!(v.passed(), "{v}");
    assert_eq!(
        v.findings.iter().filter(|x| x.code == "coord.live").count(),
        2,
        "{v}"
    );

    // Changed again, but gcp-vm's switch leaves yggdrasil running with the old port.
    edit(dir, |c| {
        c["yggdrasil_port"] = 6600.into();
        c["machines"]["gcp-vm"] = serde_json::json!({"restart_on_switch": false});
    });
    let v = judged(&mf, Criterion::Ac6, true);
    fails_naming(&v, "coord.not-restarted", "gcp-vm");

    assert!(lab::down(dir).unwrap());
}
