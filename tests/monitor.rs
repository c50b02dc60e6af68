//! AC7 offline: the stability verdict and the report from monitor logs. The healthy 24 h log
//! (tests/monitor/healthy-24h.jsonl, built by `cargo xtask monitor` from a round recorded on the
//! lab) passes; variants with a gap, a disconnection, an error line or a short span fail with
//! their cause.

use std::path::{Path, PathBuf};

use clan_coordination::checks::ac7_stability;
use clan_coordination::monitor::{analysis, html, read_log, Round};

#[path = "monitor/ac7_causes.rs"]
mod ac7_causes;
#[path = "monitor/observer.rs"]
mod observer;
#[path = "monitor/replay_round.rs"]
mod replay_round;

const DAY: f64 = 86_400.0;

fn healthy() -> Vec<Round> {
    read_log(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/monitor/healthy-24h.jsonl"))
        .unwrap()
}

/// A healthy day with hetzner-vm → gcp-vm down (100% loss) in rounds 100-103.
fn one_way_outage() -> Vec<Round> {
    let mut rounds = healthy();
    for r in rounds.iter_mut().filter(|r| (100..104).contains(&r.round)) {
        let p = r.pairs.iter_mut().find(|p| p.from == "hetzner-vm").unwrap();
        p.loss = 100.0;
        p.rtt_avg = None;
        p.rtt_max = None;
        r.errors.push(format!("{} → {}: 100% loss", p.from, p.to));
    }
    rounds
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
    let rounds = one_way_outage();
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

/// The summary reads as tables: one row per direction (samples, loss, p50/p95/p99, the count of
/// disconnections) and one per disconnection (start, end, duration); a line repeated every
/// round is folded into one with its count and first and last round.
#[test]
fn the_summary_is_tables_and_repeated_lines_are_folded() {
    let mut rounds = one_way_outage();
    // The same journal warning every round, with its own timestamp each time.
    for r in rounds.iter_mut().filter(|r| (10..=250).contains(&r.round)) {
        let line = format!(
            "2026-11-25T{:02}:{:02}:03+0000 gcp-vm zerotier-one[{}]: WARNING: unable to contact controller",
            10 + r.round / 12,
            r.round % 12 * 5,
            800 + r.round
        );
        r.errors.push(format!("gcp-vm: journal: {line}"));
    }
    let skipped =
        "gcp-vm: journal: … gcp-vm zerotier-one[…]: WARNING: unable to contact controller";
    let s = analysis::summarize(&rounds, DAY);
    let text = analysis::render(&s);
    let row = |needle: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(needle))
            .unwrap_or_else(|| panic!("no row {needle:?} in\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert!(
        text.contains("direction") && text.contains("p99 ms") && text.contains("disconnections"),
        "{text}"
    );
    let h = row("hetzner-vm → gcp-vm");
    assert_eq!(
        h[3..6],
        ["289", "0", "4"],
        "samples, not observed, bad: {h:?}"
    );
    assert_eq!(h.last(), Some(&"1"), "one disconnection: {h:?}");
    let d = text
        .lines()
        .find(|l| l.contains("+8h20m00s") && l.contains("+8h40m00s"))
        .unwrap_or_else(|| panic!("no disconnection row in\n{text}"));
    assert!(
        d.contains("hetzner-vm → gcp-vm") && d.contains("20m00s"),
        "{d}"
    );
    assert_eq!(
        text.matches(skipped).count(),
        1,
        "the repeated warning, once:\n{text}"
    );
    assert!(
        text.contains(&format!(
            "241 rounds, 10 (+50m00s) to 250 (+20h50m00s): {skipped}"
        )),
        "{text}"
    );
    let page = html::page("t", &rounds, &s);
    assert!(
        page.contains("<th>p99 ms</th>") && page.contains("<td>+8h20m00s (18:20:00)</td>"),
        "HTML tables"
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

/// The offline story fleet: the monitor's commands have no recording, so each round is written
/// with its errors as data, quickly and without any network.
fn replay_fleet() -> clan_coordination::fleet::Fleet {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    clan_coordination::fleet::Fleet::open(&clan_coordination::env::Settings::replay(
        root.join("tests/cassettes/story-fleet/cassette.json"),
    ))
    .unwrap()
}

/// Runs the monitor on `log` (2 s every 1 s unless the log says otherwise), collecting progress.
fn monitor(log: &Path) -> (Result<u64, String>, Vec<String>) {
    use clan_coordination::monitor::{run, MonitorOptions};
    use std::time::Duration;
    let lines = std::sync::Mutex::new(Vec::new());
    let progress = |l: &str| lines.lock().unwrap().push(l.to_string());
    let opts = MonitorOptions {
        for_: Duration::from_secs(2),
        every: Duration::from_secs(1),
        log: log.to_path_buf(),
    };
    let ran = run(&replay_fleet(), &opts, &progress).map_err(|e| e.to_string());
    (ran, lines.into_inner().unwrap())
}

/// Round 0 of a 2-second plan (every second), started just now.
fn fresh_round() -> Round {
    let mut r = healthy().remove(0);
    r.ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - 0.2;
    (r.for_secs, r.every_secs) = (2.0, 1.0);
    r
}

/// A crash mid-write leaves a torn last line: the resumed monitor cuts it off (saying so) before
/// it appends, so the rounds after it are readable and AC7 can judge the log. (Appended to the
/// torn bytes, the next round made the whole log unreadable.)
#[test]
fn a_resume_after_a_torn_write_keeps_every_complete_round_readable() {
    let (_d, p) = write(&[fresh_round()]);
    let torn = "{\"round\":1,\"ts\":1795";
    let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    std::io::Write::write_all(&mut f, torn.as_bytes()).unwrap();
    drop(f);
    let (ran, progress) = monitor(&p);
    assert_eq!(ran, Ok(2), "{progress:?}");
    assert!(
        progress.iter().any(|l| l.contains(&format!(
            "dropped {} bytes after round 0, the round in flight",
            torn.len()
        ))),
        "{progress:?}"
    );
    let rounds = read_log(&p).unwrap();
    assert_eq!(
        rounds.iter().map(|r| r.round).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    let v = ac7_stability::run(&p, 2.0);
    assert!(v.findings.iter().all(|f| f.code != "ac7.no-log"), "{v}");
    assert_eq!(analysis::summarize(&rounds, 2.0).rounds, 3);
}

/// The stored plan is checked on read and on resume: a plan that would make the monitor spin
/// (every_secs = 0), never end, or count past u64::MAX is a clear error naming the line, and
/// the monitor refuses to resume it without touching the file.
#[test]
fn a_log_with_an_impossible_plan_is_refused_on_read_and_on_resume() {
    // (how the second round is spoiled, what the error says)
    type Spoil = fn(&mut Round);
    let cases: [(Spoil, &str); 6] = [
        (
            |r| r.every_secs = 0.0,
            "every_secs = 0 is out of range (allowed 1s to 1d)",
        ),
        (
            |r| r.every_secs = -300.0,
            "every_secs = -300 is out of range",
        ),
        (
            |r| r.for_secs = 1e300,
            "is out of range (allowed 1s to 30d)",
        ),
        (
            |r| r.round = u64::MAX,
            "round 18446744073709551615 is beyond its plan",
        ),
        (|r| r.ts = 1e18, "is not a time between 1970 and 2100"),
        (|r| r.secs = -1.0, "secs = -1 is not a round's duration"),
    ];
    for (spoil, want) in cases {
        let mut rounds = healthy();
        rounds.truncate(3);
        spoil(&mut rounds[1]);
        let (_d, p) = write(&rounds);
        let before = std::fs::read(&p).unwrap();
        let e = read_log(&p).unwrap_err();
        assert!(e.contains(":2: round ") && e.contains(want), "{e}");
        let v = ac7_stability::run(&p, DAY);
        assert!(
            v.failures()
                .any(|f| f.code == "ac7.no-log" && f.seen.contains(want)),
            "{v}"
        );
        let (ran, _) = monitor(&p);
        assert!(ran.as_ref().is_err_and(|e| e.contains(want)), "{ran:?}");
        assert_eq!(
            std::fs::read(&p).unwrap(),
            before,
            "the log is left as it was"
        );
    }
}

/// `--log` pointed at a file that is not a monitor log: refused, and the file is not cut.
#[test]
fn a_resume_never_cuts_a_file_that_is_not_a_monitor_log() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("notes.txt");
    std::fs::write(&p, "my notes\nno newline at the end").unwrap();
    let (ran, _) = monitor(&p);
    assert!(ran
        .unwrap_err()
        .contains("notes.txt:1: not a monitor round"));
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        "my notes\nno newline at the end"
    );
}

/// A last round whose line end is missing (not torn: it parses) is kept, and the resume ends
/// its line before appending.
#[test]
fn a_whole_last_round_without_its_line_end_is_kept() {
    let (_d, p) = write(&[fresh_round()]);
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.trim_end()).unwrap();
    assert_eq!(read_log(&p).unwrap().len(), 1);
    let (ran, progress) = monitor(&p);
    assert_eq!(ran, Ok(2), "{progress:?}");
    assert_eq!(read_log(&p).unwrap().len(), 3);
}
