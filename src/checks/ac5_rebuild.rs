//! AC5: a shared configuration change is rebuilt onto every machine and applied identically:
//! each rebuild succeeds, each machine reports a new generation (or an unchanged closure), runs
//! the generation its profile names, and every artefact has the same hash everywhere (and the
//! expected one when configured). Destructive: runs live only with `COORD_DESTRUCTIVE=1`.

use std::collections::BTreeMap;

use super::{probe_failed, Finding, Severity, Verdict};
use crate::expectations::Expectations;
use crate::names::Criterion;
use crate::observe::Observations;
use crate::probe::nixos::SystemState;
use crate::rebuild::{RebuildRound, RebuildRun};

/// The verdict of a destructive criterion that was not allowed to run (or has no rebuild
/// recorded to judge).
pub fn not_run(criterion: Criterion, why: String) -> Verdict {
    Verdict::new(
        criterion,
        vec![
            Finding::new(Severity::Fail, "rebuild.not-run", "workstation", "rebuild")
                .seen(why.clone())
                .expected("an opted-in run")
                .cause(why),
        ],
        vec![],
    )
}

/// The rebuild round of `obs`, or the verdict saying there was none.
pub fn round_of(criterion: Criterion, obs: &Observations) -> Result<&RebuildRound, Verdict> {
    obs.rebuild.as_ref().ok_or_else(|| {
        not_run(
            criterion,
            "not run: no rebuild was observed (the suite runs it with the opt-in)".into(),
        )
    })
}

/// The output's own words about a failure: its last line saying "error", else its last line.
fn last_words(tail: &str) -> &str {
    let lines = || tail.lines().map(str::trim).filter(|l| !l.is_empty());
    lines()
        .rfind(|l| l.to_ascii_lowercase().contains("error"))
        .or_else(|| lines().next_back())
        .unwrap_or("(no output)")
}

/// A failed rebuild's cause: what the command said, and what the machine runs now.
fn failed_cause(
    m: &str,
    run: &RebuildRun,
    b: Option<&SystemState>,
    a: Option<&SystemState>,
) -> String {
    let said = match &run.error {
        Some(e) => format!("the rebuild command did not complete: {e}"),
        None => format!(
            "the rebuild exited {} saying: {}",
            run.exit
                .map_or("without a status (killed)".to_string(), |e| e.to_string()),
            last_words(&run.tail)
        ),
    };
    let now = match (b, a) {
        (Some(b), Some(a)) if a.current == b.current => format!(
            "; {m} still runs the system it ran before (generation {}, {})",
            gen(a.generation),
            a.current
        ),
        (Some(b), Some(a)) => format!(
            "; {m}'s running system changed nevertheless ({} → {}): check what the rebuild activated before it failed",
            b.current, a.current
        ),
        _ => String::new(),
    };
    format!("{said}{now}; whole output in {}", run.log)
}

fn gen(g: Option<u32>) -> String {
    g.map_or("-".to_string(), |g| g.to_string())
}

