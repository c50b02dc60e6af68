//! Issue 14, secrets: every kind of secret an operator's fleet holds is recognised by the one
//! redaction point (`clan_coordination::redact`) plain, hard-wrapped and indented, with CRLF and
//! on stderr, and withheld or refused on every path that writes remote text: the cassette
//! recorder, `Seen` excerpts and parse errors, report.json, the monitor log and its HTML page,
//! error messages. (The SSH debug log is tested over a real sshd in tests/ssh_transport.rs.) The
//! real outputs the harness records must not trip it.

mod samples;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clan_coordination::checks::ac7_stability;
use clan_coordination::env::Settings;
use clan_coordination::error::{Error, InventoryError, OracleError, TransportError};
use clan_coordination::fleet::Fleet;
use clan_coordination::monitor::{self, analysis, html, read_log, MonitorOptions};
use clan_coordination::names::Criterion;
use clan_coordination::redact::{self, SecretKind};
use clan_coordination::report;
use clan_coordination::seen::Seen;
use clan_coordination::suite::{self, RunOptions};
use clan_coordination::transport::replay::{Recorder, Recording};
use clan_coordination::transport::{Cmd, Output, Transport};
use clan_coordination::verdict::{Finding, Severity, Verdict};
use samples::{Variant, VARIANTS};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_sample_is_recognised_as_its_kind_in_every_variant() {
    let all = samples::all();
    let mut missed = Vec::new();
    for s in &all {
        for v in VARIANTS {
            let (out, err) = v.output(&s.text);
            let text = if v == Variant::Stderr { err } else { out };
            match redact::detect(&text) {
                Some(k) if k == s.kind => {}
                other => missed.push(format!("{} ({v:?}): {other:?}, want {:?}", s.name, s.kind)),
            }
        }
    }
    let kinds: std::collections::BTreeSet<String> =
        all.iter().map(|s| format!("{:?}", s.kind)).collect();
    assert_eq!(
        kinds.len(),
        SecretKind::ALL.len(),
        "a kind without a sample"
    );
    assert!(missed.is_empty(), "missed:\n{}", missed.join("\n"));
    eprintln!(
        "{} samples of {} kinds recognised in {} variants each",
        all.len(),
        kinds.len(),
        VARIANTS.len()
    );
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Fixtures of real command output, the recorded cassettes (each output on its own too), the
/// monitor logs and the clan repos: nothing trips the detection but the genuine secrets among
/// them, the emergency-access password hashes of the repos' vars.
#[test]
fn real_outputs_the_harness_records_hold_no_secret() {
    let mut files = Vec::new();
    let dirs = [
        "tests/fixtures",
        "tests/cassettes",
        "tests/monitor",
        "tests/clan-repos",
        "../shared/fixtures",
    ];
    for d in dirs {
        files_under(&root().join(d), &mut files);
    }
    assert!(files.len() > 100, "only {} files", files.len());
    let genuine = |f: &Path, k: SecretKind| {
        f.ends_with("emergency-access/password-hash/value") && k == SecretKind::PasswordHash
    };
    let mut tripped = Vec::new();
    let (mut texts, mut secrets) = (0, 0);
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        texts += 1;
        match redact::detect(&text) {
            Some(k) if genuine(f, k) => secrets += 1,
            Some(k) => tripped.push(format!("{}: {k}", f.display())),
            None => {}
        }
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) {
            if let Err(k) = redact::refuse_json(&doc) {
                tripped.push(format!("{} (a JSON string): {k}", f.display()));
            }
        }
    }
    assert!(
        tripped.is_empty(),
        "false positives:\n{}",
        tripped.join("\n")
    );
    assert!(
        secrets >= 4,
        "the repos' password hashes were not recognised"
    );
    eprintln!("{texts} files: {secrets} genuine secrets, no false positive");
}

/// Every sample in every variant, with the stdout and stderr a command would print.
fn cases() -> Vec<(samples::Sample, Variant, String, String)> {
    let mut out = Vec::new();
    for s in samples::all() {
        for v in VARIANTS {
            let (o, e) = v.output(&s.text);
            out.push((
                samples::Sample {
                    name: s.name,
                    kind: s.kind,
                    text: s.text.clone(),
                },
                v,
                o,
                e,
            ));
        }
    }
    out
}

/// Asserts that `written` (what a path wrote) holds no piece of the sample; returns the misses.
fn leaks(path: &str, s: &samples::Sample, v: Variant, written: &str) -> Option<String> {
    samples::leaked(&s.text, written).map(|f| format!("{path}: {} ({v:?}) leaked {f:?}", s.name))
}

