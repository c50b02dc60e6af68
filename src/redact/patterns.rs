//! What each kind of secret looks like, and the two views of a text it is looked for in: the
//! lines (CRLF and lone CR made LF, each line trimmed) and the compact text (every whitespace
//! removed, so a hard-wrapped or indented key reads as one run). Every pattern is a `regex`
//! automaton (linear time, no backtracking); the checks after a match are linear too.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use once_cell::sync::Lazy;
use regex::Regex;

use super::SecretKind;

/// The two views of a text that the patterns match in.
pub(super) struct Views {
    /// Lines, LF-terminated, each trimmed.
    pub lines: String,
    /// No whitespace at all.
    pub compact: String,
}

impl Views {
    pub(super) fn of(text: &str) -> Views {
        let lf = text.replace("\r\n", "\n").replace('\r', "\n");
        let lines = lf.lines().map(str::trim).collect::<Vec<_>>().join("\n");
        let compact = text.chars().filter(|c| !c.is_whitespace()).collect();
        Views { lines, compact }
    }
}

#[derive(Clone, Copy)]
enum View {
    Lines,
    Compact,
}

/// A pattern of one kind; `verify` (when set) must accept the matched text too.
struct Rule {
    kind: SecretKind,
    view: View,
    re: Regex,
    verify: Option<fn(&str) -> bool>,
}

/// Base64 of 32 bytes: 43 characters (the last one carries 4 bits) and one `=`.
const B64_32: &str = "[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=";

fn rule(kind: SecretKind, view: View, re: &str) -> Rule {
    Rule {
        kind,
        view,
        re: Regex::new(re).expect("static regex"),
        verify: None,
    }
}

