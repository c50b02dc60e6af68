//! The hop A → B as A's `ssh -v` told it: the certificate it was shown and accepted (CA against
//! the repo's `openssh-ca`, window against A's clock, the name checked), or why it ended, with
//! the cause read from the output and from the run's other observations of the same machines.

use super::{Ctx, RepoCa};
use crate::checks::{probe_failed, Finding, Severity};
use crate::observe::HopSeen;
use crate::probe::ssh::{AcceptedCert, Hop, HopClass, WindowState};

const SUBJECT: &str = "SSH hop over the overlay";

/// The findings of one hop.
pub(super) fn findings(cx: &Ctx<'_>, a: &str, b: &str, h: &HopSeen) -> Vec<Finding> {
    let Some(hop) = h.hop.ok() else {
        let want = format!("`hostname` prints {b}");
        return vec![probe_failed(a, SUBJECT, &h.hop, &want).to(b)];
    };
    if hop.class == HopClass::CertificateVerified {
        return accepted(cx, a, b, h, hop);
    }
    let (code, seen, cause) = refused(cx, a, b, hop);
    vec![fail(cx, code, a, b, h).seen(seen).cause(cause)]
}

fn fail(cx: &Ctx<'_>, code: &'static str, a: &str, b: &str, h: &HopSeen) -> Finding {
    Finding::new(Severity::Fail, code, a, SUBJECT)
        .to(b)
        .evidence(&h.hop)
        .expected(format!(
            "a certificate for {} signed by {}, inside its validity window, verified; `hostname` prints {b}",
            cx.exp.principal(b),
            cx.repo_ca_words()
        ))
}

/// `serial 7 ID "gcp-vm" (CA ssh-ed25519 SHA256:...)`.
fn cert_words(cx: &Ctx<'_>, c: &AcceptedCert) -> String {
    format!(
        "serial {} ID {:?}, CA {}",
        c.serial,
        c.id,
        cx.name_ca(&c.ca_type, &c.ca_fingerprint)
    )
}

/// ` (gcp-vm's clock read 2026-09-21T14:13:20)`, when known.
fn clock_words(cx: &Ctx<'_>, m: &str) -> String {
    cx.clock(m)
        .map(|c| format!(" ({m}'s clock read {} at the run)", c.local))
        .unwrap_or_default()
}

