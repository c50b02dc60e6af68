//! The verdict types: a finding (what was checked on which machine, seen, expected, likely cause)
//! and a criterion's verdict. These are the stable shapes of report.json (`verdicts[].criterion`,
//! `findings[]` with `severity`, `code`, `machine`, `to`, `seen`, `expected`, `cause`).

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
    /// Not checked (no probe known): shown, never counted as a pass.
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
        }
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
        Ok(())
    }
}

/// The outcome of one criterion.
#[derive(Debug, Clone, Serialize)]
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
    /// No failing finding.
    pub fn passed(&self) -> bool {
        !self.findings.iter().any(|f| f.severity == Severity::Fail)
    }
    /// Failing findings.
    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Fail)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fails = self.failures().count();
        writeln!(
            f,
            "{} {}: {}",
            self.criterion,
            self.title,
            if fails == 0 {
                "PASSED".to_string()
            } else {
                format!(
                    "FAILED ({fails} failing finding{})",
                    if fails == 1 { "" } else { "s" }
                )
            }
        )?;
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
        writeln!(f, "  ({passes} checks passed)")
    }
}

/// A finding for a probe that could not run or parse.
pub fn probe_failed<T>(machine: &str, subject: &str, s: &Seen<T>, expected: &str) -> Finding {
    let err = s.value.as_ref().err().cloned().unwrap_or_default();
    Finding::new(Severity::Fail, "probe.failed", machine, subject)
        .evidence(s)
        .seen(if s.excerpt.is_empty() {
            err.clone()
        } else {
            format!("{} ({err})", s.excerpt)
        })
        .expected(expected)
        .cause(err)
}