fn report_figure(path: &str, failures: &[String], total: usize) {
    assert!(
        failures.is_empty(),
        "{path}: {} of {total} leaked:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{path}: {total} of {total} withheld");
}

struct Fake(Output);

impl Transport for Fake {
    fn name(&self) -> &str {
        "hetzner-vm"
    }
    fn run(&self, _: &Cmd) -> Result<Output, TransportError> {
        Ok(self.0.clone())
    }
}

fn output(stdout: &str, stderr: &str) -> Output {
    Output {
        stdout: stdout.into(),
        stderr: stderr.into(),
        exit: Some(0),
        duration: Duration::ZERO,
    }
}

/// The recorder refuses each one, and its cassette never holds it.
#[test]
fn the_recorder_refuses_every_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let cases = cases();
    for (i, (s, v, o, e)) in cases.iter().enumerate() {
        let path = tmp.path().join(format!("{i}.json"));
        let rec = Recording {
            inner: Arc::new(Fake(output(o, e))),
            recorder: Recorder::new(path.clone(), "test".into(), None),
        };
        match rec.run(&Cmd::new("cat")) {
            Err(err @ TransportError::SecretInOutput { .. }) => {
                let msg = err.to_string();
                if !msg.contains(&s.kind.to_string()) {
                    failures.push(format!("{} ({v:?}): {msg}", s.name));
                }
                failures.extend(leaks("recorder error", s, *v, &msg));
            }
            other => failures.push(format!(
                "{} ({v:?}): recorded ({:?})",
                s.name,
                other.map(|_| ())
            )),
        }
        let cassette = std::fs::read_to_string(&path).unwrap_or_default();
        failures.extend(leaks("cassette", s, *v, &cassette));
    }
    report_figure("cassette recorder", &failures, cases.len());
}

/// `Seen`: the excerpt is withheld, the output is not parsed, and a parse error is not quoted.
#[test]
fn seen_withholds_every_secret_in_excerpt_and_value() {
    let mut failures = Vec::new();
    let cases = cases();
    for (s, v, o, e) in &cases {
        let parse = |out: &Output| -> Result<String, String> {
            Err(format!(
                "unexpected line {:?}",
                out.combined().lines().nth(1)
            ))
        };
        let seen = Seen::of(&Cmd::new("cat"), Ok(output(o, e)), parse);
        let json = serde_json::to_string(&seen).unwrap();
        if !seen.excerpt.starts_with("<withheld: contains ") {
            failures.push(format!("{} ({v:?}): excerpt {:?}", s.name, seen.excerpt));
        }
        failures.extend(leaks("Seen", s, *v, &json));
        let hop = Seen::with_excerpt(
            &Cmd::new("ssh"),
            Ok(output(o, e)),
            |o| o.stderr.clone(),
            |_| Ok(()),
        );
        failures.extend(leaks(
            "Seen (hop)",
            s,
            *v,
            &serde_json::to_string(&hop).unwrap(),
        ));
        let failed: Seen<()> = Seen::of(&Cmd::new("cat"), Err(format!("{o}{e}")), |_| Ok(()));
        failures.extend(leaks(
            "Seen (error)",
            s,
            *v,
            &serde_json::to_string(&failed).unwrap(),
        ));
    }
    report_figure("Seen excerpt and value", &failures, cases.len());
}

/// The story fleet with one command's output replaced (a derived cassette in `dir`).
fn fleet_printing(dir: &Path, replace: &[(&str, &str, &str)]) -> Fleet {
    let base = root().join("tests/cassettes/story-fleet/cassette.json");
    let replace: Vec<serde_json::Value> = replace
        .iter()
        .map(|(cmd, o, e)| serde_json::json!({"machine": "hetzner-vm", "command": cmd, "stdout": o, "stderr": e}))
        .collect();
    let c = serde_json::json!({"format": 1, "description": "a secret in the output", "derive_from": base, "replace": replace});
    let path = dir.join("cassette.json");
    std::fs::write(&path, c.to_string()).unwrap();
    Fleet::open(&Settings::replay(path)).unwrap()
}

/// report.json of a replayed run whose kernel-params output is the secret: AC3 fails on the
/// probe, quoting it withheld.
#[test]
fn report_json_withholds_every_secret() {
    let mut failures = Vec::new();
    let cases = cases();
    let progress = |_: &str| {};
    for (s, v, o, e) in &cases {
        let tmp = tempfile::tempdir().unwrap();
        let fleet = fleet_printing(
            tmp.path(),
            &[("cat /run/current-system/kernel-params", o, e)],
        );
        let mut opts = RunOptions::verdicts_only(false, &progress);
        opts.report_dir = Some(tmp.path().join("report"));
        let verdicts = suite::run(&fleet, &[Criterion::Ac3], &opts).unwrap();
        let report = std::fs::read_to_string(tmp.path().join("report/report.json")).unwrap();
        if !report.contains(&format!("withheld: contains {}", s.kind)) {
            failures.push(format!("{} ({v:?}): not withheld in report.json", s.name));
        }
        failures.extend(leaks("report.json", s, *v, &report));
        let shown: String = verdicts.iter().map(|v| v.to_string()).collect();
        failures.extend(leaks("verdict text", s, *v, &shown));
    }
    report_figure("report.json", &failures, cases.len());
}

