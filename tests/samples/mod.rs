//! Fake but well-formed secrets of every kind the harness must never print, and the variants
//! each must be caught in (plain, hard-wrapped and indented, CRLF, on stderr). Made from a fixed
//! seed, so no real key is in the repository.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clan_coordination::redact::SecretKind;

/// One secret: a name for messages, its kind, the text a command would print.
pub struct Sample {
    pub name: &'static str,
    pub kind: SecretKind,
    pub text: String,
}

/// How a sample reaches the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Plain,
    /// Hard-wrapped at 40 columns, every line indented.
    Split,
    Crlf,
    /// Printed on stderr (stdout says `ok`).
    Stderr,
}

pub const VARIANTS: [Variant; 4] = [
    Variant::Plain,
    Variant::Split,
    Variant::Crlf,
    Variant::Stderr,
];

impl Variant {
    /// (stdout, stderr) of a command printing `text` this way.
    pub fn output(self, text: &str) -> (String, String) {
        match self {
            Variant::Plain => (text.to_string(), String::new()),
            Variant::Split => (wrap(text, 40, "    "), String::new()),
            Variant::Crlf => (text.replace('\n', "\r\n"), String::new()),
            Variant::Stderr => ("ok\n".into(), text.to_string()),
        }
    }
}

/// Each line cut every `width` characters, each piece indented.
pub fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let chars: Vec<char> = line.chars().collect();
        for piece in chars.chunks(width.max(1)) {
            out.push_str(indent);
            out.extend(piece);
            out.push('\n');
        }
        if chars.is_empty() {
            out.push('\n');
        }
    }
    out
}

/// Deterministic bytes (xorshift), so the samples are the same on every run.
fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

fn hex(seed: u64, n: usize) -> String {
    hex::encode(bytes(seed, n))
}

/// A real-format ed25519 secret key (seed and public key), as nix and yggdrasil keep it.
fn ed25519_secret(seed: u64) -> Vec<u8> {
    let s: [u8; 32] = bytes(seed, 32).try_into().unwrap();
    ssh_key::private::Ed25519Keypair::from_seed(&s)
        .to_bytes()
        .to_vec()
}

fn pem(label: &str, body: &[u8]) -> String {
    format!(
        "-----BEGIN {label}-----\n{}-----END {label}-----\n",
        wrap(&b64(body), 64, "")
    )
}

fn openssh_key() -> String {
    let mut body = b"openssh-key-v1\0".to_vec();
    body.extend(bytes(2, 300));
    format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}-----END OPENSSH PRIVATE KEY-----\n",
        wrap(&b64(&body), 70, "")
    )
}

const BECH32: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn crypt64(seed: u64, n: usize) -> String {
    const C: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    bytes(seed, n)
        .iter()
        .map(|b| C[*b as usize % 64] as char)
        .collect()
}

fn enc(seed: u64) -> String {
    format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:str]",
        b64(&bytes(seed, 24)),
        b64(&bytes(seed + 1, 32)),
        b64(&bytes(seed + 2, 16))
    )
}

