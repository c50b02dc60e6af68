//! OpenSSH outputs: the client's `-v` of a hop ([`hop`]), its client view ([`client`]),
//! `ssh-keygen -L`, `sshd -T`, and `@cert-authority` lines of known_hosts.

pub mod client;
pub mod hop;
pub mod validity;

use std::collections::BTreeMap;

use ssh_key::{HashAlg, PublicKey};

use super::ProbeError;
pub use client::{parse_client_view, ClientView};
pub use hop::{parse_hop, AcceptedCert, FileLine, Hop, HopClass};
pub use validity::{Clock, LocalTime, Validity, WindowState};

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
    /// Signing CA key type as ssh-keygen names it (`ED25519`, `ECDSA`).
    pub signing_ca_type: String,
    /// Key id.
    pub key_id: String,
    /// Serial.
    pub serial: u64,
    /// Validity as printed (`forever`, or a range).
    pub valid: String,
    /// The validity, typed (in the printing machine's local time).
    pub validity: Validity,
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
    let valid = get("Valid")?;
    let serial = get("Serial")?;
    Ok(KeygenCertificate {
        key_type,
        host,
        public_key: fp(get("Public key")?),
        signing_ca: fp(get("Signing CA")?),
        signing_ca_type: get("Signing CA")?
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string(),
        key_id: get("Key ID")?.trim_matches('"').to_string(),
        serial: serial
            .parse()
            .map_err(|_| ProbeError::new(P, format!("Serial {serial:?} is not a number"), out))?,
        validity: Validity::parse(&valid)?,
        valid,
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
    /// The CA key's type as written (`ssh-ed25519`, `ecdsa-sha2-nistp256`).
    pub key_type: String,
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
        if patterns.len() > MAX_PATTERN_LIST_LEN
            || patterns.split(',').any(|p| p.len() > MAX_PATTERN_LEN + 1)
        {
            return Err(ProbeError::new(
                "known_hosts",
                format!(
                    "@cert-authority host patterns of {} bytes: over the cap of \
                     {MAX_PATTERN_LEN} bytes a pattern and {MAX_PATTERN_LIST_LEN} a line, they \
                     can name no host; shorten or remove the line",
                    patterns.len()
                ),
                line,
            ));
        }
        let key = PublicKey::from_openssh(&format!("{ty} {b64}"))
            .map_err(|e| ProbeError::new("known_hosts", format!("bad CA key: {e}"), line))?;
        out.push(CertAuthority {
            patterns: patterns.split(',').map(String::from).collect(),
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
            key_type: ty.to_string(),
        });
    }
    Ok(out)
}

/// Longest single host pattern the matcher looks at (bytes). A host name is at most 253 bytes
/// (1025 with OpenSSH's `NI_MAXHOST`); anything longer names no host and only costs time.
pub const MAX_PATTERN_LEN: usize = 1025;
/// Longest name matched against host patterns (bytes), as `NI_MAXHOST`.
pub const MAX_NAME_LEN: usize = 1025;
/// Longest comma list of host patterns (one known_hosts host field): bounds the matching work
/// of one line to `MAX_PATTERN_LIST_LEN * MAX_NAME_LEN` steps.
pub const MAX_PATTERN_LIST_LEN: usize = 64 * 1024;

/// Does one OpenSSH host pattern (`*`, `?` wildcards, ASCII case-insensitive as ssh matches
/// host names) match `name`? A pattern or name over its cap ([`MAX_PATTERN_LEN`],
/// [`MAX_NAME_LEN`]) never matches; [`parse_cert_authorities`] reports such lines.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    if pattern.len() > MAX_PATTERN_LEN || name.len() > MAX_NAME_LEN {
        tracing::warn!(
            pattern_len = pattern.len(),
            name_len = name.len(),
            "host pattern or name over its length cap: treated as no match"
        );
        return false;
    }
    glob(pattern.as_bytes(), name.as_bytes(), &mut 0)
}

