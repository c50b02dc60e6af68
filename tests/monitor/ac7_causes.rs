//! AC7's causes follow from the rounds: the ping's own words, the loss, the other direction,
//! the monitor's plan and which line of a round went wrong (each was one fixed text before).

use clan_coordination::checks::{ac7_stability, Finding};
use clan_coordination::monitor::Round;

use super::{healthy, write, DAY};

fn failure(rounds: &[Round], code: &str) -> Finding {
    let (_d, p) = write(rounds);
    let v = ac7_stability::run(&p, DAY);
    let f = v.failures().find(|f| f.code == code).cloned();
    f.unwrap_or_else(|| panic!("no {code}\n{v}"))
}

/// hetzner-vm → gcp-vm in rounds 100..104 as `spoil` makes it.
fn spoiled(spoil: impl Fn(&mut Round)) -> Vec<Round> {
    let mut rounds = healthy();
    for r in &mut rounds[100..104] {
        spoil(r);
    }
    rounds
}

#[test]
fn no_route_is_the_senders_own_interface() {
    let rounds = spoiled(|r| {
        let p = r.pairs.iter_mut().find(|p| p.from == "hetzner-vm").unwrap();
        (p.loss, p.rtt_avg, p.rtt_max) = (100.0, None, None);
        p.error = Some(clan_coordination::probe::ping::PingError::NetworkUnreachable.to_string());
    });
    let f = failure(&rounds, "ac7.disconnection");
    assert!(
        f.cause.starts_with("hetzner-vm had no route to gcp-vm's overlay address (its ping said the network is unreachable)"),
        "{f}"
    );
}

#[test]
fn partial_loss_is_a_lossy_path() {
    let rounds = spoiled(|r| {
        let p = r.pairs.iter_mut().find(|p| p.from == "hetzner-vm").unwrap();
        p.loss = 40.0;
    });
    let f = failure(&rounds, "ac7.disconnection");
    assert!(
        f.cause
            .starts_with("a lossy path, not a broken one: 40% of the echoes"),
        "{f}"
    );
}

#[test]
fn both_directions_down_while_both_machines_answer_is_the_overlay_between_them() {
    let rounds = spoiled(|r| {
        for p in &mut r.pairs {
            (p.loss, p.rtt_avg, p.rtt_max) = (100.0, None, None);
        }
        r.machines.get_mut("gcp-vm").unwrap().overlay = "yggdrasil has no peer".into();
    });
    let f = failure(&rounds, "ac7.disconnection");
    assert!(
        f.cause.starts_with("both directions between")
            && f.cause
                .ends_with("overlay status meanwhile: gcp-vm: yggdrasil has no peer"),
        "{f}"
    );
}

/// A failed hop names its two machines (the machine column said `ssh hetzner-vm → gcp-vm`).
#[test]
fn a_hop_error_names_its_direction_and_says_it_is_the_hop() {
    let mut rounds = healthy();
    rounds[200]
        .errors
        .push("ssh hetzner-vm → gcp-vm: PlainKeyFallbackRefused, hostname \"\"".into());
    let f = failure(&rounds, "ac7.errors");
    assert_eq!(
        (f.machine.as_str(), f.to.as_deref()),
        ("hetzner-vm", Some("gcp-vm"))
    );
    assert!(f.cause.starts_with("the SSH hop hetzner-vm → gcp-vm failed over an overlay path whose pings had just passed: PlainKeyFallbackRefused"), "{f}");
}

/// A monitor started for less than required says so; one stopped early says its plan is not done.
#[test]
fn a_short_span_says_whether_the_plan_or_the_run_was_short() {
    let mut short_plan: Vec<Round> = healthy().into_iter().take(100).collect();
    for r in &mut short_plan {
        r.for_secs = 30_000.0;
    }
    let f = failure(&short_plan, "ac7.short-span");
    assert!(
        f.cause.starts_with(
            "the monitor was started for 8h20m00s (--for), shorter than the 24h00m00s required"
        ),
        "{f}"
    );
    let stopped: Vec<Round> = healthy().into_iter().take(100).collect();
    let f = failure(&stopped, "ac7.short-span");
    assert!(
        f.cause
            .starts_with("its plan of 24h00m00s is not complete: the monitor stopped at +8h15m"),
        "{f}"
    );
    let f = failure(&stopped, "ac7.checkpoint-missed");
    assert!(f.cause.starts_with("the log ends at +8h15m"), "{f}");
}
