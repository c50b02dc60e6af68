//! The collector itself, on a replayed fleet: hetzner-vm answers every monitor command, gcp-vm
//! answers none (its session has nothing to give: dropped). The round records gcp-vm's session
//! and its unrun ping as an observer gap, with no error line for it; hetzner-vm's ping to gcp-vm
//! ran and answered. With gcp-vm's ping recorded as losing every echo instead, it is a loss.

use std::path::Path;

use clan_coordination::env::Settings;
use clan_coordination::fleet::Fleet;
use clan_coordination::monitor::{analysis, journal_cmd, round, Round, SessionState};
use clan_coordination::transport::cassette::{Cassette, Entry};
use clan_coordination::transport::Output;

const SINCE: f64 = 1_795_600_800.0;

/// One round on the story fleet where `gcp` holds gcp-vm's recordings (none: it answers nothing).
fn one_round(gcp: Vec<Entry>) -> Round {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let story = Cassette::load(&root.join("tests/cassettes/story-fleet/cassette.json")).unwrap();
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("monitor.json");
    // The journal scan's command depends on the fleet: open it once to build it.
    let fleet = Fleet::open(&Settings::replay(
        root.join("tests/cassettes/story-fleet/cassette.json"),
    ))
    .unwrap();
    let journal = no_journal(&fleet);
    let mut c = story.cassette;
    c.machines_file = Some(
        root.join("tests/cassettes/story-fleet/machines.toml")
            .display()
            .to_string(),
    );
    c.machines.get_mut("hetzner-vm").unwrap().push(journal);
    c.machines.insert("gcp-vm".into(), gcp);
    std::fs::write(&path, serde_json::to_string(&c).unwrap()).unwrap();
    let fleet = Fleet::open(&Settings::replay(path)).unwrap();
    round(&fleet, 0, SINCE, 2.0, 1.0)
}

#[test]
fn a_machine_the_harness_cannot_ask_is_an_observer_gap_in_the_round() {
    let r = one_round(Vec::new());
    let g = r.machines["gcp-vm"].session.clone().unwrap();
    assert_eq!(g.state, SessionState::Dropped, "{g:?}");
    assert!(
        g.error
            .as_deref()
            .unwrap()
            .contains("has no recording of `zerotier-cli -j info`"),
        "{g:?}"
    );
    assert_eq!(g.missed, ["overlay status", "ping → hetzner-vm"], "{g:?}");
    assert_eq!(
        r.machines["hetzner-vm"].session.as_ref().unwrap().state,
        SessionState::Connected
    );
    let from_g = r.pairs.iter().find(|p| p.from == "gcp-vm").unwrap();
    assert!(
        from_g.observer_gap && from_g.rtt_avg.is_none(),
        "{from_g:?}"
    );
    let to_g = r.pairs.iter().find(|p| p.from == "hetzner-vm").unwrap();
    assert!(
        !to_g.observer_gap && to_g.loss == 0.0 && to_g.rtt_avg.is_some(),
        "{to_g:?}"
    );
    assert!(
        r.errors.is_empty(),
        "no error line for what was not asked: {:?}",
        r.errors
    );
    assert!(!r.clean());
    let s = analysis::summarize(&[r], 2.0);
    assert!(s.outages.is_empty(), "{:?}", s.outages);
    assert_eq!(s.observer_gaps.len(), 1);
    assert_eq!(s.observer_gaps[0].pings_to_answered, 1);
}

#[test]
fn a_ping_that_ran_and_lost_every_echo_is_a_loss_in_the_round() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let story = Cassette::load(&root.join("tests/cassettes/story-fleet/cassette.json")).unwrap();
    let mut gcp = story.cassette.machines["gcp-vm"].clone();
    let ping = gcp
        .iter_mut()
        .find(|e| e.command.starts_with("ping -6"))
        .unwrap();
    ping.output.exit = Some(1);
    ping.output.stdout = "PING x\n\n--- x ping statistics ---\n5 packets transmitted, 0 received, 100% packet loss, time 4093ms\n".into();
    let fleet = Fleet::open(&Settings::replay(
        root.join("tests/cassettes/story-fleet/cassette.json"),
    ))
    .unwrap();
    gcp.push(no_journal(&fleet));
    let r = one_round(gcp);
    let p = r.pairs.iter().find(|p| p.from == "gcp-vm").unwrap();
    assert!(!p.observer_gap && p.loss == 100.0, "{p:?}");
    assert_eq!(
        r.machines["gcp-vm"].session.as_ref().unwrap().state,
        SessionState::Connected
    );
    assert!(
        r.errors
            .iter()
            .any(|e| e.starts_with("gcp-vm → hetzner-vm: 100% loss")),
        "{:?}",
        r.errors
    );
    let s = analysis::summarize(&[r], 2.0);
    assert_eq!(s.outages.len(), 1);
    assert!(s.observer_gaps.is_empty());
}

/// The journal scan's answer where no journald runs (a machine without systemd).
fn no_journal(fleet: &Fleet) -> Entry {
    Entry {
        command: journal_cmd(fleet, SINCE).text().to_string(),
        output: Output {
            stdout: "__no_journal__\n".into(),
            stderr: String::new(),
            exit: Some(0),
            duration: Default::default(),
        },
        error: None,
    }
}
