//! The JSON report of every finding (`target/coordination/report.json`) and the one-screen
//! summary table. The report is a stable, machine-readable shape for CI.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use once_cell::sync::Lazy;

use crate::checks::{Severity, Verdict};
use crate::error::Error;
use crate::names::Criterion;

static VERDICTS: Lazy<Mutex<BTreeMap<Criterion, Verdict>>> =
    Lazy::new(|| Mutex::new(BTreeMap::new()));

/// The criteria this process's run did not judge, with why (`not_run` in report.json).
static NOT_RUN: Lazy<Mutex<Vec<crate::suite::NotRun>>> = Lazy::new(|| Mutex::new(Vec::new()));

/// Records which criteria the run did not judge and why, and rewrites `<dir>/report.json`
/// (field `not_run`: `[{criterion, reason}]`, next to `verdicts`).
pub fn record_not_run(
    dir: &Path,
    origin: &str,
    not_run: &[crate::suite::NotRun],
) -> Result<(), Error> {
    *NOT_RUN.lock().unwrap_or_else(|p| p.into_inner()) = not_run.to_vec();
    let all = VERDICTS.lock().unwrap_or_else(|p| p.into_inner());
    write(dir, origin, &all)
}

/// Adds a verdict to this process's report and rewrites `<dir>/report.json`.
pub fn record(dir: &Path, origin: &str, v: &Verdict) -> Result<(), Error> {
    let path = dir.join("report.json");
    // Every quoted text went through `redact` already; this is the last line of defence, before
    // the verdict joins the others (a refused one must not poison every later report).
    let refused = |kind| Error::SecretInReport {
        path: path.clone(),
        kind,
    };
    serde_json::to_value(v).map_or(Ok(()), |j| crate::redact::refuse_json(&j).map_err(refused))?;
    let mut all = VERDICTS.lock().unwrap_or_else(|p| p.into_inner());
    all.insert(v.criterion, v.clone());
    write(dir, origin, &all)
}

/// Writes `<dir>/report.json` from the verdicts so far and the criteria not run.
fn write(dir: &Path, origin: &str, all: &BTreeMap<Criterion, Verdict>) -> Result<(), Error> {
    let path = dir.join("report.json");
    let refused = |kind| Error::SecretInReport {
        path: path.clone(),
        kind,
    };
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let not_run = NOT_RUN.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let json = serde_json::json!({
        "origin": origin,
        "verdicts": all.values().collect::<Vec<_>>(),
        "not_run": not_run,
    });
    crate::redact::refuse_json(&json).map_err(refused)?;
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json).unwrap_or_default() + "\n",
    )
    .map_err(|source| Error::Write { path, source })
}

/// One line per criterion: verdict (PASS, FAIL, or INCOMPLETE when something could not be
/// seen or nothing was checked) and counts.
pub fn summary(verdicts: &[&Verdict]) -> String {
    let mut s = format!(
        "{:<5} {:<52} {:>10} {:>5} {:>5} {:>9}\n",
        "AC", "criterion", "result", "pass", "fail", "unchecked"
    );
    for v in verdicts {
        let n = |sev| v.findings.iter().filter(|f| f.severity == sev).count();
        s.push_str(&format!(
            "{:<5} {:<52} {:>10} {:>5} {:>5} {:>9}\n",
            v.criterion,
            v.title,
            v.outcome().to_string(),
            n(Severity::Pass),
            n(Severity::Fail),
            n(Severity::Unchecked)
        ));
    }
    s
}
