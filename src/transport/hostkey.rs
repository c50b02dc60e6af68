//! Host authentication without trust on first use. libssh2 cannot check host certificates, so we
//! check in two layers under our control: pin the plain ed25519 key from the clan repo, and verify
//! the repo's host certificate offline (host type, shared CA, principal `<m>.<domain>`, binds that
//! same key). Machines without vars fall back to a known_hosts file, plain or hashed entries.

use std::path::{Path, PathBuf};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use ssh_key::certificate::CertType;
use ssh_key::{Certificate, HashAlg, PublicKey};

use crate::error::TransportError;

/// What a machine's presented host key is checked against.
#[derive(Debug, Clone)]
pub enum HostTrust {
    /// The clan repo's host key (its certificate already verified at construction).
    Clan {
        /// Pinned key.
        key: PublicKey,
        /// vars file it came from.
        source: PathBuf,
    },
    /// A known_hosts file.
    KnownHosts {
        /// The file.
        path: PathBuf,
    },
}

impl HostTrust {
    /// Host key algorithms to offer libssh2: plain keys only, never certificate types, because
    /// trust is decided by comparing the plain key (the repo's certificate is checked offline).
    /// A clan key pins its own algorithm.
    pub fn host_key_methods(&self) -> &'static str {
        match self {
            HostTrust::Clan { key, .. } if key.algorithm() == ssh_key::Algorithm::Ed25519 => {
                "ssh-ed25519"
            }
            _ => "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa",
        }
    }
}

/// Checks the repo's certificate for `machine`: a host certificate signed by `ca`, naming
/// `<machine>.<domain>`, certifying `key`. Clan certificates have no validity limit.
pub fn verify_certificate(
    machine: &str,
    principal: &str,
    cert: &Certificate,
    cert_path: &Path,
    ca: &PublicKey,
    key: &PublicKey,
) -> Result<(), TransportError> {
    let fail = |reason: String| TransportError::HostCertificate {
        machine: machine.into(),
        path: cert_path.display().to_string(),
        reason,
    };
    if cert.cert_type() != CertType::Host {
        return Err(fail(
            "it is a user certificate, not a host certificate (ssh-keygen -h missing)".into(),
        ));
    }
    let ca_fp = ca.fingerprint(HashAlg::Sha256);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if let Err(e) = cert.validate_at(now, [&ca_fp]) {
        let signer = cert.signature_key().fingerprint(HashAlg::Sha256);
        let why = if signer != ca_fp {
            format!("signed by {signer}, not by the clan CA {ca_fp}")
        } else {
            format!("does not validate ({e}): expired, not yet valid or bad signature")
        };
        return Err(fail(why));
    }
    if !cert.valid_principals().iter().any(|p| p == principal) {
        return Err(fail(format!(
            "principals {:?} do not include {principal:?}",
            cert.valid_principals()
        )));
    }
    if cert.public_key() != key.key_data() {
        return Err(fail(format!(
            "certifies {} but the machine's host key is {}",
            cert.public_key().fingerprint(HashAlg::Sha256),
            key.fingerprint(HashAlg::Sha256)
        )));
    }
    Ok(())
}

