//! AC7 offline: the stability verdict and the report from monitor logs. The healthy 24 h log
//! (tests/monitor/healthy-24h.jsonl, built by `cargo xtask monitor` from a round recorded on the
//! lab) passes; variants with a gap, a disconnection, an error line or a short span fail with
//! their cause.

use std::path::{Path, PathBuf};

use clan_coordination::checks::ac7_stability;
use clan_coordination::monitor::{analysis, html, read_log, Round};

const DAY: f64 = 86_400.0;

fn healthy() -> Vec<Round> {
    read_log(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/monitor/healthy-24h.jsonl"))
        .unwrap()
}

fn write(rounds: &[Round]) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("log.jsonl");
    let text: String = rounds
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    std::fs::write(&p, text).unwrap();
    (d, p)
}

fn fails_with(rounds: &[Round], code: &str, needle: &str) {
    let (_d, p) = write(rounds);
    let v = ac7_stability::run(&p, DAY);
    assert!(!v.passed(), "{v}");
    let f = v
        .failures()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code}\n{v}"));
    assert!(f.seen.contains(needle), "{code}: {f}");
    assert!(!f.cause.is_empty() && !f.expected.is_empty(), "{f}");
}

#[test]
fn healthy_day_passes_with_every_checkpoint() {
    let (_d, p) = write(&healthy());
    let v = ac7_stability::run(&p, DAY);
    assert!(v.passed(), "{v}");
    assert_eq!(
        v.findings
            .iter()
            .filter(|f| f.code == "ac7.checkpoint")
            .count(),
        5,
        "{v}"
    );
}

#[test]
fn a_gap_over_hour_twelve_fails_and_misses_the_checkpoint() {
    let rounds: Vec<Round> = healthy()
        .into_iter()
        .filter(|r| !(120..=160).contains(&r.round))
        .collect();
    fails_with(&rounds, "ac7.gap", "+9h55m00s");
    fails_with(&rounds, "ac7.checkpoint-missed", "no round");
}

#[test]
fn a_disconnection_is_named_with_direction_start_and_end() {
    let mut rounds = healthy();
    for r in rounds.iter_mut().filter(|r| (100..104).contains(&r.round)) {
        let p = r.pairs.iter_mut().find(|p| p.from == "hetzner-vm").unwrap();
        p.loss = 100.0;
        p.rtt_avg = None;
        p.rtt_max = None;
        r.errors.push(format!("{} → {}: 100% loss", p.from, p.to));
    }
    let (_d, p) = write(&rounds);
    let v = ac7_stability::run(&p, DAY);
    let f = v
        .failures()
        .find(|f| f.code == "ac7.disconnection")
        .unwrap();
    assert_eq!(
        (f.machine.as_str(), f.to.as_deref()),
        ("hetzner-vm", Some("gcp-vm"))
    );
    assert!(
        f.seen
            .contains("down from +8h20m00s to +8h40m00s (20m00s, 4 rounds)"),
        "{f}"
    );
    // The report shows it as a band on the plot.
    let s = analysis::summarize(&rounds, DAY);
    let page = html::page("t", &rounds, &s);
    assert!(
        page.contains("<svg") && page.contains("fill=\"#d62728\" fill-opacity"),
        "outage band"
    );
    assert!(
        !page.contains("http://") || page.matches("http://").count() == 1,
        "self-contained (only the SVG namespace)"
    );
}

#[test]
fn an_error_line_fails_the_day() {
    let mut rounds = healthy();
    let r = &mut rounds[200];
    let line =
        "2026-11-25T16:40:03+0000 gcp-vm zerotier-one[812]: WARNING: unable to contact controller"
            .to_string();
    r.machines
        .get_mut("gcp-vm")
        .unwrap()
        .journal
        .push(line.clone());
    r.errors.push(format!("gcp-vm: journal: {line}"));
    fails_with(&rounds, "ac7.errors", "unable to contact controller");
}

#[test]
fn a_short_span_fails() {
    let rounds: Vec<Round> = healthy().into_iter().take(200).collect();
    fails_with(&rounds, "ac7.short-span", "16h35m");
}

#[test]
fn a_torn_last_line_is_the_round_in_flight_and_is_ignored() {
    let (_d, p) = write(&healthy());
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str("{\"round\":289,\"ts\":17956");
    std::fs::write(&p, text).unwrap();
    assert_eq!(read_log(&p).unwrap().len(), 289);
    std::fs::write(&p, "{\"round\": oops}\n{\"round\":1}\n").unwrap();
    assert!(
        read_log(&p).unwrap_err().contains(":1:"),
        "a bad line in the middle is an error"
    );
}
