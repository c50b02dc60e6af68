//! The verdict types: a finding (what was checked on which machine, seen, expected, likely cause)
//! and a criterion's verdict. These are the stable shapes of report.json (`verdicts[].criterion`,
//! `result`, `findings[]` with `severity`, `code`, `machine`, `to`, `seen`, `expected`, `cause`,
//! `depends_on`).
//!
//! Verdicts fail closed: a criterion passes only when something was checked and nothing failed
//! or stayed UNCHECKED; otherwise it is `fail` or `incomplete`, never a pass on missing evidence.

use std::fmt;

use serde::Serialize;

use crate::names::Criterion;
use crate::seen::Seen;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Checked and fine.
    Pass,
    /// Worth knowing (e.g. a unit absent by design).
    Info,
    /// Not checked (no probe known, the machine not configured or not reachable, the probe's
    /// command failed): shown with the reason, never counted as a pass; the criterion is
    /// incomplete.
    Unchecked,
    /// Suspicious but not failing the criterion.
    Warn,
    /// The criterion fails.
    Fail,
}

/// One observation judged.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Severity.
    pub severity: Severity,
    /// Stable code (e.g. `zt.access-denied`), what the verdict corpus asserts on.
    pub code: &'static str,
    /// Machine concerned (source machine for directed findings).
    pub machine: String,
    /// Target machine for directed findings (A → B).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// What was checked, in words.
    pub subject: String,
    /// Command that produced the evidence.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub command: String,
    /// Its exit status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    /// What was seen.
    pub seen: String,
    /// What was expected.
    pub expected: String,
    /// Likely cause and fix.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cause: String,
    /// For an UNCHECKED finding that could not be seen because of another failure: that root
    /// cause, named once as its own finding (e.g. `gcp-vm: the harness cannot reach it`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<String>,
}

impl Finding {
    /// A finding about `machine`.
    pub fn new(
        severity: Severity,
        code: &'static str,
        machine: &str,
        subject: impl Into<String>,
    ) -> Finding {
        Finding {
            severity,
            code,
            machine: machine.into(),
            to: None,
            subject: subject.into(),
            command: String::new(),
            exit: None,
            seen: String::new(),
            expected: String::new(),
            cause: String::new(),
            depends_on: None,
        }
    }
    /// A check that could not be made, and why (the reason is its `seen`).
    pub fn unchecked(
        code: &'static str,
        machine: &str,
        subject: impl Into<String>,
        why: impl Into<String>,
    ) -> Finding {
        Finding::new(Severity::Unchecked, code, machine, subject).seen(why)
    }
    /// Direction A → B.
    pub fn to(mut self, to: &str) -> Finding {
        self.to = Some(to.into());
        self
    }
    /// Evidence from a probe.
    pub fn evidence<T>(mut self, s: &Seen<T>) -> Finding {
        self.command = s.command.clone();
        self.exit = s.exit;
        if self.seen.is_empty() {
            self.seen = s.excerpt.clone();
        }
        self
    }
    /// What was seen (withheld if it holds a secret: findings are printed and reported).
    pub fn seen(mut self, s: impl Into<String>) -> Finding {
        self.seen = crate::redact::withhold(&s.into()).into_owned();
        self
    }
    /// What was expected.
    pub fn expected(mut self, s: impl Into<String>) -> Finding {
        self.expected = s.into();
        self
    }
    /// Likely cause.
    pub fn cause(mut self, s: impl Into<String>) -> Finding {
        self.cause = s.into();
        self
    }
    /// Makes this finding an UNCHECKED dependent of `root` (what it needed could not be seen
    /// because of that failure): the root is named once, in its own finding.
    pub fn depends_on(mut self, root: impl Into<String>) -> Finding {
        let root = root.into();
        self.severity = Severity::Unchecked;
        self.cause = String::new();
        self.seen = format!("not seen: depends on {root}");
        self.depends_on = Some(root);
        self
    }
    /// Where: `m` or `a → b`.
    pub fn place(&self) -> String {
        match &self.to {
            Some(t) => format!("{} → {}", self.machine, t),
            None => self.machine.clone(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  [{:?}] {}: {} ({})",
            self.severity,
            self.place(),
            self.subject,
            self.code
        )?;
        if !self.command.is_empty() {
            writeln!(f, "      command:  {}", self.command)?;
            writeln!(
                f,
                "      exit:     {}",
                self.exit.map_or("-".to_string(), |e| e.to_string())
            )?;
        }
        writeln!(f, "      seen:     {}", self.seen)?;
        writeln!(f, "      expected: {}", self.expected)?;
        if !self.cause.is_empty() {
            writeln!(f, "      likely cause: {}", self.cause)?;
        }
        if let Some(root) = &self.depends_on {
            writeln!(f, "      depends on: {root}")?;
        }
        Ok(())
    }
}

/// A criterion's result: report.json's `verdicts[].result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Something was checked, nothing failed, nothing stayed unchecked.
    Pass,
    /// At least one failing finding.
    Fail,
    /// Nothing failed, but some check could not be made (UNCHECKED) or none was made at all.
    Incomplete,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Incomplete => "INCOMPLETE",
        })
    }
}

