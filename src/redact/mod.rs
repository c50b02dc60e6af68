//! The one place secrets are recognised and withheld. Every path that shows remote output or
//! repo content (the debug log, `Seen` excerpts and parse errors, report.json, cassettes, the
//! monitor log and its HTML page, error messages) quotes it through [`excerpt`] or [`withhold`],
//! or refuses it with [`refuse`]. A text holding a secret is never quoted, not even in part:
//! only its length and a sha256 prefix are shown, which identify it without revealing it.

mod patterns;

use std::borrow::Cow;
use std::fmt;

use sha2::{Digest, Sha256};

/// A kind of secret an operator's machines and clan vars hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// ZeroTier `identity.secret`: `<10 hex>:0:<128 hex public>:<128 hex private>`.
    ZerotierIdentity,
    /// OpenSSH private key: its PEM header, or its body (`openssh-key-v1\0`) without one.
    OpensshPrivateKey,
    /// `-----BEGIN PGP PRIVATE KEY BLOCK-----`.
    PgpPrivateKey,
    /// `---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----` (ssh.com, `ssh-keygen -e`).
    Ssh2PrivateKey,
    /// PuTTY `.ppk`.
    PuttyPrivateKey,
    /// Any other PEM private key (PKCS#1/#8, RSA, EC, DSA, ENCRYPTED).
    PemPrivateKey,
    /// A crypt(3) hash: `$1$`, `$2b$`, `$5$`, `$6$`, `$y$`, `$gy$`, `$7$`, `$argon2id$`,
    /// `$sha1$`, `$md5$`, ... (a password file's content: offline guessing needs only this).
    PasswordHash,
    /// Traditional or BSDi extended DES crypt in a shadow or passwd line.
    DesCryptHash,
    /// `AGE-SECRET-KEY-1...` or an age plugin identity.
    AgeSecretKey,
    /// A sops file (JSON, YAML, dotenv) with its metadata.
    SopsFile,
    /// A sops-encrypted value `ENC[AES256_GCM,data:...]`.
    SopsValue,
    /// `nix key generate-secret`: `name:<base64 of seed and public key>`.
    NixSigningKey,
    /// WireGuard private key: `PrivateKey = <base64>`, or a line that is only a 32-byte key.
    WireguardPrivateKey,
    /// Yggdrasil private key: 128 hex digits (seed and public key) named or alone.
    YggdrasilPrivateKey,
    /// Tor onion service `hs_ed25519_secret_key`.
    TorSecretKey,
}

impl SecretKind {
    /// Every kind, in the order they are looked for.
    pub const ALL: [SecretKind; 15] = [
        SecretKind::ZerotierIdentity,
        SecretKind::OpensshPrivateKey,
        SecretKind::PgpPrivateKey,
        SecretKind::Ssh2PrivateKey,
        SecretKind::PuttyPrivateKey,
        SecretKind::PemPrivateKey,
        SecretKind::PasswordHash,
        SecretKind::DesCryptHash,
        SecretKind::AgeSecretKey,
        SecretKind::SopsFile,
        SecretKind::SopsValue,
        SecretKind::NixSigningKey,
        SecretKind::WireguardPrivateKey,
        SecretKind::YggdrasilPrivateKey,
        SecretKind::TorSecretKey,
    ];
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretKind::ZerotierIdentity => "a ZeroTier identity secret",
            SecretKind::OpensshPrivateKey => "an OpenSSH private key",
            SecretKind::PgpPrivateKey => "a PGP private key",
            SecretKind::Ssh2PrivateKey => "an SSH2 (ssh.com) private key",
            SecretKind::PuttyPrivateKey => "a PuTTY private key",
            SecretKind::PemPrivateKey => "a PEM private key",
            SecretKind::PasswordHash => "a password hash",
            SecretKind::DesCryptHash => "a DES crypt password hash",
            SecretKind::AgeSecretKey => "an age secret key",
            SecretKind::SopsFile => "a sops-encrypted file",
            SecretKind::SopsValue => "a sops-encrypted value",
            SecretKind::NixSigningKey => "a nix signing secret key",
            SecretKind::WireguardPrivateKey => "a WireGuard private key",
            SecretKind::YggdrasilPrivateKey => "a yggdrasil private key",
            SecretKind::TorSecretKey => "a Tor onion service secret key",
        })
    }
}

/// The first kind of secret `text` holds, if any. Linear in the text's length. Short texts are
/// scanned too: some patterns match 8 to 15 bytes (`"sops":{`, `$1$$` and 8 characters), and
/// a short quote skipped here became a secret once glued into a longer message.
pub fn detect(text: &str) -> Option<SecretKind> {
    patterns::scan(text, 0)
}

