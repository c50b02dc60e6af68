//! OpenSSH outputs: the client's `-v` host-certificate lines and failure classes, `ssh-keygen -L`,
//! `sshd -T`, and `@cert-authority` lines of known_hosts.

use std::collections::BTreeMap;

use once_cell::sync::Lazy;
use regex::Regex;
use ssh_key::{HashAlg, PublicKey};

use super::ProbeError;

/// What the client saw of the server's certificate (`debug1: Server host certificate: ...`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServedCertificate {
    /// Certificate key type.
    pub key_type: String,
    /// Fingerprint of the certified key.
    pub key_fingerprint: String,
    /// Key id (clan: the machine name).
    pub id: String,
    /// Fingerprint of the signing CA.
    pub ca_fingerprint: String,
}

/// How an `ssh -v` hop ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "class")]
pub enum HopClass {
    /// The host certificate was checked against an `@cert-authority` line and accepted.
    CertificateVerified,
    /// Authenticated by a plain known_hosts key, not by the certificate.
    PlainKey,
    /// No CA matched the name and no plain key was known: refused under strict checking.
    PlainKeyFallbackRefused,
    /// The certificate matched a CA but did not name the host (principal mismatch).
    PrincipalMismatch,
    /// A known key differs from the one presented.
    HostKeyChanged,
    /// Host key refused for another reason.
    HostKeyRejected,
    /// The server refused our user key.
    UserKeyRefused,
    /// TCP connect timed out.
    Timeout,
    /// No route / network unreachable.
    NoRoute,
    /// Nothing listens on the port.
    ConnectionRefused,
    /// Something else; the text is kept.
    Other {
        /// Last meaningful line.
        line: String,
    },
}

/// An `ssh -v` hop, parsed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hop {
    /// Classification.
    pub class: HopClass,
    /// The served certificate, if the client printed it.
    pub certificate: Option<ServedCertificate>,
    /// Name the client checked the certificate under (`Host '<n>' is known and matches`).
    pub verified_name: Option<String>,
}

static SERVED: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r#"Server host certificate: (\S+) (\S+), serial \d+ ID "([^"]*)" CA \S+ (\S+)"#)
        .expect("static regex")
});
static KNOWN: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"Host '([^']+)' is known and matches the (\S+) host (certificate|key)")
        .expect("static regex")
});

/// Classifies an `ssh -v ... hostname` run from its stderr and exit status.
pub fn parse_hop(stderr: &str, exit: Option<i32>) -> Hop {
    let certificate = SERVED.captures(stderr).map(|c| ServedCertificate {
        key_type: c[1].to_string(),
        key_fingerprint: c[2].to_string(),
        id: c[3].to_string(),
        ca_fingerprint: c[4].to_string(),
    });
    let known = KNOWN.captures(stderr);
    let verified_name = known
        .as_ref()
        .filter(|k| &k[3] == "certificate")
        .map(|k| k[1].to_string());
    let has = |s: &str| stderr.contains(s);
    let class = if has("Permission denied (") {
        HopClass::UserKeyRefused
    } else if has("Certificate invalid: name is not a listed principal") {
        HopClass::PrincipalMismatch
    } else if has("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || has("has changed and you have requested strict checking")
    {
        HopClass::HostKeyChanged
    } else if has("No matching CA found") && has("Host key verification failed") {
        HopClass::PlainKeyFallbackRefused
    } else if has("Host key verification failed") {
        if has("is known for") || has("No ") {
            HopClass::PlainKeyFallbackRefused
        } else {
            HopClass::HostKeyRejected
        }
    } else if has("Connection timed out") || has("Operation timed out") {
        HopClass::Timeout
    } else if has("Network is unreachable") || has("No route to host") {
        HopClass::NoRoute
    } else if has("Connection refused") {
        HopClass::ConnectionRefused
    } else if let Some(k) = &known {
        if &k[3] == "certificate" {
            HopClass::CertificateVerified
        } else {
            HopClass::PlainKey
        }
    } else if exit == Some(0) {
        HopClass::Other {
            line: "exited 0 without saying how the host was authenticated (run with -v)".into(),
        }
    } else {
        let line = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty() && !l.starts_with("debug"))
            .unwrap_or("")
            .trim()
            .to_string();
        HopClass::Other { line }
    };
    Hop {
        class,
        certificate,
        verified_name,
    }
}