/// The hop was verified by a certificate: is it the certificate the repo stands for?
fn accepted(cx: &Ctx<'_>, a: &str, b: &str, h: &HopSeen, hop: &Hop) -> Vec<Finding> {
    let principal = cx.exp.principal(b);
    let Some(c) = &hop.certificate else {
        return vec![
            Finding::new(Severity::Unchecked, "ssh.cert-unseen", a, SUBJECT)
                .to(b)
                .evidence(&h.hop)
                .seen(hop.quote(&["is known and matches"]))
                .expected("ssh -v's `Server host certificate:` line, to compare the CA and window"),
        ];
    };
    let mut out = Vec::new();
    let quoted = || {
        hop.quote(&[
            "Server host certificate:",
            "Found CA key in",
            "is known and matches",
        ])
    };
    let found = c
        .known_hosts
        .as_ref()
        .map(|l| format!(" at {l}"))
        .unwrap_or_default();
    if let Some(RepoCa { fingerprint, .. }) = &cx.ca {
        if &c.ca_fingerprint != fingerprint {
            out.push(fail(cx, "ssh.accepted-foreign-ca", a, b, h).seen(quoted()).cause(format!(
                "{a} accepted {b}'s certificate ({}) because it trusts that CA{found}; it is not {}: {a} trusts an extra CA for {principal} and {b} serves a certificate from it. Remove that line from {a} and re-sign {b}'s host key with the clan CA (clan vars generate, redeploy {b})",
                cert_words(cx, c),
                cx.repo_ca_words()
            )));
        }
    }
    match cx.clock(a).map(|clk| (clk, c.validity.at(&clk.local))) {
        Some((clk, WindowState::Expired(on))) => out.push(fail(cx, "ssh.cert-expired", a, b, h).seen(quoted()).cause(format!(
            "{b}'s certificate ({}) expired on {on}, yet {a} accepted it: {a}'s clock read {} a moment later, so the clock stepped between the two probes",
            cert_words(cx, c),
            clk.local
        ))),
        Some((clk, WindowState::NotYetValid(from))) => out.push(fail(cx, "ssh.cert-not-yet-valid", a, b, h).seen(quoted()).cause(format!(
            "{b}'s certificate is valid only from {from}, {a}'s clock read {}: the clock stepped between the two probes",
            clk.local
        ))),
        Some((_, WindowState::Valid)) => {}
        None if !c.validity.is_forever() => out.push(
            Finding::new(Severity::Unchecked, "ssh.cert-window-unchecked", a, "certificate window on the client's clock")
                .to(b)
                .seen(format!("valid {}; {a}'s clock was not read: {}", c.validity, cx.client(a).and_then(|s| s.value.as_ref().err()).map_or("no client view", String::as_str)))
                .expected(format!("{a}'s clock inside the window")),
        ),
        None => {}
    }
    if c.principal_name
        .as_deref()
        .is_some_and(|n| !n.eq_ignore_ascii_case(&principal))
    {
        out.push(fail(cx, "ssh.principal-mismatch", a, b, h).seen(quoted()).cause(format!(
            "{a} checked {b}'s certificate as {:?}, not {principal}: the hop's HostKeyAlias was overridden by {a}'s ssh configuration",
            c.principal_name.as_deref().unwrap_or_default()
        )));
    }
    if h.hostname != b {
        out.push(fail(cx, "ssh.wrong-host", a, b, h).seen(format!("hostname printed {:?}; {}", h.hostname, quoted())).cause(format!(
            "the overlay address of {b} leads to a machine calling itself {:?}, though it holds a certificate for {principal}: address taken over, or the machine was renamed without new vars",
            h.hostname
        )));
    }
    if out.is_empty() {
        out.push(
            Finding::new(Severity::Pass, "ssh.cert-verified", a, SUBJECT)
                .to(b)
                .seen(format!(
                    "{} verified by certificate {} ({} {}){found}, valid {}; hostname {b}",
                    hop.verified_name.clone().unwrap_or_default(),
                    cert_words(cx, c),
                    c.key_type,
                    c.fingerprint,
                    c.validity
                ))
                .expected("certificate signed by the clan's openssh-ca, valid, verified"),
        );
    }
    out
}

