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

/// Runs the binary with `args` (and `env`), returning exit code and stderr. Only argument and
/// environment parsing run: every case fails before anything is read or connected.
fn cli(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clan-coord"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Every duration on the command line and in `COORD_AC7_SPAN` is bounded: out-of-range,
/// overflowing and zero values are a clear usage error naming the flag, the value and the range,
/// never a panic (exit 101) or a silent "no timeout".
#[test]
fn cli_durations_are_bounded_with_a_clear_error() {
    let huge = "99999999999999999999999d";
    let log = ["--log", "/nonexistent/monitor.jsonl"];
    // (arguments, environment, the flag or variable the error must name)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["monitor", "--for", huge, "--every", "5m"],
            vec![],
            "--for",
        ),
        (
            vec!["monitor", "--for", "24h", "--every", huge],
            vec![],
            "--every",
        ),
        (
            vec!["monitor", "--for", "24h", "--every", "0s"],
            vec![],
            "--every",
        ),
        (
            vec!["monitor", "--for", "0.0001s", "--every", "1s"],
            vec![],
            "--for",
        ),
        (
            vec!["monitor", "--for", "400d", "--every", "1s"],
            vec![],
            "--for",
        ),
        (
            vec!["monitor", "--for", "24h", "--every", "2d"],
            vec![],
            "--every",
        ),
        (
            vec!["report", "--required", huge, "--log", log[1]],
            vec![],
            "--required",
        ),
        (
            vec!["report", "--required", "1e9s", "--log", log[1]],
            vec![],
            "--required",
        ),
        (
            vec!["report", "--log", log[1]],
            vec![("COORD_AC7_SPAN", huge)],
            "COORD_AC7_SPAN",
        ),
        (
            vec!["report", "--log", log[1]],
            vec![("COORD_AC7_SPAN", "0s")],
            "COORD_AC7_SPAN",
        ),
    ];
    let mut failed = Vec::new();
    for (args, env, flag) in &cases {
        let (code, stderr) = cli(args, env);
        let value = args
            .iter()
            .zip(args.iter().skip(1))
            .find(|(a, _)| *a == flag)
            .map(|(_, v)| *v)
            .or_else(|| env.first().map(|(_, v)| *v))
            .unwrap();
        let ok = code == Some(2)
            && stderr.contains(flag)
            && stderr.contains(value)
            && stderr.contains("allowed")
            && !stderr.contains("panicked");
        if !ok {
            failed.push(format!("{args:?} {env:?}: exit {code:?}\n{stderr}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n---\n"));
}
