//! What A trusts for B's name: the `@cert-authority` lines of every known_hosts file A's hop
//! reads (`ssh -G`), against the repo's `openssh-ca`.

use super::Ctx;
use crate::checks::{Finding, Severity};
use crate::probe::ssh::client::Located;
use crate::probe::ssh::AcceptedCert;

/// `ssh-ed25519 SHA256:... at /etc/ssh/ssh_known_hosts:1 (ssh-ca,*.clan)`.
fn line_words(cx: &Ctx<'_>, l: &Located<'_>) -> String {
    format!(
        "{} at {} ({})",
        cx.name_ca(&l.ca.key_type, &l.ca.fingerprint),
        l.at(),
        l.ca.patterns.join(",")
    )
}

fn list(cx: &Ctx<'_>, lines: &[Located<'_>]) -> String {
    lines
        .iter()
        .map(|l| line_words(cx, l))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The instance through which the inventory makes `m` an sshd client, if any.
fn client_role(cx: &Ctx<'_>, m: &str) -> Option<String> {
    cx.exp
        .inventory
        .instances_of("sshd")
        .find_map(|(iname, inst)| {
            inst.roles
                .get("client")
                .filter(|r| r.members.iter().any(|x| x == m))
                .map(|_| format!("{iname}/client"))
        })
}

/// Why A has no CA line for B's name, from the inventory and the lines A does have.
fn missing_line_cause(cx: &Ctx<'_>, a: &str, principal: &str, others: &[Located<'_>]) -> String {
    let domain = &cx.exp.domain;
    let elsewhere = if others.is_empty() {
        String::new()
    } else {
        format!(" (its CA lines are for other names: {})", list(cx, others))
    };
    match client_role(cx, a) {
        Some(role) => format!(
            "{a} holds the sshd client role ({role}) in the inventory, which writes `@cert-authority *.{domain} <openssh-ca>` into /etc/ssh/ssh_known_hosts, yet no file its ssh reads has a line for {principal}{elsewhere}: {a} runs a configuration older than the inventory (redeploy {a}) or the file was replaced"
        ),
        None => format!(
            "{a} has no sshd client role in the inventory, so nothing writes a CA line for *.{domain}{elsewhere}: add {a} to the sshd instance's client role and redeploy it"
        ),
    }
}

/// A's trust for B's name.
pub(super) fn findings(cx: &Ctx<'_>, a: &str, b: &str) -> Vec<Finding> {
    let principal = cx.exp.principal(b);
    let subject = format!("@cert-authority for {principal}");
    let Some(client) = cx.client(a) else {
        return vec![
            Finding::new(Severity::Unchecked, "ssh.known-hosts-unread", a, subject)
                .to(b)
                .seen(format!("no client view of {a} in this observation"))
                .expected("the @cert-authority lines of every known_hosts file ssh -G names"),
        ];
    };
    let Some(view) = client.ok() else {
        let why = client.value.as_ref().err().cloned().unwrap_or_default();
        return vec![
            Finding::new(Severity::Unchecked, "ssh.known-hosts-unread", a, subject)
                .to(b)
                .evidence(client)
                .seen(why)
                .expected("the @cert-authority lines of every known_hosts file ssh -G names"),
        ];
    };
    let lines = view.trusting(&principal);
    let finding = |sev, code| {
        Finding::new(sev, code, a, subject.clone())
            .to(b)
            .evidence(client)
            .expected(format!("{} for {principal}", cx.repo_ca_words()))
    };
    if lines.is_empty() {
        let others: Vec<Located<'_>> = view.authorities().collect();
        return vec![finding(Severity::Fail, "ssh.no-ca-line")
            .seen(format!(
                "no @cert-authority line matching {principal} in {}",
                view.files_read()
            ))
            .cause(missing_line_cause(cx, a, &principal, &others))];
    }
    let Some(ca) = &cx.ca else {
        return vec![finding(Severity::Pass, "ssh.client-ca")
            .seen(list(cx, &lines))
            .expected("a CA line (the repo has no openssh-ca to compare)")];
    };
    let (clan, other): (Vec<Located<'_>>, Vec<Located<'_>>) = lines
        .iter()
        .partition(|l| l.ca.fingerprint == ca.fingerprint);
    if clan.is_empty() {
        return vec![finding(Severity::Fail, "ssh.client-other-ca").seen(list(cx, &other)).cause(format!(
            "{a} trusts for {principal} only another CA than {}: that line is stale or foreign, so {a} cannot verify a clan-signed certificate; {}",
            cx.repo_ca_words(),
            match client_role(cx, a) {
                Some(role) => format!("the sshd client role ({role}) writes the clan's CA: redeploy {a}"),
                None => format!("give {a} the sshd client role"),
            }
        ))];
    }
    if !other.is_empty() {
        return vec![finding(Severity::Warn, "ssh.extra-ca").seen(list(cx, &lines)).cause(format!(
            "besides the clan's CA, {a} trusts {} for {principal}: a certificate from that CA passes too; remove the line unless it is meant",
            list(cx, &other)
        ))];
    }
    vec![finding(Severity::Pass, "ssh.client-ca").seen(list(cx, &clan))]
}

/// Why ssh found no CA for the certificate it was shown (`No matching CA found`): which side
/// differs from the repo's CA, from A's lines and the certificate's CA.
pub(super) fn no_matching_ca(
    cx: &Ctx<'_>,
    a: &str,
    b: &str,
    cert: Option<&AcceptedCert>,
) -> String {
    let principal = cx.exp.principal(b);
    let Some(c) = cert else {
        return format!(
            "{b} showed a plain host key, no certificate, and {a} knows no plain key for {principal} under strict checking: {b}'s sshd serves no HostCertificate"
        );
    };
    let signed = cx.name_ca(&c.ca_type, &c.ca_fingerprint);
    let Some(view) = cx.view(a) else {
        return format!(
            "{b}'s certificate is signed by {signed}; which CAs {a} trusts is not known (its known_hosts files could not be read)"
        );
    };
    let lines = view.trusting(&principal);
    if lines.is_empty() {
        let others: Vec<Located<'_>> = view.authorities().collect();
        return format!(
            "no file {a}'s ssh reads has an @cert-authority line for {principal} ({}); {b}'s certificate is signed by {signed}. {}",
            view.files_read(),
            missing_line_cause(cx, a, &principal, &others)
        );
    }
    let repo = cx.ca.as_ref().map(|ca| ca.fingerprint.as_str());
    let trusts_repo = lines
        .iter()
        .any(|l| Some(l.ca.fingerprint.as_str()) == repo);
    if Some(c.ca_fingerprint.as_str()) == repo {
        format!(
            "{a} trusts for {principal} only {}, not {} that signed {b}'s certificate: {a}'s CA line is stale or foreign; redeploy {a}",
            list(cx, &lines),
            cx.repo_ca_words()
        )
    } else if trusts_repo {
        format!(
            "{b}'s certificate is signed by {signed}, not by {} that {a} trusts ({}): {b}'s certificate was not issued from the clan's CA; regenerate openssh-cert (clan vars generate) and redeploy {b}",
            cx.repo_ca_words(),
            list(cx, &lines)
        )
    } else {
        format!(
            "{b}'s certificate is signed by {signed} and {a} trusts {} for {principal}: neither is {}",
            list(cx, &lines),
            cx.repo_ca_words()
        )
    }
}
