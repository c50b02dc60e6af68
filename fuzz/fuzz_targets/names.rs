//! Names that go into remote commands and file paths (machine, systemd unit, DNS domain,
//! criterion) and the shell quoting of command words. Properties: an accepted name can never
//! be read as an option or leave its directory; a command built with `Cmd::argv` splits, as a
//! POSIX shell reads it, into exactly the words given.
#![no_main]

use clan_coordination::names::{Criterion, DomainName, MachineName, UnitName};
use clan_coordination::transport::Cmd;
use libfuzzer_sys::fuzz_target;

/// Splits `text` into words as a POSIX shell does for what `quote` emits: single quotes, a
/// backslash outside them, spaces between words. Any other unquoted shell syntax is a bug.
fn sh_words(text: &str) -> Vec<String> {
    let (mut words, mut cur, mut in_word) = (Vec::new(), String::new(), false);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(q) => cur.push(q),
                        None => panic!("unterminated quote in {text:?}"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next().expect("backslash at the end"));
            }
            c if c.is_ascii_alphanumeric() || "_./:@%+=,-".contains(c) => {
                in_word = true;
                cur.push(c);
            }
            c => panic!("unquoted {c:?} in {text:?}"),
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

fuzz_target!(|input: (String, Vec<String>)| {
    let (name, words) = input;
    if let Ok(m) = MachineName::new(&name) {
        assert!((1..=63).contains(&m.len()) && !m.starts_with('-'), "{m:?}");
        assert!(m
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    }
    if let Ok(u) = UnitName::new(&name) {
        let u = u.as_str();
        assert!(
            !u.starts_with('-') && !u.starts_with('.') && !u.contains('/'),
            "{u:?}"
        );
        assert!(u.len() <= 255 && u.is_ascii());
    }
    if let Ok(d) = DomainName::new(&name) {
        assert!(
            d.len() <= 253 && !d.starts_with(['-', '.']) && !d.contains(".."),
            "{d:?}"
        );
    }
    let _ = Criterion::parse(&name);
    if words.is_empty() || words.iter().any(|w| w.contains('\0')) {
        return; // no program; a NUL cannot be in an exec'd command line at all
    }
    let cmd = Cmd::argv(&words);
    assert_eq!(sh_words(cmd.text()), words);
});