/// A hop that did not verify: its code, the output's own lines, and the cause they show.
fn refused(cx: &Ctx<'_>, a: &str, b: &str, hop: &Hop) -> (&'static str, String, String) {
    let principal = cx.exp.principal(b);
    let cert = hop.certificate.as_ref();
    let q = |n: &[&str]| hop.quote(n);
    let addr = crate::overlay::expected_address(cx.exp, b)
        .map_or_else(|| format!("{b}'s overlay address"), |x| x.to_string());
    let secs = cx.exp.config.ssh.connect_timeout.as_secs().max(1);
    match &hop.class {
        HopClass::CertificateExpired => {
            let on = cert.and_then(|c| c.validity.to.as_ref()).map_or_else(|| "(the end date is not in the output)".to_string(), |t| format!("on {t}"));
            let what = cert.map(|c| format!(" ({})", cert_words(cx, c))).unwrap_or_default();
            ("ssh.cert-expired", q(&["Server host certificate:", "Certificate invalid"]), format!(
                "{b}'s host certificate{what} expired {on}{}: {a} found its CA but refused the certificate. {}",
                clock_words(cx, a),
                super::served::remedy(cx, b)
            ))
        }
        HopClass::CertificateNotYetValid => {
            let from = cert.and_then(|c| c.validity.from.as_ref()).map_or_else(String::new, |t| format!(" from {t}"));
            ("ssh.cert-not-yet-valid", q(&["Server host certificate:", "Certificate invalid"]), format!(
                "{b}'s host certificate is valid only{from}{}: {a}'s clock is behind (check its time sync) or the certificate was issued with a start in the future",
                clock_words(cx, a)
            ))
        }
        HopClass::PrincipalMismatch => {
            let names = cx.status(b).and_then(|s| s.host_cert.as_ref()).and_then(|s| s.ok()).map(|c| format!("names {:?} (ssh-keygen -L on {b})", c.principals));
            ("ssh.principal-mismatch", q(&["Server host certificate:", "Certificate invalid"]), format!(
                "{b}'s certificate {}, and {a} checked it as {principal}: it was made for another name or domain; regenerate openssh-cert with meta.domain = {:?} and redeploy {b}",
                names.unwrap_or_else(|| "does not name it".into()),
                cx.exp.domain
            ))
        }
        HopClass::CertificateInvalid { reason } => ("ssh.cert-invalid", q(&["Server host certificate:", "Certificate"]), format!(
            "{a}'s ssh found the CA of {b}'s certificate and refused the certificate: {reason}"
        )),
        HopClass::PlainKeyFallbackRefused => ("ssh.no-matching-ca", q(&["Server host certificate:", "No matching CA", "Host key verification failed", "is known for"]), super::trust::no_matching_ca(cx, a, b, cert)),
        HopClass::Timeout => ("ssh.timeout", q(&["timed out"]), match ping(cx, a, b) {
            Some((true, p)) => format!("TCP port 22 at {addr} gave no answer within ConnectTimeout={secs} s, yet {p} in the same run: the overlay carries packets, so tcp/22 is dropped (a firewall on {b}'s overlay interface); a stopped sshd would refuse, not stay silent"),
            Some((false, p)) => format!("no answer at all from {addr}: {p} as well, so the overlay path {a} → {b} is down (AC1 says more), not sshd"),
            None => format!("TCP port 22 at {addr} gave no answer within ConnectTimeout={secs} s: packets are dropped on the way or at {b} (firewall), or {b} is down; a stopped sshd would refuse, not stay silent"),
        }),
        HopClass::BannerTimeout => ("ssh.banner-timeout", q(&["Connection established", "timed out"]), format!(
            "TCP to {addr} port 22 connected, but no SSH banner came within {secs} s: what holds port 22 on {b} accepts and says nothing: sshd hung or at its MaxStartups limit, or another program listens there{}",
            sshd_unit(cx, b).map(|u| format!(" ({u})")).unwrap_or_default()
        )),
        HopClass::ConnectionRefused => ("ssh.refused", q(&["refused"]), refusal(cx, b, &addr)),
        HopClass::NoRoute => ("ssh.no-route", q(&["unreachable"]), format!(
            "{a} itself has no route to {addr}: `Network is unreachable` comes from {a}'s own kernel before any packet leaves, so {a}'s overlay interface is down or holds no address or route in the overlay network; {b} is not at fault{}",
            ping(cx, a, b).map(|(ok, p)| if ok { format!(" (though {p} in the same run: the route went away between the probes)") } else { format!(" ({p} too)") }).unwrap_or_default()
        )),
        HopClass::HostUnreachable => ("ssh.host-unreachable", q(&["No route to host"]), format!(
            "{a} has a route towards {addr} but nothing answered for the address (`No route to host`: neighbour discovery failed, or a router sent host-unreachable): {b} is down or not on the overlay{}",
            ping(cx, a, b).map(|(_, p)| format!(" ({p})")).unwrap_or_default()
        )),
        HopClass::UserKeyRefused => ("ssh.user-key-refused", q(&["Server host certificate:", "is known and matches", "Permission denied"]), if hop.offered_keys.is_empty() {
            format!("{b} was verified, then {a} had no public key to offer (no usable key in /root/.ssh): generate {a}'s root key (the sshd instance's generateRootKey) and redeploy")
        } else {
            format!(
                "{b} was verified, then refused every key {a} offered ({}): {b}'s root authorized_keys lacks it; add it to the sshd instance's authorizedKeys (or generateRootKey) and redeploy {b}",
                hop.offered_keys.join("; ")
            )
        }),
        HopClass::HostKeyChanged => ("ssh.host-key-changed", q(&["has changed", "Offending", "verification failed"]), format!("{b} presents another key than the one {a} has for it: reinstalled without its vars host key, or the address leads elsewhere")),
        HopClass::HostKeyRejected => ("ssh.host-key-rejected", q(&["Host key", "verification failed"]), format!("{a} refused {b}'s host key, which no trusted CA certified and no known_hosts line names")),
        HopClass::PlainKey => ("ssh.plain-key", q(&["is known and matches"]), format!("{a} authenticated {b} by a plain known_hosts key for {principal}, not by its certificate: certificate authentication was not exercised")),
        HopClass::Other { line } => ("ssh.other", line.clone(), format!("ssh on {a} ended with {line:?}, which the harness does not classify; the hop's -v output is in the debug log")),
        HopClass::CertificateVerified => ("ssh.cert-verified", String::new(), String::new()),
    }
}