/// The last line of defence: a verdict that quotes a secret is not written at all.
#[test]
fn report_json_is_refused_when_a_finding_quotes_a_secret() {
    let tmp = tempfile::tempdir().unwrap();
    for s in samples::all() {
        let mut f = Finding::new(Severity::Fail, "test.secret", "hetzner-vm", "a secret");
        f.seen = s.text.clone();
        let v = Verdict::new(Criterion::Ac4, vec![f], Vec::new());
        let e = report::record(tmp.path(), "test", &v).unwrap_err();
        assert!(matches!(e, Error::SecretInReport { .. }), "{}: {e}", s.name);
        assert!(samples::leaked(&s.text, &e.to_string()).is_none(), "{e}");
        let written = std::fs::read_to_string(tmp.path().join("report.json")).unwrap_or_default();
        assert!(samples::leaked(&s.text, &written).is_none(), "{}", s.name);
    }
}

/// The monitor log of a round in which the overlay status and a ping print the secret, and the
/// summary and HTML page made from it.
#[test]
fn the_monitor_log_and_its_page_withhold_every_secret() {
    let cases = cases();
    let progress = |_: &str| {};
    // The shortest monitor run (1 s, every 1 s: two rounds) per case, all cases at once.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = cases
            .iter()
            .map(|(s, v, o, e)| {
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    let tmp = tempfile::tempdir().unwrap();
                    let ping = "ping -6 -c 5 -i 0.2 -W 2 fd8c:3e0a:19d2:5b07:e199:930e:7f41:c2a8";
                    let fleet =
                        fleet_printing(tmp.path(), &[("zerotier-cli -j info", o, e), (ping, o, e)]);
                    let log = tmp.path().join("monitor.jsonl");
                    let opts = MonitorOptions {
                        for_: Duration::from_secs(1),
                        every: Duration::from_secs(1),
                        log: log.clone(),
                    };
                    monitor::run(&fleet, &opts, &progress).unwrap();
                    let text = std::fs::read_to_string(&log).unwrap();
                    if !text.contains("withheld: contains ") {
                        failures.push(format!("{} ({v:?}): nothing withheld in {text}", s.name));
                    }
                    failures.extend(leaks("monitor log", s, *v, &text));
                    let rounds = read_log(&log).unwrap();
                    let summary = analysis::summarize(&rounds, 1.0);
                    failures.extend(leaks("monitor summary", s, *v, &analysis::render(&summary)));
                    failures.extend(leaks("HTML", s, *v, &html::page("t", &rounds, &summary)));
                    failures
                })
            })
            .collect();
        runs.into_iter().flat_map(|r| r.join().unwrap()).collect()
    });
    report_figure("monitor log, summary, HTML", &failures, cases.len());
}

/// A log written before remote texts were withheld (journal lines, errors quoting output) is
/// shown withheld by `report`, AC7 and the HTML page.
#[test]
fn an_old_log_holding_secrets_is_shown_withheld() {
    let base = read_log(&root().join("tests/monitor/lab-clean-20s.jsonl")).unwrap();
    let mut failures = Vec::new();
    let cases = cases();
    for (s, v, o, e) in &cases {
        let mut r = base[0].clone();
        let m = r.machines.values_mut().next().unwrap();
        m.journal = format!("{o}{e}").lines().map(String::from).collect();
        r.errors = vec![format!("journal: {o}{e}")];
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("old.jsonl");
        std::fs::write(&log, serde_json::to_string(&r).unwrap() + "\n").unwrap();
        let rounds = read_log(&log).unwrap();
        let summary = analysis::summarize(&rounds, 1.0);
        failures.extend(leaks("old log summary", s, *v, &analysis::render(&summary)));
        failures.extend(leaks(
            "old log HTML",
            s,
            *v,
            &html::page("t", &rounds, &summary),
        ));
        failures.extend(leaks(
            "old log AC7",
            s,
            *v,
            &ac7_stability::run(&log, 1.0).to_string(),
        ));
    }
    report_figure("old monitor log", &failures, cases.len());
}