/// `ssh-keygen -L -f <cert>`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeygenCertificate {
    /// e.g. `ssh-ed25519-cert-v01@openssh.com`.
    pub key_type: String,
    /// Host (true) or user certificate.
    pub host: bool,
    /// Fingerprint of the certified key.
    pub public_key: String,
    /// Signing CA fingerprint (`SHA256:...`).
    pub signing_ca: String,
    /// Key id.
    pub key_id: String,
    /// Validity as printed (`forever`, or a range).
    pub valid: String,
    /// Principals.
    pub principals: Vec<String>,
}

/// Parses `ssh-keygen -L` output (fields indented 8 spaces, list items 16).
pub fn parse_keygen_l(out: &str) -> Result<KeygenCertificate, ProbeError> {
    const P: &str = "ssh-keygen -L";
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut principals = Vec::new();
    let mut last = String::new();
    for line in out.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || indent == 0 {
            continue; // blank, or the "<path>:" header
        }
        if indent < 16 {
            if let Some((k, v)) = trimmed.split_once(':') {
                last = k.to_string();
                let v = v.trim();
                if k == "Principals" && v != "(none)" && !v.is_empty() {
                    principals.extend(v.split(',').map(|p| p.trim().to_string()));
                }
                fields.insert(k.to_string(), v.to_string());
            }
        } else if last == "Principals" {
            principals.push(trimmed.to_string());
        }
    }
    let get = |k: &str| {
        fields
            .get(k)
            .cloned()
            .ok_or_else(|| ProbeError::new(P, format!("no {k:?} field"), out))
    };
    let ty = get("Type")?;
    let key_type = ty.split_whitespace().next().unwrap_or("").to_string();
    let host = ty.ends_with("host certificate");
    let fp = |v: String| v.split_whitespace().nth(1).unwrap_or("").to_string();
    Ok(KeygenCertificate {
        key_type,
        host,
        public_key: fp(get("Public key")?),
        signing_ca: fp(get("Signing CA")?),
        key_id: get("Key ID")?.trim_matches('"').to_string(),
        valid: get("Valid")?,
        principals,
    })
}

/// `sshd -T`: lowercase keyword → values in order.
pub fn parse_sshd_t(out: &str) -> Result<BTreeMap<String, Vec<String>>, ProbeError> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        if !k
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(ProbeError::new(
                "sshd -T",
                format!("not a keyword line: {line:?}"),
                out,
            ));
        }
        m.entry(k.to_string())
            .or_default()
            .push(v.trim().to_string());
    }
    if m.is_empty() {
        return Err(ProbeError::new(
            "sshd -T",
            "empty output (sshd -T needs root and a valid config)",
            out,
        ));
    }
    Ok(m)
}

/// One `@cert-authority` line of a known_hosts file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertAuthority {
    /// Host patterns (`ssh-ca`, `*.clan`).
    pub patterns: Vec<String>,
    /// SHA256 fingerprint of the CA key.
    pub fingerprint: String,
}

/// All `@cert-authority` lines of a known_hosts file; malformed ones are errors.
pub fn parse_cert_authorities(known_hosts: &str) -> Result<Vec<CertAuthority>, ProbeError> {
    let mut out = Vec::new();
    for line in known_hosts.lines() {
        let Some(rest) = line.trim().strip_prefix("@cert-authority") else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let (Some(patterns), Some(ty), Some(b64)) = (f.next(), f.next(), f.next()) else {
            return Err(ProbeError::new(
                "known_hosts",
                "incomplete @cert-authority line",
                line,
            ));
        };
        let key = PublicKey::from_openssh(&format!("{ty} {b64}"))
            .map_err(|e| ProbeError::new("known_hosts", format!("bad CA key: {e}"), line))?;
        out.push(CertAuthority {
            patterns: patterns.split(',').map(String::from).collect(),
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        });
    }
    Ok(out)
}

/// Does an OpenSSH host pattern (`*`, `?` wildcards) match `name`?
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    fn rec(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => rec(&p[1..], n) || (!n.is_empty() && rec(p, &n[1..])),
            (Some(b'?'), Some(_)) => rec(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => rec(&p[1..], &n[1..]),
            _ => false,
        }
    }
    rec(pattern.as_bytes(), name.as_bytes())
}
