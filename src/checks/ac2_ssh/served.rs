//! The certificate B serves (`ssh-keygen -L` of the HostCertificate `sshd -T` names), against
//! the repo: signed by its `openssh-ca`, the certificate of B's vars, a host certificate for
//! B's name, inside its window on B's own clock.

use ssh_key::certificate::CertType;
use ssh_key::{Certificate, HashAlg};

use super::Ctx;
use crate::checks::{Finding, Severity};
use crate::oracle::Sourced;
use crate::probe::ssh::{KeygenCertificate, Validity, WindowState};

const SUBJECT: &str = "served host certificate";

fn repo_cert<'a>(cx: &Ctx<'a>, b: &str) -> Option<&'a Sourced<Certificate>> {
    cx.exp.oracle.machines.get(b)?.host_cert.as_ref()
}

/// The repo certificate's window in B's local time, when B's clock says its zone (or the
/// window has no ends, which reads the same in every zone).
fn repo_window(cx: &Ctx<'_>, b: &str, c: &Certificate) -> Option<Validity> {
    let forever = c.valid_after() == 0 && c.valid_before() == u64::MAX;
    let offset = cx.clock(b).map(|k| k.utc_offset());
    (forever || offset.is_some())
        .then(|| Validity::from_unix(c.valid_after(), c.valid_before(), offset.unwrap_or(0)))
}

/// What to do about B's certificate, from what its vars hold.
pub(super) fn remedy(cx: &Ctx<'_>, b: &str) -> String {
    match repo_cert(cx, b) {
        Some(rc) => match repo_window(cx, b, &rc.value) {
            Some(w) if w.is_forever() => format!(
                "Its vars ({}) hold a certificate valid forever, so {b} serves another one: redeploy {b}",
                rc.path.display()
            ),
            Some(w) => format!(
                "Its vars ({}) hold a certificate valid {w}: regenerate openssh-cert (clan vars generate --regenerate) and redeploy {b}",
                rc.path.display()
            ),
            None => format!(
                "Compare with its vars ({}); regenerate openssh-cert if they are the same, and redeploy {b}",
                rc.path.display()
            ),
        },
        None => format!("Its vars hold no certificate: re-sign {b}'s host key with the clan CA and redeploy {b}"),
    }
}

/// Where B's served certificate differs from its vars, field by field.
fn differences(cx: &Ctx<'_>, b: &str, served: &KeygenCertificate, rc: &Certificate) -> Vec<String> {
    let mut d = Vec::new();
    let mut diff = |what: &str, seen: String, want: String| {
        if seen != want {
            d.push(format!("{what} {seen} (vars: {want})"));
        }
    };
    diff(
        "key",
        served.public_key.clone(),
        rc.public_key().fingerprint(HashAlg::Sha256).to_string(),
    );
    diff(
        "CA",
        served.signing_ca.clone(),
        rc.signature_key().fingerprint(HashAlg::Sha256).to_string(),
    );
    diff(
        "key ID",
        format!("{:?}", served.key_id),
        format!("{:?}", rc.key_id()),
    );
    diff("serial", served.serial.to_string(), rc.serial().to_string());
    let mut want: Vec<&str> = rc.valid_principals().iter().map(String::as_str).collect();
    let mut seen: Vec<&str> = served.principals.iter().map(String::as_str).collect();
    want.sort_unstable();
    seen.sort_unstable();
    diff("principals", format!("{seen:?}"), format!("{want:?}"));
    diff(
        "type",
        host_word(served.host),
        host_word(rc.cert_type() == CertType::Host),
    );
    if let Some(w) = repo_window(cx, b, rc) {
        diff("valid", served.validity.to_string(), w.to_string());
    }
    d
}

fn host_word(host: bool) -> String {
    if host { "host" } else { "user" }.to_string()
}

