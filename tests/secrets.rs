//! Issue 14, secrets: every kind of secret an operator's fleet holds is recognised by the one
//! redaction point (`clan_coordination::redact`) plain, hard-wrapped and indented, with CRLF and
//! on stderr, and withheld or refused on every path that writes remote text: the cassette
//! recorder, `Seen` excerpts and parse errors, report.json, the monitor log and its HTML page,
//! error messages. (The SSH debug log is tested over a real sshd in tests/ssh_transport.rs.) The
//! real outputs the harness records must not trip it.

mod samples;

use std::path::{Path, PathBuf};

use clan_coordination::redact::{self, SecretKind};
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
