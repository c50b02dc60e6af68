//! AC4: shared vars. Deployed shared secret files are compared by sha256 across the machines the
//! repo encrypts them for (never their content); shared public values (the CA line, the ZeroTier
//! network id) are compared with the repo. When no shared secret is deployed, the verdict says so.

use std::collections::BTreeMap;

use super::{probe_failed, probe_unchecked, Finding, Severity, Verdict};
use crate::expectations::Expectations;
use crate::names::Criterion;
use crate::observe::Observations;

/// Judges AC4.
pub fn evaluate(exp: &Expectations, obs: &Observations) -> Verdict {
    let status = &obs.status;
    let mut f = Vec::new();
    let mut notes = Vec::new();
    let in_fleet = exp.machines();
    let mut deployed_any = false;
    for var in exp.oracle.shared_files().filter(|v| v.secret) {
        let rel = format!("{}/{}", var.generator, var.file);
        let recipients: Vec<&str> = var
            .recipients
            .iter()
            .map(String::as_str)
            .filter(|r| in_fleet.contains(r))
            .collect();
        if recipients.is_empty() {
            notes.push(format!("shared secret {rel}: not deployed to any machine (deploy = false, stays in the repo)"));
            continue;
        }
        deployed_any = true;
        let mut hashes: Vec<(&str, String, String)> = Vec::new();
        for m in &recipients {
            let Some(seen) = status.get(*m).and_then(|s| s.shared.get(&rel)) else {
                f.push(unseen(m, format!("shared secret {rel}")));
                continue;
            };
            match seen.ok() {
                None => f.push(probe_failed(
                    m,
                    &format!("shared secret {rel}"),
                    seen,
                    "sha256 of the deployed file",
                )),
                Some(h) if h.is_empty() => f.push(
                    Finding::new(
                        Severity::Fail,
                        "shared.secret-missing",
                        m,
                        format!("shared secret {rel}"),
                    )
                    .evidence(seen)
                    .seen("not deployed under /run/secrets*/vars")
                    .expected(format!("deployed: the repo encrypts it for {m}"))
                    .cause(format!(
                        "secrets not uploaded to {m} (`clan vars upload {m}`) or sops-nix failed"
                    )),
                ),
                Some(h) => {
                    if let Some((p, hash)) = h.iter().next() {
                        hashes.push((m, p.clone(), hash.clone()));
                    }
                }
            }
        }
        if hashes.len() < 2 {
            if let Some((m, p, _)) = hashes.first() {
                f.push(
                    Finding::new(
                        Severity::Pass,
                        "shared.secret-present",
                        m,
                        format!("shared secret {rel}"),
                    )
                    .seen(format!("deployed at {p}"))
                    .expected("deployed (only one recipient in the fleet: nothing to compare)"),
                );
            }
            continue;
        }
        // The most common hash is the reference; every machine that differs is named.
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, _, h) in &hashes {
            *counts.entry(h.as_str()).or_default() += 1;
        }
        let reference = counts
            .iter()
            .max_by_key(|(_, c)| **c)
            .map(|(h, _)| h.to_string())
            .unwrap_or_default();
        let holders: Vec<&str> = hashes
            .iter()
            .filter(|(_, _, h)| *h == reference)
            .map(|(m, _, _)| *m)
            .collect();
        for (m, p, h) in &hashes {
            if *h == reference {
                f.push(
                    Finding::new(
                        Severity::Pass,
                        "shared.secret-equal",
                        m,
                        format!("shared secret {rel}"),
                    )
                    .seen(format!("sha256 {}… at {p}", &h[..12]))
                    .expected("same sha256 on every recipient"),
                );
            } else {
                let seen = status.get(*m).and_then(|s| s.shared.get(&rel));
                let mut x = Finding::new(Severity::Fail, "shared.secret-differs", m, format!("shared secret {rel}")).seen(format!("sha256 {}… at {p}", &h[..12])).expected(format!("sha256 {}… as on {}", &reference[..12], holders.join(", "))).cause(format!("{m} holds another version of the shared secret: it was regenerated and {m} not redeployed, or the file was edited on {m}"));
                if let Some(s) = seen {
                    x.command = s.command.clone();
                    x.exit = s.exit;
                }
                f.push(x);
            }
        }
    }
    if !deployed_any {
        notes.push("no shared secret is deployed to the machines (with the story's settings none is: users-root has share = false, openssh-ca stays in the repo); shared public values are compared below".into());
    }
    // Shared public values.
    if let Some(ca) = exp.oracle.ca_fingerprint() {
        for m in &in_fleet {
            let Some(st) = status.get(*m) else {
                f.push(unseen(m, "shared openssh-ca in @cert-authority".into()));
                continue;
            };
            let principal = exp.principal(m);
            match st.cert_authorities.ok() {
                None => f.push(probe_failed(m, "CA line", &st.cert_authorities, &ca)),
                Some(cas) => {
                    let mine: Vec<&str> = cas
                        .iter()
                        .filter(|c| c.matches(&principal))
                        .map(|c| c.fingerprint.as_str())
                        .collect();
                    if mine.contains(&ca.as_str()) {
                        f.push(
                            Finding::new(
                                Severity::Pass,
                                "shared.ca",
                                m,
                                "shared openssh-ca in @cert-authority",
                            )
                            .seen(ca.clone())
                            .expected(ca.clone()),
                        );
                    } else if !mine.is_empty() {
                        f.push(Finding::new(Severity::Fail, "shared.ca-differs", m, "shared openssh-ca in @cert-authority").evidence(&st.cert_authorities).seen(mine.join(", ")).expected(format!("{ca} (vars/shared/openssh-ca)")).cause(format!("{m}'s known_hosts names CA {} for {principal}, not the clan's shared openssh-ca {ca}: the line comes from an older or foreign configuration; redeploy {m}", mine.join(", "))));
                    } else {
                        // No line at all is the sshd client role's business (AC3 fails it);
                        // here there is no value to compare: UNCHECKED where a line is expected.
                        f.push(ca_absent(exp, m, &principal, &ca));
                    }
                }
            }
        }
    }
    for (iname, inst) in exp.inventory.instances_of("zerotier") {
        let net = exp.oracle.zerotier_network(iname);
        for m in inst
            .roles
            .values()
            .flat_map(|r| r.members.iter())
            .filter(|m| in_fleet.contains(&m.as_str()))
            .collect::<std::collections::BTreeSet<_>>()
        {
            let subject = format!("shared network id of {iname}");
            let Some(net) = net else {
                f.push(Finding::unchecked("shared.network-id", m, subject, format!("the clan repo has no network id for {iname} (AC1 fails it: oracle.missing)")).expected("a network id to compare"));
                continue;
            };
            let Some(st) = status.get(m) else {
                f.push(unseen(m, subject));
                continue;
            };
            let Some(nets) = st.overlay.zerotier().map(|z| &z.networks) else {
                continue;
            };
            match nets.ok() {
                None => f.push(probe_unchecked("shared.network-id", m, subject, nets, format!("{} listed", net.id.value))),
                Some(list) if list.iter().any(|n| n.id == net.id.value) => f.push(
                    Finding::new(Severity::Pass, "shared.network-id", m, subject)
                        .seen(net.id.value.to_string())
                        .expected(net.id.value.to_string()),
                ),
                Some(list) => f.push(Finding::new(Severity::Fail, "shared.network-id-differs", m, subject).evidence(nets).seen(format!("{:?}", list.iter().map(|n| n.id.to_string()).collect::<Vec<_>>())).expected(format!("{} ({})", net.id.value, net.id.path.display())).cause(format!("{m} runs with network id(s) the repo's shared var does not name: its configuration predates the var (a recreated network); redeploy {m}"))),
            }
        }
    }
    Verdict::new(Criterion::Ac4, f, notes)
}

