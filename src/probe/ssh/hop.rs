//! The client's `ssh -v` of a hop: how it ended, and the certificate the server showed, with the
//! CA, serial, validity, the known_hosts line that trusted the CA and the name it was checked
//! under (OpenSSH's `sshconnect.c` prints these at debug1).

use once_cell::sync::Lazy;
use regex::Regex;

use super::validity::Validity;

/// A `file:line` of a known_hosts file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileLine {
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: u32,
}

impl std::fmt::Display for FileLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// The certificate the server showed (`debug1: Server host certificate: ...`), accepted or not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AcceptedCert {
    /// Certificate key type (`ssh-ed25519-cert-v01@openssh.com`).
    pub key_type: String,
    /// Fingerprint of the certified key.
    pub fingerprint: String,
    /// Serial.
    pub serial: u64,
    /// Key id (clan: the machine name).
    pub id: String,
    /// Signing CA key type (`ssh-ed25519`, `ecdsa-sha2-nistp256`).
    pub ca_type: String,
    /// Fingerprint of the signing CA.
    pub ca_fingerprint: String,
    /// Validity, in the client's local time.
    pub validity: Validity,
    /// The `@cert-authority` line the client found the CA at (`Found CA key in <file>:<line>`).
    pub known_hosts: Option<FileLine>,
    /// The name the client checked the certificate under (`HostKeyAlias`).
    pub principal_name: Option<String>,
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
    /// The certificate matched a CA but its validity had ended (`Certificate invalid: expired`).
    CertificateExpired,
    /// The certificate matched a CA but is not valid yet (`Certificate invalid: not yet valid`).
    CertificateNotYetValid,
    /// The certificate matched a CA and was refused for another reason, quoted.
    CertificateInvalid {
        /// ssh's line.
        reason: String,
    },
    /// A known key differs from the one presented.
    HostKeyChanged,
    /// Host key refused for another reason.
    HostKeyRejected,
    /// The server refused our user key.
    UserKeyRefused,
    /// TCP connect timed out.
    Timeout,
    /// TCP connected but no SSH banner came (`Connection timed out during banner exchange`).
    BannerTimeout,
    /// The sender has no route to the address (`Network is unreachable`): a local matter.
    NoRoute,
    /// A route exists but the host did not answer on it (`No route to host`).
    HostUnreachable,
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
    /// The certificate the server showed, if the client printed it.
    pub certificate: Option<AcceptedCert>,
    /// Name the client checked the certificate under (`Host '<n>' is known and matches`).
    pub verified_name: Option<String>,
    /// The output's own lines the class and certificate were read from, to quote as evidence.
    pub lines: Vec<String>,
    /// Public keys the client offered (`Offering public key: <file> <type> <fingerprint>`).
    pub offered_keys: Vec<String>,
}

static SERVED: Lazy<Regex> = Lazy::new(|| {
    Regex::new(
        r#"(?m)Server host certificate: (\S+) (\S+), serial (\d+) ID "(.*)" CA (\S+) (\S+) valid (.+?)\s*$"#,
    )
    .expect("static regex")
});
static KNOWN: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"Host '([^']+)' is known and matches the (\S+) host (certificate|key)")
        .expect("static regex")
});
static FOUND: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"(?m)Found CA key in (.+):(\d+)\s*$").expect("static regex"));
static ALIAS: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"(?m)using hostkeyalias: (\S+)\s*$").expect("static regex"));
static CERT_HOSTNAME: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?m)Server host certificate hostname: (\S+)\s*$").expect("static regex")
});
static OFFERING: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"(?m)Offering public key: (.+?)\s*$").expect("static regex"));

/// Lines worth quoting: the certificate's, the CA's, the check's, and ssh's own messages.
fn evidence_lines(stderr: &str) -> Vec<String> {
    const KEEP: [&str; 5] = [
        "Server host certificate:",
        "Found CA key in",
        "is known and matches",
        "No matching CA found",
        "Connection established",
    ];
    stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| {
            KEEP.iter().any(|k| l.contains(k))
                || !(l.starts_with("debug")
                    || l.starts_with("OpenSSH_")
                    || l.starts_with("Pseudo-terminal"))
        })
        .map(String::from)
        .collect()
}

fn certificate(stderr: &str, known: Option<&regex::Captures<'_>>) -> Option<AcceptedCert> {
    let c = SERVED.captures(stderr)?;
    let last = |re: &Regex| re.captures_iter(stderr).last().map(|x| x[1].to_string());
    let known_hosts = FOUND.captures(stderr).and_then(|f| {
        Some(FileLine {
            file: f[1].to_string(),
            line: f[2].parse().ok()?,
        })
    });
    Some(AcceptedCert {
        key_type: c[1].to_string(),
        fingerprint: c[2].to_string(),
        serial: c[3].parse().ok()?,
        id: c[4].to_string(),
        ca_type: c[5].to_string(),
        ca_fingerprint: c[6].to_string(),
        validity: Validity::parse(&c[7]).ok()?,
        known_hosts,
        principal_name: known
            .map(|k| k[1].to_string())
            .or_else(|| last(&ALIAS))
            .or_else(|| last(&CERT_HOSTNAME)),
    })
}

/// Classifies an `ssh -v ... hostname` run from its stderr and exit status.
pub fn parse_hop(stderr: &str, exit: Option<i32>) -> Hop {
    let known = KNOWN.captures(stderr);
    let certificate = certificate(stderr, known.as_ref().filter(|k| &k[3] == "certificate"));
    let verified_name = known
        .as_ref()
        .filter(|k| &k[3] == "certificate")
        .map(|k| k[1].to_string());
    let has = |s: &str| stderr.contains(s);
    let invalid = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Certificate invalid") || l.starts_with("Certificate lacks"));
    let class = if has("Permission denied (") {
        HopClass::UserKeyRefused
    } else if has("Certificate invalid: expired") {
        HopClass::CertificateExpired
    } else if has("Certificate invalid: not yet valid") {
        HopClass::CertificateNotYetValid
    } else if has("Certificate invalid: name is not a listed principal") {
        HopClass::PrincipalMismatch
    } else if let Some(l) = invalid {
        HopClass::CertificateInvalid {
            reason: l.to_string(),
        }
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
    } else if has("timed out during banner exchange") {
        HopClass::BannerTimeout
    } else if has("Connection timed out") || has("Operation timed out") {
        HopClass::Timeout
    } else if has("Network is unreachable") {
        HopClass::NoRoute
    } else if has("No route to host") {
        HopClass::HostUnreachable
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
        lines: evidence_lines(stderr),
        offered_keys: OFFERING
            .captures_iter(stderr)
            .map(|c| c[1].to_string())
            .collect(),
    }
}

impl Hop {
    /// The quoted lines containing any of `needles`, in output order, joined for a finding.
    pub fn quote(&self, needles: &[&str]) -> String {
        let picked: Vec<&str> = self
            .lines
            .iter()
            .map(String::as_str)
            .filter(|l| needles.iter().any(|n| l.contains(n)))
            .collect();
        if picked.is_empty() {
            self.lines.join(" | ")
        } else {
            picked.join(" | ")
        }
    }
}
