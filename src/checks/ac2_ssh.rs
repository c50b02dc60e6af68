//! AC2: SSH between machines over the overlay, host authenticated by certificate. For every
//! ordered pair A → B, A's own OpenSSH client connects to B's overlay address in batch mode with
//! strict checking, an empty user known_hosts and `HostKeyAlias=<B>.<domain>`, and must print B's
//! name after verifying B's certificate. B's served certificate must be signed by the CA that A
//! trusts for `*.<domain>` and name `<B>.<domain>`.

use super::{probe_failed, Finding, Severity, Verdict};
use crate::expectations::Expectations;
use crate::names::Criterion;
use crate::observe::Observations;
use crate::probe::ssh::HopClass;

fn class_finding(
    class: &HopClass,
    a: &str,
    b: &str,
    principal: &str,
) -> Option<(&'static str, String, String)> {
    let (code, seen, cause) = match class {
        HopClass::CertificateVerified => return None,
        HopClass::PlainKey => ("ssh.plain-key", "host authenticated by a plain known_hosts key, not by its certificate".to_string(), format!("{a} has a plain key for {principal}; certificate authentication was not exercised")),
        HopClass::PlainKeyFallbackRefused => ("ssh.plain-key-fallback", "no CA matched the certificate; fell back to plain-key checking and refused".to_string(), format!("{b}'s certificate is missing, not signed by the CA {a} trusts, or {a} has no @cert-authority line for *.{}", principal.split_once('.').map_or("", |x| x.1))),
        HopClass::PrincipalMismatch => ("ssh.principal-mismatch", "Certificate invalid: name is not a listed principal".to_string(), format!("{b}'s certificate does not name {principal}: regenerate openssh-cert with the fleet's domain")),
        HopClass::HostKeyChanged => ("ssh.host-key-changed", "host key changed".to_string(), format!("{b} presents a different key than known: reinstalled without its vars host key?")),
        HopClass::HostKeyRejected => ("ssh.host-key-rejected", "host key verification failed".to_string(), "the host key is neither certified by a trusted CA nor known".to_string()),
        HopClass::UserKeyRefused => ("ssh.user-key-refused", "Permission denied (publickey)".to_string(), format!("{b} does not authorise {a}'s root key: add it to the sshd instance's authorizedKeys (or generateRootKey) and redeploy {b}")),
        HopClass::Timeout => ("ssh.timeout", "connection timed out".to_string(), format!("no TCP answer from {b} over the overlay: sshd not listening there or packets dropped")),
        HopClass::NoRoute => ("ssh.no-route", "no route to host".to_string(), format!("{a} has no route to {b}'s overlay address: overlay down")),
        HopClass::ConnectionRefused => ("ssh.refused", "connection refused".to_string(), format!("sshd is not running on {b} (or not listening on the overlay address)")),
        HopClass::Other { line } => ("ssh.other", line.clone(), "see the ssh -v output".to_string()),
    };
    Some((code, seen, cause))
}

/// Judges AC2.
pub fn evaluate(exp: &Expectations, obs: &Observations) -> Verdict {
    let (status, hops) = (&obs.status, &obs.hops);
    let mut f = Vec::new();
    for ((a, b), h) in hops {
        let principal = exp.principal(b);
        match h.hop.ok() {
            None => f.push(probe_failed(a, "SSH hop over the overlay", &h.hop, &format!("`hostname` prints {b}")).to(b)),
            Some(hop) => match class_finding(&hop.class, a, b, &principal) {
                Some((code, seen, cause)) => f.push(Finding::new(Severity::Fail, code, a, "SSH hop over the overlay").to(b).evidence(&h.hop).seen(seen).expected(format!("certificate for {principal} verified, `hostname` prints {b}")).cause(cause)),
                None if h.hostname != *b => f.push(Finding::new(Severity::Fail, "ssh.wrong-host", a, "SSH hop over the overlay").to(b).evidence(&h.hop).seen(format!("hostname printed {:?}", h.hostname)).expected(format!("{b:?}")).cause(format!("the overlay address of {b} leads to another machine: address taken over or wrong vars"))),
                None => f.push(Finding::new(Severity::Pass, "ssh.cert-verified", a, "SSH hop over the overlay").to(b).seen(format!("certificate verified as {}, hostname {b}", hop.verified_name.clone().unwrap_or_default())).expected("certificate verified")),
            },
        }
        // The certificate B serves against the CA A trusts for B's name.
        let (Some(sa), Some(sb)) = (status.get(a), status.get(b)) else {
            continue;
        };
        let trusted: Option<String> = sa.cert_authorities.ok().and_then(|cas| {
            cas.iter()
                .find(|ca| ca.matches(&principal))
                .map(|ca| ca.fingerprint.clone())
        });
        let served = sb.host_cert.as_ref();
        match (trusted, served.and_then(|s| s.ok().map(|c| (s, c)))) {
            (None, _) => f.push(Finding::new(Severity::Fail, "ssh.no-ca-line", a, format!("@cert-authority for {principal}")).to(b).evidence(&sa.cert_authorities).expected(format!("an @cert-authority line matching {principal} in /etc/ssh/ssh_known_hosts")).cause(format!("{a} lacks the sshd client role (or certificates are off in this clan-core version)"))),
            (Some(_), None) => {
                let seen = served.map_or("sshd -T shows no hostcertificate".to_string(), |s| s.value.as_ref().err().cloned().unwrap_or_default());
                f.push(Finding::new(Severity::Fail, "ssh.no-host-cert", b, "served host certificate").to(a).evidence(&sb.sshd).seen(seen).expected("HostCertificate configured and readable").cause(format!("{b} has no host certificate: clan-core before 2026-02-17 issues none without searchDomains; regenerate vars and redeploy")));
            }
            (Some(ca), Some((s, cert))) => {
                if cert.signing_ca != ca {
                    f.push(Finding::new(Severity::Fail, "ssh.foreign-ca", b, "served host certificate CA").to(a).evidence(s).seen(format!("signed by {}", cert.signing_ca)).expected(format!("signed by {ca}, the CA {a} trusts for {principal}")).cause(format!("{b}'s certificate was signed by a foreign CA: regenerate openssh-cert from the clan's shared openssh-ca and redeploy {b}")));
                }
                if !cert.host {
                    f.push(Finding::new(Severity::Fail, "ssh.not-host-cert", b, "served certificate type").to(a).evidence(s).seen("user certificate").expected("host certificate").cause(format!("{b}'s HostCertificate was signed without -h (a user certificate): clients ignore it; re-sign it as a host certificate")));
                }
                if !cert.principals.iter().any(|p| p == &principal) {
                    f.push(Finding::new(Severity::Fail, "ssh.principal-mismatch", b, "served certificate principals").to(a).evidence(s).seen(format!("{:?}", cert.principals)).expected(format!("includes {principal}")).cause("openssh-cert was generated for another domain: regenerate it with the fleet's meta.domain"));
                }
            }
        }
    }
    Verdict::new(Criterion::Ac2, f, Vec::new())
}