/// The outcome of one criterion.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// `AC1`..`AC7`.
    pub criterion: Criterion,
    /// Title.
    pub title: &'static str,
    /// Findings, failures first.
    pub findings: Vec<Finding>,
    /// Free-form lines worth printing (RTT matrix, notes).
    pub notes: Vec<String>,
}

impl Verdict {
    /// A verdict from findings.
    pub fn new(criterion: Criterion, mut findings: Vec<Finding>, notes: Vec<String>) -> Verdict {
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.place().cmp(&b.place()))
        });
        Verdict {
            criterion,
            title: criterion.title(),
            findings,
            notes,
        }
    }
    /// Fails closed: a failing finding fails; an UNCHECKED finding, or no passing check at all,
    /// leaves the criterion incomplete; only the rest passes.
    pub fn outcome(&self) -> Outcome {
        let has = |sev| self.findings.iter().any(|f| f.severity == sev);
        if has(Severity::Fail) {
            Outcome::Fail
        } else if has(Severity::Unchecked) || !has(Severity::Pass) {
            Outcome::Incomplete
        } else {
            Outcome::Pass
        }
    }
    /// Passed: something was checked, and nothing failed or stayed unchecked. (Before verdicts
    /// failed closed this was "no failing finding"; UNCHECKED findings and zero checks now keep
    /// a criterion from passing.)
    pub fn passed(&self) -> bool {
        self.outcome() == Outcome::Pass
    }
    /// Failing findings.
    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Fail)
    }
    /// UNCHECKED findings: what could not be seen.
    pub fn unchecked(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Unchecked)
    }
    /// What could not be seen, in a few words: each root with how many checks depend on it,
    /// then the other UNCHECKED checks by place (the verdict's first line names it).
    pub fn not_seen(&self) -> String {
        const SHOWN: usize = 4;
        let mut roots: Vec<(&str, usize)> = Vec::new();
        let mut what: Vec<String> = Vec::new();
        for x in self.unchecked() {
            match &x.depends_on {
                Some(root) => match roots.iter_mut().find(|(r, _)| r == root) {
                    Some((_, n)) => *n += 1,
                    None => roots.push((root, 1)),
                },
                None => {
                    let line = format!("{}: {}", x.place(), x.subject);
                    if !what.contains(&line) {
                        what.push(line);
                    }
                }
            }
        }
        let more = what.len().saturating_sub(SHOWN);
        what.truncate(SHOWN);
        let mut parts: Vec<String> = roots
            .iter()
            .map(|(r, n)| format!("{n} depend{} on {r}", if *n == 1 { "s" } else { "" }))
            .collect();
        parts.extend(what);
        if more > 0 {
            parts.push(format!("and {more} more"));
        }
        parts.join("; ")
    }
    /// The verdict's first line after the title: PASSED, FAILED or INCOMPLETE with counts.
    pub fn headline(&self) -> String {
        let fails = self.failures().count();
        let unchecked = self.unchecked().count();
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        match self.outcome() {
            Outcome::Pass => "PASSED".to_string(),
            Outcome::Fail if unchecked == 0 => {
                format!("FAILED ({})", plural(fails, "failing finding"))
            }
            Outcome::Fail => format!(
                "FAILED ({}, {} unchecked: {})",
                plural(fails, "failing finding"),
                unchecked,
                self.not_seen()
            ),
            Outcome::Incomplete if unchecked == 0 => {
                "INCOMPLETE (no check was made: nothing was seen to pass)".to_string()
            }
            Outcome::Incomplete => format!(
                "INCOMPLETE ({} unchecked, not a pass: {})",
                unchecked,
                self.not_seen()
            ),
        }
    }
}