/// For whole documents: `Err(kind)` when `text` holds a secret.
pub fn refuse(text: &str) -> Result<(), SecretKind> {
    detect(text).map_or(Ok(()), Err)
}

/// [`refuse`] over a JSON document: the serialised text and every string in it on its own (a
/// string's line breaks are escapes in the text, and a wrapped secret must still be seen).
pub fn refuse_json(doc: &serde_json::Value) -> Result<(), SecretKind> {
    fn strings(v: &serde_json::Value) -> Result<(), SecretKind> {
        match v {
            serde_json::Value::String(s) => refuse(s),
            serde_json::Value::Array(a) => a.iter().try_for_each(strings),
            serde_json::Value::Object(o) => o
                .iter()
                .try_for_each(|(k, v)| refuse(k).and_then(|()| strings(v))),
            _ => Ok(()),
        }
    }
    strings(doc)?;
    refuse(&doc.to_string())
}

/// Length and sha256 prefix of `text`: enough to tell two texts apart, nothing of the content.
pub fn describe(text: &str) -> String {
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    format!("{} bytes, sha256 {}…", text.len(), &digest[..12])
}

/// What stands in for a text holding a secret.
pub fn withheld(kind: SecretKind, text: &str) -> String {
    format!("<withheld: contains {kind}; {}>", describe(text))
}

/// `text` itself, or the [`withheld`] marker when it holds a secret. For texts quoted whole
/// (an error, a journal line).
pub fn withhold(text: &str) -> Cow<'_, str> {
    match detect(text) {
        Some(kind) => Cow::Owned(withheld(kind, text)),
        None => Cow::Borrowed(text),
    }
}

/// Lines of one record (a journal scan, a round's errors) as they are, or one [`withheld`]
/// marker for all when they hold a secret together (a key printed line by line).
pub fn withhold_lines(lines: Vec<String>) -> Vec<String> {
    let all = lines.join("\n");
    match detect(&all) {
        Some(kind) => vec![withheld(kind, &all)],
        None => lines,
    }
}

/// The first `max` characters of `text` on one line (newlines shown as `⏎`), for messages; the
/// only way remote or repo text is quoted. The whole text is checked before it is cut, so a
/// secret starting within the first `max` characters is withheld, not half-quoted.
pub fn excerpt(text: &str, max: usize) -> String {
    if let Some(kind) = detect(text) {
        return withheld(kind, text);
    }
    let one: String = text
        .trim()
        .chars()
        .map(|c| if c == '\n' { '⏎' } else { c })
        .collect();
    if one.chars().count() > max {
        let cut: String = one.chars().take(max).collect();
        format!("{cut}…")
    } else {
        one
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withholds_the_whole_text_with_hash_and_length_only() {
        let key = format!(
            "id: AGE-SECRET-KEY-1{}",
            "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".repeat(2)
        );
        let e = excerpt(&key, 10);
        assert!(
            e.starts_with("<withheld: contains an age secret key; 84 bytes, sha256 "),
            "{e}"
        );
        assert!(!e.contains("QPZR"), "{e}");
        assert_eq!(excerpt("  a\nb  ", 300), "a⏎b");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(withhold("plain"), "plain");
    }

    #[test]
    fn short_texts_are_scanned_too() {
        // fuzz/fuzz_targets/clan.rs and hashes.rs (minimised): under 16 bytes these were not
        // looked at, so a parser quoted them as they were, and the message they went into was
        // then a secret to the redaction point.
        assert_eq!(detect("$y$$emergecm"), Some(SecretKind::PasswordHash));
        assert_eq!(detect("$2$$CCCCCCCf"), Some(SecretKind::PasswordHash));
        assert!(excerpt("$y$$emergecm", 120).starts_with("<withheld: contains a password hash"));
        assert_eq!(detect("ok"), None);
        assert_eq!(detect(""), None);
    }

    #[test]
    fn public_material_is_not_a_secret() {
        for public in [
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  -",
            "200 info db4344343b 1.14.2 ONLINE",
            "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=",
            "256 SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s root@host (ED25519)",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----",
            // Two public ZeroTier identities on adjacent lines are not one secret identity.
            format!(
                "{}:0:{}\n{}:0:{}",
                "ab".repeat(5),
                "cd".repeat(64),
                "ef".repeat(5),
                "01".repeat(64)
            )
            .as_str(),
        ] {
            assert_eq!(detect(public), None, "{public}");
        }
    }
}