/// AC1's ping over the same pair, when this run made one: whether it got replies, in words.
fn ping(cx: &Ctx<'_>, a: &str, b: &str) -> Option<(bool, String)> {
    let p = cx.obs.mesh.get(&(a.to_string(), b.to_string()))?;
    Some(match p.ok() {
        Some(Ok(s)) => (
            s.received > 0,
            format!(
                "{a}'s pings to {b} got {} of {} replies",
                s.received, s.transmitted
            ),
        ),
        Some(Err(e)) => (false, format!("{a}'s ping to {b} failed: {e}")),
        None => return None,
    })
}

/// `sshd.service on gcp-vm: active/running`, from the run's `systemctl show`.
fn sshd_unit(cx: &Ctx<'_>, b: &str) -> Option<String> {
    let u = cx.status(b)?.units.ok()?.get("sshd.service")?;
    Some(format!(
        "sshd.service on {b}: {}/{} (systemctl show)",
        u.get("ActiveState"),
        u.get("SubState")
    ))
}

/// Why port 22 refused, from B's unit state and listen addresses in the same run.
fn refusal(cx: &Ctx<'_>, b: &str, addr: &str) -> String {
    let st = cx.status(b);
    let unit = st
        .and_then(|s| s.units.ok())
        .and_then(|u| u.get("sshd.service"));
    let listen = st
        .and_then(|s| s.sshd.ok())
        .and_then(|m| m.get("listenaddress"))
        .cloned();
    match (unit, listen) {
        (Some(u), _) if !u.active() => format!(
            "sshd.service on {b} is {}/{} (systemctl show): nothing listens on port 22, hence the refusal (TCP reset)",
            u.get("ActiveState"),
            u.get("SubState")
        ),
        (_, Some(l)) if !l.iter().any(|x| x.starts_with("[::]:") || x.starts_with(&format!("[{addr}]:"))) => format!(
            "sshd on {b} runs but listens only on {} (sshd -T), not on {addr}: ListenAddress leaves the overlay address out",
            l.join(", ")
        ),
        (Some(_), Some(l)) => format!(
            "sshd on {b} is active and listens on {} (sshd -T), yet {addr} port 22 refused: a firewall rejects tcp/22 on the overlay interface, or the address leads to another host",
            l.join(", ")
        ),
        _ => format!("nothing accepted TCP port 22 at {addr} (TCP reset): sshd is not running on {b} or does not listen on its overlay address"),
    }
}