/// A value AC4 compares on `m` that this run did not observe.
fn unseen(m: &str, subject: String) -> Finding {
    Finding::unchecked("shared.unseen", m, subject, "not observed in this run")
        .expected("the deployed value, to compare")
}

/// No `@cert-authority` line for `principal` on `m`: nothing to compare. Where the inventory
/// gives `m` the sshd client role a line is expected, so the comparison is UNCHECKED (AC3 fails
/// the missing line); elsewhere it is information.
fn ca_absent(exp: &Expectations, m: &str, principal: &str, ca: &str) -> Finding {
    let client = exp.inventory.instances_of("sshd").any(|(_, i)| {
        i.roles
            .get("client")
            .is_some_and(|r| r.members.iter().any(|x| x == m))
    });
    let subject = "shared openssh-ca in @cert-authority";
    let seen = format!("no @cert-authority line matching {principal}: no value to compare");
    if client {
        Finding::unchecked("shared.ca-absent", m, subject, seen).expected(format!(
            "{ca} (AC3 fails the missing line: sshd.client-no-ca)"
        ))
    } else {
        Finding::new(Severity::Info, "shared.ca-absent", m, subject)
            .seen(seen)
            .expected(format!(
                "{ca} where the sshd client role puts the line; {m} does not hold it"
            ))
    }
}