/// Per machine: the rebuild ran, a generation was made (or nothing changed), it is active.
pub fn machine_findings(exp: &Expectations, r: &RebuildRound, f: &mut Vec<Finding>) {
    for m in exp.machines() {
        let states = (
            r.before.get(m).and_then(|s| s.ok()),
            r.after.get(m).and_then(|s| s.ok()),
        );
        match r.runs.get(m) {
            Some(run) if !run.ok() => {
                f.push(
                    Finding::new(Severity::Fail, "rebuild.failed", m, "rebuild")
                        .seen(match &run.error {
                            Some(e) => e.clone(),
                            None => format!(
                                "exit {}; last lines:\n{}",
                                run.exit.map_or("none".to_string(), |e| e.to_string()),
                                run.tail
                            ),
                        })
                        .expected("exit 0")
                        .cause(failed_cause(m, run, states.0, states.1)),
                );
                if let Some(x) = f.last_mut() {
                    x.command = run.command.clone();
                    x.exit = run.exit;
                }
                continue;
            }
            Some(run) => f.push(
                Finding::new(Severity::Pass, "rebuild.ok", m, "rebuild")
                    .seen(format!("exit 0 in {:.1}s", run.secs))
                    .expected("exit 0"),
            ),
            None => {
                f.push(
                    Finding::new(Severity::Unchecked, "rebuild.not-rebuilt", m, "rebuild")
                        .seen("no rebuild ran for this machine")
                        .expected("one rebuild per machine")
                        .cause(format!("the run has no rebuild of {m}: its generation and running system were not judged")),
                );
                continue;
            }
        }
        let (Some(b), Some(a)) = (r.before.get(m), r.after.get(m)) else {
            f.push(
                Finding::new(Severity::Unchecked, "rebuild.state-unseen", m, "system generation")
                    .seen("the system state was not read before and after the rebuild")
                    .expected("profile, current system and artefact hashes before and after")
                    .cause(format!("no state probe of {m} in this run: its generation and running system were not judged")),
            );
            continue;
        };
        let (Some(before), Some(after)) = (b.ok(), a.ok()) else {
            let s = if b.ok().is_none() { b } else { a };
            f.push(probe_failed(
                m,
                "system generation",
                s,
                "profile, current system and artefact hashes",
            ));
            continue;
        };
        let word = |g: Option<u32>| g.map_or_else(|| "none".to_string(), |g| g.to_string());
        let gens = format!(
            "generation {} → {}",
            word(before.generation),
            word(after.generation)
        );
        if after.generation > before.generation {
            f.push(
                Finding::new(Severity::Pass, "rebuild.generation", m, "system generation")
                    .seen(gens)
                    .expected("a new generation"),
            );
        } else if after.current == before.current {
            f.push(
                Finding::new(Severity::Info, "rebuild.unchanged", m, "system closure")
                    .seen(format!("unchanged ({gens}): {}", after.current))
                    .expected("a new generation, or an unchanged closure when nothing changed for this machine"),
            );
        } else {
            f.push(
                Finding::new(Severity::Fail, "rebuild.no-generation", m, "system generation")
                    .evidence(a)
                    .seen(format!("{gens}, current system changed to {}", after.current))
                    .expected("a new, higher generation in the system profile")
                    .cause(format!(
                        "{m}'s running system changed ({} → {}) but its system profile still names generation {}: it was activated without registering a generation (`nixos-rebuild test`, or switch-to-configuration run by hand), so a reboot returns to generation {}",
                        before.current, after.current, gen(after.generation), gen(after.generation)
                    )),
            );
        }
        if after.current == after.profile_path {
            f.push(
                Finding::new(Severity::Pass, "rebuild.active", m, "/run/current-system")
                    .seen(after.current.clone())
                    .expected("the profile's generation"),
            );
        } else {
            let cause = if after.current == before.current {
                format!(
                    "{m} still runs the system it ran before the rebuild while its profile moved to generation {}: the new generation was registered but not activated (`boot` instead of `switch`, or the activation failed: see the rebuild log {})",
                    gen(after.generation),
                    r.runs.get(m).map_or("-", |x| x.log.as_str())
                )
            } else {
                format!(
                    "{m} runs a system that is neither its profile's generation {} nor the one it ran before the rebuild ({}): another system was activated after the switch",
                    gen(after.generation),
                    before.current
                )
            };
            f.push(
                Finding::new(
                    Severity::Fail,
                    "rebuild.not-switched",
                    m,
                    "/run/current-system",
                )
                .evidence(a)
                .seen(format!("running {}", after.current))
                .expected(format!("the profile's generation {}", after.profile_path))
                .cause(cause),
            );
        }
    }
}