/// Every sample.
pub fn all() -> Vec<Sample> {
    use SecretKind::*;
    let shadow = |hash: String| format!("root:{hash}:19000:0:99999:7:::\n");
    let age: String = bytes(9, 58)
        .iter()
        .map(|b| BECH32.as_bytes()[*b as usize % 32].to_ascii_uppercase() as char)
        .collect();
    let mut s = vec![
        (
            "zerotier identity.secret",
            ZerotierIdentity,
            format!("{}:0:{}:{}\n", hex(1, 5), hex(2, 64), hex(3, 64)),
        ),
        ("openssh key", OpensshPrivateKey, openssh_key()),
        (
            "openssh key without its header",
            OpensshPrivateKey,
            openssh_key().lines().filter(|l| !l.starts_with("---")).collect::<Vec<_>>().join("\n"),
        ),
        (
            "openssh key, base64-encoded once more",
            OpensshPrivateKey,
            wrap(&b64(openssh_key().as_bytes()), 76, ""),
        ),
        ("pem rsa", PemPrivateKey, pem("RSA PRIVATE KEY", &bytes(4, 600))),
        ("pem ec", PemPrivateKey, pem("EC PRIVATE KEY", &bytes(5, 121))),
        ("pem dsa", PemPrivateKey, pem("DSA PRIVATE KEY", &bytes(6, 440))),
        ("pem pkcs8", PemPrivateKey, pem("PRIVATE KEY", &bytes(7, 48))),
        ("pem encrypted", PemPrivateKey, pem("ENCRYPTED PRIVATE KEY", &bytes(8, 160))),
        (
            "pgp private key block",
            PgpPrivateKey,
            format!(
                "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{}={}\n-----END PGP PRIVATE KEY BLOCK-----\n",
                wrap(&b64(&bytes(10, 400)), 64, ""),
                &b64(&bytes(11, 3))
            ),
        ),
        (
            "ssh2 encrypted private key",
            Ssh2PrivateKey,
            format!(
                "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nComment: \"256-bit ED25519, converted by root@host\"\n{}---- END SSH2 ENCRYPTED PRIVATE KEY ----\n",
                wrap(&b64(&bytes(12, 200)), 70, "")
            ),
        ),
        (
            "putty key",
            PuttyPrivateKey,
            format!(
                "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: eddsa-key\nPublic-Lines: 2\n{}Private-Lines: 1\n{}\nPrivate-MAC: {}\n",
                wrap(&b64(&bytes(13, 51)), 64, ""),
                b64(&bytes(14, 36)),
                hex(15, 32)
            ),
        ),
        ("crypt md5 $1$", PasswordHash, shadow(format!("$1$saltsalt${}", crypt64(20, 22)))),
        ("crypt bcrypt $2b$", PasswordHash, shadow(format!("$2b$12${}", crypt64(21, 53)))),
        ("crypt sha256 $5$", PasswordHash, shadow(format!("$5$rounds=5000$saltsalt${}", crypt64(22, 43)))),
        ("crypt sha512 $6$", PasswordHash, shadow(format!("$6$clancoordtest${}", crypt64(23, 86)))),
        ("crypt yescrypt $y$", PasswordHash, format!("$y$j9T${}${}\n", crypt64(24, 22), crypt64(25, 43))),
        ("crypt gost-yescrypt $gy$", PasswordHash, shadow(format!("$gy$j9T${}${}", crypt64(26, 22), crypt64(27, 43)))),
        ("crypt scrypt $7$", PasswordHash, shadow(format!("$7$CU..../....{}${}", crypt64(28, 16), crypt64(29, 43)))),
        (
            "crypt argon2id",
            PasswordHash,
            format!("$argon2id$v=19$m=65536,t=3,p=4${}${}\n", b64(&bytes(30, 16)).trim_end_matches('='), b64(&bytes(31, 32)).trim_end_matches('=')),
        ),
        ("crypt $sha1$", PasswordHash, shadow(format!("$sha1$40000${}${}", crypt64(32, 8), crypt64(33, 28)))),
        ("crypt sun $md5$", PasswordHash, shadow(format!("$md5${}$${}", crypt64(34, 8), crypt64(35, 22)))),
        ("crypt sun $md5,rounds=", PasswordHash, shadow(format!("$md5,rounds=5000${}$${}", crypt64(36, 8), crypt64(37, 22)))),
        ("traditional des crypt", DesCryptHash, shadow(crypt64(38, 13))),
        ("bsdi extended des crypt", DesCryptHash, shadow(format!("_{}", crypt64(39, 19)))),
        (
            "age secret key",
            AgeSecretKey,
            format!("# created: 2024-01-01T00:00:00Z\n# public key: age1{}\nAGE-SECRET-KEY-1{age}\n", age.to_lowercase()),
        ),
        (
            "sops json",
            SopsFile,
            format!(
                "{{\n\t\"data\": \"{}\",\n\t\"sops\": {{\n\t\t\"age\": [],\n\t\t\"lastmodified\": \"2024-01-01T00:00:00Z\",\n\t\t\"mac\": \"{}\",\n\t\t\"version\": \"3.8.1\"\n\t}}\n}}\n",
                enc(40),
                enc(43)
            ),
        ),
        (
            "sops yaml",
            SopsFile,
            format!(
                "password: {}\nsops:\n    age:\n        - recipient: age1{}\n    lastmodified: \"2024-01-01T00:00:00Z\"\n    mac: {}\n    version: 3.8.1\n",
                enc(46),
                age.to_lowercase(),
                enc(49)
            ),
        ),
        (
            "sops dotenv",
            SopsFile,
            format!(
                "API_TOKEN={}\nsops_age__list_0__map_recipient=age1{}\nsops_lastmodified=2024-01-01T00:00:00Z\nsops_mac={}\nsops_version=3.8.1\n",
                enc(52),
                age.to_lowercase(),
                enc(55)
            ),
        ),
        ("sops value", SopsValue, format!("token: {}\n", enc(58))),
        (
            "nix signing secret key",
            NixSigningKey,
            format!("cache.example.org-1:{}\n", b64(&ed25519_secret(60))),
        ),
        (
            "wireguard config",
            WireguardPrivateKey,
            format!("[Interface]\nPrivateKey = {}\nListenPort = 51820\n", b64(&bytes(61, 32))),
        ),
        ("wireguard bare key", WireguardPrivateKey, format!("{}\n", b64(&bytes(62, 32)))),
        (
            "yggdrasil config",
            YggdrasilPrivateKey,
            format!("{{\n  \"PrivateKey\": \"{}\",\n  \"Peers\": []\n}}\n", hex::encode(ed25519_secret(63))),
        ),
        ("yggdrasil bare key", YggdrasilPrivateKey, format!("{}\n", hex::encode(ed25519_secret(64)))),
        (
            "tor hs_ed25519_secret_key",
            TorSecretKey,
            format!("== ed25519v1-secret: type0 ==\0\0\0{}", String::from_utf8_lossy(&bytes(65, 64))),
        ),
    ];
    s.drain(..)
        .map(|(name, kind, text)| Sample { name, kind, text })
        .collect()
}

/// Pieces of a sample that must never appear in anything the harness writes: 16-character
/// windows (every 8) of each of its long words, so a half-quoted key is caught too.
pub fn fragments(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for w in text.split(|c: char| c.is_whitespace() || c == '"' || c == '\0') {
        let chars: Vec<char> = w.chars().collect();
        let mut i = 0;
        while i + 16 <= chars.len() {
            out.push(chars[i..i + 16].iter().collect());
            i += 8;
        }
    }
    out
}

/// The first fragment of `sample` that `written` contains.
pub fn leaked(sample: &str, written: &str) -> Option<String> {
    fragments(sample)
        .into_iter()
        .find(|f| written.contains(f.as_str()))
}
