//! The redaction point (`detect`, `excerpt`, `withhold`, `withhold_lines`) on text around an
//! optional planted fake secret (plain, CRLF, hard-wrapped and indented). Properties: no panic;
//! a text holding a secret is quoted only as the withheld marker (length and hash, nothing of
//! the text); nothing `excerpt` or `withhold` returns is itself detected as a secret; a planted
//! secret is always found; CRLF line ends change nothing.
#![no_main]

use arbitrary::Arbitrary;
use clan_coordination::redact::{detect, excerpt, withheld, withhold, withhold_lines};
use libfuzzer_sys::fuzz_target;

/// Fake secrets of kinds matched by their shape alone (no key check), so any text around them
/// on its own lines must leave them detected.
fn fake(i: u8) -> String {
    match i % 6 {
        0 => format!("AGE-SECRET-KEY-1{}", "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".repeat(2)),
        1 => format!("0123456789:0:{}:{}", "ab".repeat(64), "cd".repeat(64)),
        2 => "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----".into(),
        3 => "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQdGBGZ0ZXN0\n-----END PGP PRIVATE KEY BLOCK-----".into(),
        4 => format!("$6$rounds=5000$saltsalt${}", "aZ09./".repeat(14)),
        _ => "password: ENC[AES256_GCM,data:Zm9vYmFy,iv:aXY=,tag:dGFn,type:str]".into(),
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Layout {
    Plain,
    Crlf,
    /// Hard-wrapped at this many columns (at least 8), each line indented.
    Wrapped(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    before: String,
    secret: Option<(u8, Layout)>,
    after: String,
    max: u16,
}

fn lay_out(s: &str, layout: Layout) -> String {
    match layout {
        Layout::Plain => s.to_string(),
        Layout::Crlf => s.replace('\n', "\r\n"),
        Layout::Wrapped(w) => {
            let w = usize::from(w.max(8));
            let chars: Vec<char> = s.chars().filter(|c| *c != '\n').collect();
            chars
                .chunks(w)
                .map(|c| format!("    {}", c.iter().collect::<String>()))
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

fuzz_target!(|input: Input| {
    let text = match input.secret {
        Some((i, layout)) => format!(
            "{}\n{}\n{}",
            input.before,
            lay_out(&fake(i), layout),
            input.after
        ),
        None => input.before,
    };
    let found = detect(&text);
    if input.secret.is_some() {
        assert!(found.is_some(), "planted secret not found");
    }
    let e = excerpt(&text, usize::from(input.max));
    let w = withhold(&text);
    match found {
        Some(kind) => {
            assert_eq!(e, withheld(kind, &text));
            assert_eq!(w, withheld(kind, &text));
            let lines: Vec<String> = text.split('\n').map(String::from).collect();
            assert_eq!(withhold_lines(lines), vec![withheld(kind, &text)]);
        }
        None => assert_eq!(w, text),
    }
    assert_eq!(detect(&e), None, "the excerpt holds a secret");
    if !text.contains('\r') {
        assert_eq!(
            detect(&text.replace('\n', "\r\n")),
            found,
            "CRLF changed the verdict"
        );
    }
});