/// report.json's shape of a verdict: the fields it always had, and `result`.
#[derive(Serialize)]
struct VerdictJson<'a> {
    criterion: Criterion,
    title: &'static str,
    result: Outcome,
    findings: &'a [Finding],
    notes: &'a [String],
}

impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        VerdictJson {
            criterion: self.criterion,
            title: self.title,
            result: self.outcome(),
            findings: &self.findings,
            notes: &self.notes,
        }
        .serialize(s)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} {}: {}", self.criterion, self.title, self.headline())?;
        for n in &self.notes {
            writeln!(f, "  {n}")?;
        }
        for x in self
            .findings
            .iter()
            .filter(|x| x.severity != Severity::Pass)
        {
            write!(f, "{x}")?;
        }
        let passes = self
            .findings
            .iter()
            .filter(|x| x.severity == Severity::Pass)
            .count();
        match self.unchecked().count() {
            0 => writeln!(f, "  ({passes} checks passed)"),
            n => writeln!(f, "  ({passes} checks passed, {n} unchecked)"),
        }
    }
}

/// The words a failed probe showed: its output when it printed any, else the error (the
/// transport's, when the command never ran).
fn probe_words<T>(s: &Seen<T>) -> String {
    let err = s.value.as_ref().err().cloned().unwrap_or_default();
    if s.excerpt.is_empty() {
        err
    } else {
        s.excerpt.clone()
    }
}

/// The parser's reading of a failure, without the output it quotes again.
fn reading<T>(s: &Seen<T>) -> String {
    let err = s.value.as_ref().err().cloned().unwrap_or_default();
    match err.find(" (output starts: ") {
        Some(i) => err[..i].to_string(),
        None => err,
    }
}

/// A finding for a probe that could not run or parse: seen is the output's own words (or the
/// transport's error), the cause what they say; never the same text twice.
pub fn probe_failed<T>(machine: &str, subject: &str, s: &Seen<T>, expected: &str) -> Finding {
    let seen = probe_words(s);
    let read = reading(s);
    let cause = if s.excerpt.is_empty() && s.exit.is_none() && !s.command.is_empty() {
        let (kind, _) = crate::checks::roots::classify(&read);
        format!("the command never ran on {machine} ({kind})")
    } else if read == seen || read.is_empty() {
        format!("`{}` failed on {machine}", s.command)
    } else {
        read
    };
    Finding::new(Severity::Fail, "probe.failed", machine, subject)
        .evidence(s)
        .seen(seen)
        .expected(expected)
        .cause(cause)
}

/// A check that could not be made because its probe failed: UNCHECKED, with the command, its
/// exit and the output's own words, and the parser's reading as the reason.
pub fn probe_unchecked<T>(
    code: &'static str,
    machine: &str,
    subject: impl Into<String>,
    s: &Seen<T>,
    expected: impl Into<String>,
) -> Finding {
    let read = reading(s);
    let seen = probe_words(s);
    let seen = if read.is_empty() || read == seen {
        seen
    } else {
        format!("{seen} ({read})")
    };
    Finding::unchecked(code, machine, subject, seen)
        .evidence(s)
        .expected(expected)
}