/// Iterative wildcard match (the two-pointer algorithm): on a mismatch it only returns to the
/// last `*`, so the work is at most `(p + 1) * (n + 1)` steps and the stack stays flat, where
/// the recursive version backtracked exponentially on `*a*a*a...b`. `steps` counts the loop.
fn glob(p: &[u8], n: &[u8], steps: &mut u64) -> bool {
    let (mut pi, mut ni) = (0, 0);
    // After the last `*` seen: where the pattern resumes, and the name position it resumed at.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        *steps += 1;
        match p.get(pi) {
            Some(b'*') => {
                pi += 1;
                star = Some((pi, ni));
            }
            Some(&c) if c == b'?' || c.eq_ignore_ascii_case(&n[ni]) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more byte and retry from there.
                Some((sp, sn)) => {
                    pi = sp;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// How a comma list of host patterns matched a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMatch {
    /// No pattern matched.
    None,
    /// A plain pattern matched and no negated one did.
    Positive,
    /// A `!pattern` matched: the name is excluded whatever else matches.
    Negated,
}

/// OpenSSH's `match_pattern_list`: a `!`-negated match wins over any positive one. A list
/// longer than [`MAX_PATTERN_LIST_LEN`] in all matches nothing.
pub fn pattern_list_matches<'a>(
    patterns: impl IntoIterator<Item = &'a str>,
    name: &str,
) -> ListMatch {
    let mut found = ListMatch::None;
    let mut total = 0usize;
    for pat in patterns {
        total = total.saturating_add(pat.len() + 1);
        if total > MAX_PATTERN_LIST_LEN + 1 {
            tracing::warn!(
                cap = MAX_PATTERN_LIST_LEN,
                "host pattern list over its length cap: treated as no match"
            );
            return ListMatch::None;
        }
        match pat.strip_prefix('!') {
            Some(neg) if pattern_matches(neg, name) => return ListMatch::Negated,
            Some(_) => {}
            None if pattern_matches(pat, name) => found = ListMatch::Positive,
            None => {}
        }
    }
    found
}

impl CertAuthority {
    /// Does this line's pattern list admit `name` (negations honoured, as ssh does)?
    pub fn matches(&self, name: &str) -> bool {
        pattern_list_matches(self.patterns.iter().map(String::as_str), name) == ListMatch::Positive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_semantics_as_openssh() {
        for (p, n, want) in [
            ("*.clan", "gcp-vm.clan", true),
            ("*.clan", "gcp-vm.CLAN", true),
            ("*.CLAN", "gcp-vm.clan", true),
            ("*.clan", "clan", false),
            ("?", "", false),
            ("", "", true),
            ("*", "", true),
            ("g?p-vm.*", "gcp-vm.clan", true),
            ("g?p-vm.*", "gp-vm.clan", false),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("**.clan", "x.clan", true),
            ("ssh-ca", "ssh-ca", true),
            ("ssh-ca", "ssh-cab", false),
        ] {
            assert_eq!(pattern_matches(p, n), want, "{p:?} vs {n:?}");
        }
        let list = |l: &str, n: &str| pattern_list_matches(l.split(','), n);
        assert_eq!(list("*.clan,!bad.clan", "bad.clan"), ListMatch::Negated);
        assert_eq!(list("!bad.clan,*.clan", "bad.clan"), ListMatch::Negated);
        assert_eq!(list("!bad.clan,*.clan", "good.clan"), ListMatch::Positive);
        assert_eq!(list("!bad.clan", "good.clan"), ListMatch::None);
        assert_eq!(list("ssh-ca,*.clan", "x.zt"), ListMatch::None);
    }

    #[test]
    fn pathological_patterns_take_bounded_work() {
        // `*a*a*...*a b` against `aaaa...`: the recursive matcher tried every way of splitting
        // the name among the stars (exponential); this one does at most (p+1)(n+1) steps.
        let p = format!("{}b", "*a".repeat(10_000));
        let n = "a".repeat(20_000);
        let mut steps = 0;
        assert!(!glob(p.as_bytes(), n.as_bytes(), &mut steps));
        let bound = (p.len() as u64 + 1) * (n.len() as u64 + 1);
        assert!(steps <= bound, "{steps} steps > {bound}");
        // Under the caps, through the public entry point.
        let p = format!("{}b", "*a".repeat(MAX_PATTERN_LEN / 2));
        assert!(!pattern_matches(&p, &"a".repeat(MAX_NAME_LEN)));
    }

    #[test]
    fn megabyte_patterns_do_not_overflow_the_stack() {
        let stars = "*".repeat(1 << 20);
        let mut steps = 0;
        assert!(glob(stars.as_bytes(), b"gcp-vm.clan", &mut steps));
        let qs = "?".repeat(1 << 20);
        assert!(!glob(qs.as_bytes(), b"gcp-vm.clan", &mut 0));
        // Over the cap: no match, and no work.
        assert!(!pattern_matches(&stars, "gcp-vm.clan"));
        assert!(!pattern_matches("*", &"a".repeat(MAX_NAME_LEN + 1)));
    }
}