/// Checks the key blob the server presented (SSH wire encoding).
pub fn check_presented(
    machine: &str,
    target: &str,
    host: &str,
    port: u16,
    trust: &HostTrust,
    blob: &[u8],
) -> Result<(), TransportError> {
    let seen = PublicKey::from_bytes(blob).map_err(|e| TransportError::Connect {
        machine: machine.into(),
        target: target.into(),
        waited: Default::default(),
        reason: format!("server host key does not parse: {e}"),
    })?;
    let seen_fp = seen.fingerprint(HashAlg::Sha256).to_string();
    match trust {
        HostTrust::Clan { key, source } => {
            if key.key_data() == seen.key_data() {
                Ok(())
            } else {
                Err(TransportError::HostKeyMismatch {
                    machine: machine.into(),
                    target: target.into(),
                    expected: key.fingerprint(HashAlg::Sha256).to_string(),
                    seen: seen_fp,
                    source_of_truth: source.display().to_string(),
                })
            }
        }
        HostTrust::KnownHosts { path } => {
            let text =
                std::fs::read_to_string(path).map_err(|e| TransportError::NoTrustedHostKey {
                    machine: machine.into(),
                    target: target.into(),
                    reason: format!("cannot read {}: {e}", path.display()),
                })?;
            let name = if port == 22 {
                host.to_string()
            } else {
                format!("[{host}]:{port}")
            };
            let entries = known_hosts_keys(&text, &name);
            if entries
                .revoked
                .iter()
                .any(|k| k.key_data() == seen.key_data())
            {
                return Err(TransportError::NoTrustedHostKey {
                    machine: machine.into(),
                    target: target.into(),
                    reason: format!(
                        "the presented key {seen_fp} is marked @revoked in {}",
                        path.display()
                    ),
                });
            }
            if entries.keys.iter().any(|k| k.key_data() == seen.key_data()) {
                return Ok(());
            }
            match entries.keys.first() {
                Some(k) => Err(TransportError::HostKeyMismatch {
                    machine: machine.into(),
                    target: target.into(),
                    expected: k.fingerprint(HashAlg::Sha256).to_string(),
                    seen: seen_fp,
                    source_of_truth: path.display().to_string(),
                }),
                None => Err(TransportError::NoTrustedHostKey {
                    machine: machine.into(),
                    target: target.into(),
                    reason: format!(
                        "{} has no entry for {name} (presented {seen_fp})",
                        path.display()
                    ),
                }),
            }
        }
    }
}

/// Keys known for a host name in known_hosts text.
#[derive(Debug, Default)]
pub struct KnownKeys {
    /// Plain entries matching the name.
    pub keys: Vec<PublicKey>,
    /// `@revoked` entries.
    pub revoked: Vec<PublicKey>,
}

/// Finds the keys for `name` (`host` or `[host]:port`) in known_hosts text.
pub fn known_hosts_keys(text: &str, name: &str) -> KnownKeys {
    let mut out = KnownKeys::default();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut fields = line.split_whitespace();
        let mut first = fields.next().unwrap_or("");
        let mut revoked = false;
        if first.starts_with('@') {
            if first == "@revoked" {
                revoked = true;
            } else {
                continue; // @cert-authority: certificates are checked from the repo instead
            }
            first = fields.next().unwrap_or("");
        }
        let (Some(ty), Some(b64)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !host_field_matches(first, name) {
            continue;
        }
        if let Ok(k) = PublicKey::from_openssh(&format!("{ty} {b64}")) {
            if revoked {
                out.revoked.push(k);
            } else {
                out.keys.push(k);
            }
        }
    }
    out
}

fn host_field_matches(field: &str, name: &str) -> bool {
    if let Some(hashed) = field.strip_prefix("|1|") {
        let Some((salt, hash)) = hashed.split_once('|') else {
            return false;
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
            return false;
        };
        mac.update(name.as_bytes());
        return mac.verify_slice(&hash).is_ok();
    }
    crate::probe::ssh::pattern_list_matches(field.split(','), name)
        == crate::probe::ssh::ListMatch::Positive
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnz3gueTi0vO58B5TDXPonU03Q00E4Hpo4W0gTOH3dy";

    #[test]
    fn plain_and_hashed_entries() {
        // Hashed entry for "203.0.113.10" made with ssh-keygen -H semantics (HMAC-SHA1 over the name).
        let salt = [7u8; 20];
        let mut mac = Hmac::<Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"203.0.113.10");
        let b64 = base64::engine::general_purpose::STANDARD;
        let hashed = format!(
            "|1|{}|{} {KEY}",
            b64.encode(salt),
            b64.encode(mac.finalize().into_bytes())
        );
        assert_eq!(known_hosts_keys(&hashed, "203.0.113.10").keys.len(), 1);
        assert_eq!(known_hosts_keys(&hashed, "203.0.113.11").keys.len(), 0);
        let plain = format!("[203.0.113.10]:2222,other {KEY}\n@cert-authority *.clan {KEY}\n");
        assert_eq!(
            known_hosts_keys(&plain, "[203.0.113.10]:2222").keys.len(),
            1
        );
        assert_eq!(known_hosts_keys(&plain, "203.0.113.10").keys.len(), 0);
        assert_eq!(
            known_hosts_keys(&format!("*.clan,!bad.clan {KEY}"), "bad.clan")
                .keys
                .len(),
            0
        );
    }
}
