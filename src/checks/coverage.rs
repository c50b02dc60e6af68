//! What a criterion could not look at because machines.toml does not list it: every machine the
//! inventory defines or places in a role and machines.toml leaves out is UNCHECKED "not in
//! machines.toml" on each criterion that would check it (its node, each ordered pair with it,
//! each role it holds), unless `[fleet] only` leaves it out on purpose; then every verdict says
//! which machines were checked.

use super::Finding;
use crate::expectations::Expectations;
use crate::names::Criterion;

const CODE: &str = "fleet.not-configured";

/// The UNCHECKED findings for inventory machines machines.toml does not list, and the note of
/// `[fleet] only`, added to `criterion`'s findings and notes.
pub fn add(
    criterion: Criterion,
    exp: &Expectations,
    findings: &mut Vec<Finding>,
    notes: &mut Vec<String>,
) {
    if let Some(note) = exp.only_note() {
        notes.insert(0, note);
    }
    let configured = exp.machines();
    let overlay_module = exp.config.overlay.module();
    for x in exp.unconfigured() {
        let why = format!(
            "not in machines.toml ({}): the inventory has it, no [[machine]] entry names it",
            exp.config.path.display()
        );
        let expected = format!(
            "a [[machine]] entry for {x}, or `[fleet] only` listing the machines meant to be checked"
        );
        let one = |subject: String| {
            Finding::unchecked(CODE, x, subject, why.clone()).expected(expected.clone())
        };
        let pairs = |subject: &str, f: &mut Vec<Finding>| {
            for m in &configured {
                f.push(one(subject.to_string()).to(m));
                f.push(one(subject.to_string()).to(x).with_machine(m));
            }
        };
        match criterion {
            Criterion::Ac1 => {
                let member = exp
                    .inventory
                    .instances_of(overlay_module)
                    .any(|(_, i)| i.roles.values().any(|r| r.members.iter().any(|m| m == x)));
                if member {
                    findings.push(one(format!("{overlay_module} node")));
                    pairs("ping over the overlay", findings);
                }
            }
            Criterion::Ac2 => pairs("SSH hop over the overlay", findings),
            Criterion::Ac3 => {
                for (inst, role) in exp.inventory.roles_of(x) {
                    findings.push(one(format!("{inst}/{role}")));
                }
            }
            Criterion::Ac4 => findings.push(one("shared vars and values".into())),
            Criterion::Ac5 | Criterion::Ac6 => findings.push(one("rebuild".into())),
            Criterion::Ac7 => {}
        }
    }
}

impl Finding {
    /// The same finding about another machine (a pair's other direction).
    fn with_machine(mut self, m: &str) -> Finding {
        self.machine = m.to_string();
        self
    }
}