/// Every artefact: same hash on every machine, and the expected one when configured.
pub fn artefact_findings(exp: &Expectations, r: &RebuildRound, f: &mut Vec<Finding>) {
    for art in &exp.config.rebuild.artefacts {
        let mut by_hash: BTreeMap<Option<String>, Vec<&str>> = BTreeMap::new();
        for m in exp.machines() {
            if let Some(st) = r.after.get(m).and_then(|s| s.ok()) {
                by_hash
                    .entry(st.files.get(&art.path).cloned().flatten())
                    .or_default()
                    .push(m);
            }
        }
        // The reference: the configured hash, else the one most machines with a successful
        // rebuild agree on (a tie names no winner: every side is reported).
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (h, ms) in &by_hash {
            if let Some(h) = h {
                let ok = ms
                    .iter()
                    .filter(|m| r.runs.get(**m).is_some_and(|x| x.ok()))
                    .count();
                if ok > 0 {
                    counts.insert(h.as_str(), ok);
                }
            }
        }
        let top = counts.values().copied().max().unwrap_or(0);
        let leaders: Vec<&str> = counts
            .iter()
            .filter(|(_, n)| **n == top)
            .map(|(h, _)| *h)
            .collect();
        let majority = (leaders.len() == 1).then(|| leaders[0].to_string());
        let want = art.expect_sha256.clone().or(majority);
        for (h, ms) in &by_hash {
            for m in ms {
                match (h, &want) {
                    (None, _) => f.push(
                        Finding::new(
                            Severity::Fail,
                            "rebuild.artefact-missing",
                            m,
                            art.path.clone(),
                        )
                        .seen("no such file")
                        .expected("present after the rebuild")
                        .cause(missing_cause(r, m, &art.path)),
                    ),
                    (Some(h), Some(w)) if h == w => f.push(
                        Finding::new(Severity::Pass, "rebuild.artefact", m, art.path.clone())
                            .seen(h.clone())
                            .expected(w.clone()),
                    ),
                    (Some(h), w) => {
                        let failed = r.runs.get(*m).is_some_and(|x| !x.ok());
                        let expected = match (w, art.expect_sha256.is_some()) {
                            (Some(w), true) => format!("sha256 {w} (configured)"),
                            (Some(w), false) => format!("sha256 {w} (as on the other machines)"),
                            (None, _) => "one version on every machine".to_string(),
                        };
                        let before = r
                            .before
                            .get(*m)
                            .and_then(|s| s.ok())
                            .and_then(|s| s.files.get(&art.path).cloned().flatten());
                        let cause = if failed {
                            format!(
                                "{m}'s rebuild failed, so it still has the previous version of {}",
                                art.path
                            )
                        } else if before.as_ref() == Some(h) {
                            format!("{m}'s rebuild did not change {} (the same sha256 before and after) while the others changed it: the change did not reach {m}'s configuration (it applied the previous revision, or the file is set per machine)", art.path)
                        } else {
                            format!("{m}'s rebuild changed {} to another version than the others: its rebuild used another revision, or the file is set per machine", art.path)
                        };
                        f.push(
                            Finding::new(
                                Severity::Fail,
                                "rebuild.artefact-differs",
                                m,
                                art.path.clone(),
                            )
                            .seen(format!("sha256 {h}"))
                            .expected(expected)
                            .cause(cause),
                        );
                    }
                }
            }
        }
    }
}

/// Why an artefact is absent after the rebuild: it was there before (the new generation dropped
/// it) or never was.
fn missing_cause(r: &RebuildRound, m: &str, path: &str) -> String {
    let before = r
        .before
        .get(m)
        .and_then(|s| s.ok())
        .map(|s| s.files.get(path).cloned().flatten());
    let failed = r.runs.get(m).is_some_and(|x| !x.ok());
    match before {
        _ if failed => format!("{m}'s rebuild failed and {path} is absent: see the rebuild's finding"),
        Some(Some(h)) => format!("{m}'s previous system had {path} (sha256 {h}); its new generation does not: {m}'s new configuration no longer produces it"),
        Some(None) => format!("{path} was absent before the rebuild too: {m}'s configuration does not produce it, before or after the change"),
        None => format!("{path} is not part of {m}'s new generation (its previous state was not read)"),
    }
}

/// Judges AC5 from a rebuild round.
pub fn evaluate(exp: &Expectations, obs: &Observations) -> Verdict {
    let r = match round_of(Criterion::Ac5, obs) {
        Ok(r) => r,
        Err(v) => return v,
    };
    let mut f = Vec::new();
    machine_findings(exp, r, &mut f);
    artefact_findings(exp, r, &mut f);
    let notes = r
        .runs
        .iter()
        .map(|(m, run)| {
            format!(
                "{m}: `{}` {} in {:.1}s, log {}",
                run.command,
                run.exit.map_or_else(
                    || "ended without an exit status".into(),
                    |c| format!("exit {c}")
                ),
                run.secs,
                run.log
            )
        })
        .collect();
    Verdict::new(Criterion::Ac5, f, notes)
}