/// Error messages that carry remote or repo text.
#[test]
fn error_messages_withhold_every_secret() {
    let mut failures = Vec::new();
    let cases = cases();
    for (s, v, o, e) in &cases {
        let text = format!("{o}{e}");
        let errors: Vec<String> = vec![
            TransportError::Channel {
                machine: "m".into(),
                command: "c".into(),
                reason: text.clone(),
            }
            .to_string(),
            TransportError::Auth {
                machine: "m".into(),
                user: "u".into(),
                method: "agent".into(),
                reason: text.clone(),
            }
            .to_string(),
            TransportError::Local {
                command: "c".into(),
                reason: text.clone(),
            }
            .to_string(),
            TransportError::Cassette {
                path: "p".into(),
                problem: text.clone(),
            }
            .to_string(),
            Error::Oracle(OracleError::Value {
                path: "v".into(),
                problem: text.clone(),
            })
            .to_string(),
            Error::Inventory(InventoryError::Shape {
                origin: "o".into(),
                problem: text.clone(),
            })
            .to_string(),
        ];
        for msg in &errors {
            failures.extend(leaks("error message", s, *v, msg));
        }
    }
    report_figure("error messages", &failures, cases.len());
}

/// AC5's rebuilds (the lab recording) printing the secret: neither the rebuild logs nor the
/// report quote it.
#[test]
fn rebuild_logs_and_their_verdict_withhold_every_secret() {
    let base = root().join("tests/cassettes/lab/cassette.json");
    let mut failures = Vec::new();
    let cases = cases();
    let progress = |_: &str| {};
    for (s, v, o, e) in &cases {
        let tmp = tempfile::tempdir().unwrap();
        let c = serde_json::json!({"format": 1, "description": "a secret in the rebuild output", "derive_from": base,
            "replace": [{"machine": "workstation", "command_contains": "lab rebuild", "stdout": o, "stderr": e}]});
        let path = tmp.path().join("cassette.json");
        std::fs::write(&path, c.to_string()).unwrap();
        let fleet = Fleet::open(&Settings::replay(path)).unwrap();
        let mut opts = RunOptions::verdicts_only(true, &progress);
        opts.log_dir = tmp.path().join("logs");
        std::fs::create_dir_all(&opts.log_dir).unwrap();
        let verdicts = suite::run(&fleet, &[Criterion::Ac5], &opts).unwrap();
        let mut written: String = verdicts.iter().map(|v| v.to_string()).collect();
        let mut logs = 0;
        for f in std::fs::read_dir(&opts.log_dir).unwrap() {
            written.push_str(&std::fs::read_to_string(f.unwrap().path()).unwrap());
            logs += 1;
        }
        if logs == 0 || !written.contains("withheld: contains ") {
            failures.push(format!("{} ({v:?}): {logs} logs, nothing withheld", s.name));
        }
        failures.extend(leaks("rebuild log or verdict", s, *v, &written));
    }
    report_figure("rebuild logs and AC5 verdict", &failures, cases.len());
}

/// Detection stays linear on hostile output: a megabyte of near-misses of every pattern takes
/// about as long per byte as a kilobyte of it (no backtracking, no quadratic rescans).
#[test]
fn detection_is_linear_on_hostile_output() {
    type Make = fn(usize) -> String;
    let hostile: [(&str, Make); 7] = [
        ("crypt prefixes", |n| "$1$$6$$y$".repeat(n / 9)),
        ("shadow-like lines", |n| {
            "a:bcdefghijklmn:x\n".repeat(n / 18)
        }),
        ("wrapped base64", |n| {
            format!("{}\n", "QUJD".repeat(19)).repeat(n / 77)
        }),
        ("one base64 token", |n| "A".repeat(n)),
        ("hex", |n| "0123456789abcdef:0:".repeat(n / 19)),
        ("sops headers", |n| "sops:\nmac\n".repeat(n / 10)),
        ("pem openings", |n| "-----BEGIN ".repeat(n / 11)),
    ];
    for (name, make) in hostile {
        let time = |n: usize| {
            let text = make(n);
            let t = std::time::Instant::now();
            assert_eq!(redact::detect(&text), None, "{name}");
            t.elapsed().as_secs_f64() / text.len() as f64
        };
        let (small, large) = (time(16 * 1024), time(1024 * 1024));
        eprintln!(
            "{name}: {:.0} ns/byte at 16 KiB, {:.0} at 1 MiB",
            small * 1e9,
            large * 1e9
        );
        assert!(
            large < small * 8.0 + 2e-7,
            "{name}: {large} s/byte at 1 MiB vs {small} at 16 KiB"
        );
    }
}