static RULES: Lazy<Vec<Rule>> = Lazy::new(|| {
    use SecretKind::*;
    use View::*;
    let crypt = r"1|2[abxy]?|5|6|7|y|gy|sha1|md5(?:,rounds=[0-9]+)?|argon2(?:id|i|d)|scrypt|pbkdf2(?:-sha[0-9]+)?";
    let hex = "[0-9a-fA-F]";
    vec![
        rule(
            ZerotierIdentity,
            Compact,
            &format!("{hex}{{10}}:0:{hex}{{128}}:{hex}{{128}}"),
        ),
        rule(
            OpensshPrivateKey,
            Compact,
            "BEGINOPENSSHPRIVATEKEY|b3BlbnNzaC1rZXktdjEA",
        ),
        // The key body once base64-decoded (see `decodings`).
        rule(OpensshPrivateKey, Lines, r"openssh-key-v1\x00"),
        rule(PgpPrivateKey, Compact, "BEGINPGP(?:PRIVATE|SECRET)KEYBLOCK"),
        rule(Ssh2PrivateKey, Compact, "BEGINSSH2(?:ENCRYPTED)?PRIVATEKEY"),
        rule(
            PuttyPrivateKey,
            Compact,
            "PuTTY-User-Key-File-[0-9]+:|Private-Lines:[0-9]+",
        ),
        rule(PemPrivateKey, Compact, "BEGIN[A-Z0-9]*PRIVATEKEY"),
        rule(
            PasswordHash,
            Compact,
            &format!(r"\$(?:{crypt})\$(?:[./A-Za-z0-9=,+-]*\$)+[./A-Za-z0-9=,+-]{{8,}}"),
        ),
        // Traditional DES (13 characters) and BSDi extended DES (`_` and 19) in a shadow or
        // passwd line: `name:hash:` and two numeric fields (lastchg:min or uid:gid).
        rule(
            DesCryptHash,
            Compact,
            "[a-z_][a-z0-9_.-]*:(?:[./0-9A-Za-z]{13}|_[./0-9A-Za-z]{19}):[0-9]*:[0-9]*:",
        ),
        rule(
            AgeSecretKey,
            Compact,
            "AGE-(?:SECRET-KEY|PLUGIN-[A-Z0-9]+)-1[02-9AC-HJ-NP-Z]{20,}",
        ),
        rule(SopsFile, Compact, r#""sops":\{"#),
        rule(
            SopsFile,
            Lines,
            r"(?ms)^sops:$.*?^(?:mac|lastmodified|version):",
        ),
        rule(SopsFile, Lines, "(?m)^sops_(?:mac|version|lastmodified)="),
        rule(SopsValue, Compact, r"ENC\[AES256_GCM,data:"),
        Rule {
            verify: Some(nix_secret),
            ..rule(
                NixSigningKey,
                Compact,
                "[A-Za-z0-9._+-]+:[A-Za-z0-9+/]{86}==",
            )
        },
        rule(
            WireguardPrivateKey,
            Compact,
            &format!(r#"(?i:private_?key)"?[:=]"?{B64_32}"#),
        ),
        rule(
            YggdrasilPrivateKey,
            Compact,
            &format!(r#"(?i:private_?key)"?[:=]"?{hex}{{128}}"#),
        ),
        rule(TorSecretKey, Compact, "==ed25519v1-secret:type0=="),
    ]
});

static WIREGUARD_BARE: Lazy<Regex> =
    Lazy::new(|| Regex::new(&format!("^{B64_32}$")).expect("static regex"));
static HEX_128: Lazy<Regex> = Lazy::new(|| Regex::new("^[0-9a-fA-F]{128}$").expect("static regex"));
static B64_LINE: Lazy<Regex> =
    Lazy::new(|| Regex::new("^[A-Za-z0-9+/]+={0,2}$").expect("static regex"));
static B64_TOKEN: Lazy<Regex> =
    Lazy::new(|| Regex::new("[A-Za-z0-9+/]{40,}={0,2}").expect("static regex"));

/// An ed25519 secret key as libsodium and Go keep it: seed and the public key derived from it.
/// Only a real secret key passes (a 64-byte signature of the same shape does not).
fn ed25519_secret(bytes: &[u8]) -> bool {
    <[u8; 64]>::try_from(bytes)
        .is_ok_and(|b| ssh_key::private::Ed25519Keypair::from_bytes(&b).is_ok())
}

/// `name:<base64 of an ed25519 secret key>`: `nix key generate-secret`'s format.
fn nix_secret(m: &str) -> bool {
    m.rsplit_once(':')
        .and_then(|(_, b)| LENIENT.decode(b).ok())
        .is_some_and(|b| ed25519_secret(&b))
}

/// Decodes with or without padding and ignores stray low bits: what matters is the content.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Base64 in the lines: `bare` are the lines that are nothing else and each paragraph of them
/// joined (a hard-wrapped blob, ended by padding); `blobs` are those paragraphs and the long
/// tokens inside other lines, to decode.
#[derive(Default)]
struct Base64Runs {
    bare: Vec<String>,
    blobs: Vec<String>,
}

fn base64_runs(lines: &str) -> Base64Runs {
    let mut runs = Base64Runs::default();
    let mut para = String::new();
    let end_para = |para: &mut String, runs: &mut Base64Runs| {
        if !para.is_empty() {
            runs.bare.push(para.clone());
            runs.blobs.push(std::mem::take(para));
        }
    };
    for l in lines.lines() {
        if B64_LINE.is_match(l) {
            para.push_str(l);
            runs.bare.push(l.to_string());
            if l.ends_with('=') {
                end_para(&mut para, &mut runs);
            }
        } else {
            end_para(&mut para, &mut runs);
            runs.blobs
                .extend(B64_TOKEN.find_iter(l).map(|m| m.as_str().to_string()));
        }
    }
    end_para(&mut para, &mut runs);
    runs
}

/// A blob decoded at each of the four alignments it may start at (a token glued to a word, a
/// paragraph that begins with a short word such as `ok` alone on its line).
fn decodings(blob: &str) -> impl Iterator<Item = Vec<u8>> + '_ {
    let body = blob.trim_end_matches('=');
    (0..4).filter_map(move |off| {
        let s = body.get(off..)?;
        // One character past a 4-character group carries no whole byte.
        let s = if s.len() % 4 == 1 {
            &s[..s.len() - 1]
        } else {
            s
        };
        (s.len() >= 40).then(|| LENIENT.decode(s).ok()).flatten()
    })
}

/// The first kind of secret in `text`. At `depth` 0 base64 blobs are decoded once and looked
/// into as well (a key file encoded once more); never deeper, so the work stays linear.
pub(super) fn scan(text: &str, depth: u8) -> Option<SecretKind> {
    let views = Views::of(text);
    for r in RULES.iter() {
        let hay = match r.view {
            View::Lines => &views.lines,
            View::Compact => &views.compact,
        };
        let hit = match r.verify {
            None => r.re.is_match(hay),
            Some(verify) => r.re.find_iter(hay).any(|m| verify(m.as_str())),
        };
        if hit {
            return Some(r.kind);
        }
    }
    let runs = base64_runs(&views.lines);
    for b in &runs.bare {
        if WIREGUARD_BARE.is_match(b) {
            return Some(SecretKind::WireguardPrivateKey);
        }
        if HEX_128.is_match(b) && hex::decode(b).is_ok_and(|k| ed25519_secret(&k)) {
            return Some(SecretKind::YggdrasilPrivateKey);
        }
    }
    if depth > 0 {
        return None;
    }
    let mut decoded = runs.blobs.iter().flat_map(|b| decodings(b));
    decoded.find_map(|bytes| {
        // `scan` wants text: invalid UTF-8 becomes U+FFFD, which no pattern needs.
        scan(&String::from_utf8_lossy(&bytes), depth + 1)
    })
}