/// The findings about B's served certificate.
pub(super) fn findings(cx: &Ctx<'_>, b: &str) -> Vec<Finding> {
    let unread = |seen: String| {
        Finding::new(Severity::Unchecked, "ssh.served-unread", b, SUBJECT)
            .seen(seen)
            .expected("ssh-keygen -L of the HostCertificate sshd -T names")
    };
    let Some(st) = cx.status(b) else {
        return vec![unread(format!("no status of {b} in this observation"))];
    };
    // sshd -T did not answer: whether a certificate is configured is not known.
    if let Err(e) = &st.sshd.value {
        let said = if st.sshd.excerpt.is_empty() {
            e
        } else {
            &st.sshd.excerpt
        };
        return vec![unread(format!("sshd -T gave nothing to read: {said}")).evidence(&st.sshd)];
    }
    let principal = cx.exp.principal(b);
    let Some(s) = st.host_cert.as_ref() else {
        let cause = match repo_cert(cx, b) {
            Some(rc) => format!(
                "the repo holds a certificate for {b} ({}), but sshd on {b} is configured with none: its deployed configuration has certificates off or predates them; redeploy {b}",
                rc.path.display()
            ),
            None => format!("the repo holds no certificate for {b} either: clan-core before 2026-02-17 issues none without searchDomains; regenerate vars and redeploy {b}"),
        };
        return vec![Finding::new(Severity::Fail, "ssh.no-host-cert", b, SUBJECT)
            .evidence(&st.sshd)
            .seen("sshd -T names no hostcertificate")
            .expected("HostCertificate configured and readable")
            .cause(cause)];
    };
    let Some(cert) = s.ok() else {
        let err = s.value.as_ref().err().cloned().unwrap_or_default();
        // No exit status: the command never ran (transport), which says nothing of the file.
        if s.exit.is_none() {
            return vec![unread(format!("ssh-keygen -L did not run: {err}")).evidence(s)];
        }
        return vec![Finding::new(Severity::Fail, "ssh.no-host-cert", b, SUBJECT)
            .evidence(s)
            .seen(err.clone())
            .expected("HostCertificate configured and readable")
            .cause(format!(
                "sshd -T on {b} names a HostCertificate that ssh-keygen -L could not read: {err}"
            ))];
    };
    let fail = |code| Finding::new(Severity::Fail, code, b, SUBJECT).evidence(s);
    let mut f = Vec::new();
    match &cx.ca {
        Some(ca) if cert.signing_ca != ca.fingerprint => f.push(fail("ssh.foreign-ca").seen(format!("Signing CA: {}", signing_line(cert))).expected(format!("signed by {}", cx.repo_ca_words())).cause(format!(
            "{b} serves a certificate signed by {}, not by {}: regenerate openssh-cert from the clan's openssh-ca (clan vars generate) and redeploy {b}",
            signing_line(cert),
            cx.repo_ca_words()
        ))),
        Some(_) => {}
        None => f.push(Finding::new(Severity::Unchecked, "ssh.ca-unknown", b, SUBJECT).seen(format!("Signing CA: {}", signing_line(cert))).expected("the repo's vars/shared/openssh-ca to compare with")),
    }
    if !cert.host {
        f.push(fail("ssh.not-host-cert").seen(format!("Type: {} user certificate", cert.key_type)).expected("host certificate").cause(format!(
            "{b}'s HostCertificate was signed without -h (a user certificate): clients ignore it; re-sign it as a host certificate"
        )));
    }
    if !cert.principals.iter().any(|p| p == &principal) {
        f.push(fail("ssh.principal-mismatch").seen(format!("Principals: {:?}", cert.principals)).expected(format!("includes {principal}")).cause(format!(
            "{b}'s certificate was made for another name or domain: regenerate openssh-cert with meta.domain = {:?} and redeploy {b}",
            cx.exp.domain
        )));
    }
    match cx.clock(b).map(|k| (k, cert.validity.at(&k.local))) {
        Some((k, WindowState::Expired(on))) => f.push(fail("ssh.cert-expired").seen(format!("Serial: {}, Valid: {}", cert.serial, cert.valid)).expected(format!("valid at {} ({b}'s clock)", k.local)).cause(format!(
            "{b}'s host certificate (serial {}, ID {:?}) expired on {on}; {b}'s clock read {}. {}",
            cert.serial,
            cert.key_id,
            k.local,
            remedy(cx, b)
        ))),
        Some((k, WindowState::NotYetValid(from))) => f.push(fail("ssh.cert-not-yet-valid").seen(format!("Valid: {}", cert.valid)).expected(format!("valid at {} ({b}'s clock)", k.local)).cause(format!(
            "{b}'s host certificate is valid only from {from}; {b}'s clock read {}: the clock is behind or the certificate was issued with a start in the future",
            k.local
        ))),
        Some((_, WindowState::Valid)) => {}
        None if !cert.validity.is_forever() => f.push(Finding::new(Severity::Unchecked, "ssh.cert-window-unchecked", b, "served certificate window").evidence(s).seen(format!(
            "Valid: {}; {b}'s clock was not read ({})",
            cert.valid,
            cx.client(b).and_then(|c| c.value.as_ref().err()).map_or("no client view of it in this observation", String::as_str)
        )).expected(format!("{b}'s clock inside the window"))),
        None => {}
    }
    if let Some(rc) = repo_cert(cx, b) {
        let d = differences(cx, b, cert, &rc.value);
        if !d.is_empty() {
            f.push(fail("ssh.cert-not-repo").seen(d.join("; ")).expected(format!("the certificate of {}", rc.path.display())).cause(format!(
                "{b} serves a certificate other than its vars: re-signed outside clan vars, or {b} was not redeployed after its vars changed; redeploy {b} (clan machines update {b})"
            )));
        }
    }
    if f.is_empty() {
        f.push(
            Finding::new(Severity::Pass, "ssh.served-cert", b, SUBJECT)
                .seen(format!(
                    "serial {} ID {:?} for {:?}, signed by {}, valid {}",
                    cert.serial,
                    cert.key_id,
                    cert.principals,
                    signing_line(cert),
                    cert.valid
                ))
                .expected("its vars' certificate, signed by the clan's openssh-ca, valid"),
        );
    }
    f
}

/// `ECDSA SHA256:...`, as ssh-keygen prints the signing CA.
fn signing_line(c: &KeygenCertificate) -> String {
    format!("{} {}", c.signing_ca_type, c.signing_ca)
}
