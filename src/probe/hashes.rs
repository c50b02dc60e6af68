//! Hashes printed by the harness's own hash scripts (the plan's scripts): a user's shadow field and
//! deployed password-hash file, and deployed shared secret files. Only sha256 hashes ever cross
//! the wire, never a secret's content.

use std::collections::BTreeMap;

use super::excerpt;

/// Hash probe of one user's password: sha256 of the shadow field and of the deployed hash file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserHashes {
    /// sha256 of `getent shadow <u>` field 2 (empty string hash when the user has none).
    pub shadow: String,
    /// Deployed hash file found and the sha256 of its content (trailing newline removed).
    pub file: Option<(String, String)>,
}

/// sha256 of the empty string: what the probe prints when there is nothing to hash.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Parses the user hash script's output.
pub fn parse_user_hashes(
    stdout: &str,
    stderr: &str,
    exit: Option<i32>,
) -> Result<UserHashes, String> {
    let mut shadow = None;
    let mut file = None;
    for line in stdout.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["shadow", h] => shadow = Some(h.to_string()),
            ["file", p, h] if file.is_none() => file = Some((p.to_string(), h.to_string())),
            _ => {}
        }
    }
    Ok(UserHashes {
        shadow: shadow.ok_or_else(|| {
            format!(
                "no shadow hash line ({}): {}",
                exit.map_or_else(|| "no exit status".into(), |c| format!("exit {c}")),
                excerpt(stderr, 120)
            )
        })?,
        file,
    })
}

/// Parses the file hash script's output: path → sha256.
pub fn parse_file_hashes(stdout: &str) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for line in stdout.lines() {
        if let Some((p, h)) = line.rsplit_once(' ') {
            if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
                m.insert(p.to_string(), h.to_string());
                continue;
            }
        }
        return Err(format!("unexpected line {:?}", excerpt(line, 120)));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::detect;

    #[test]
    fn an_unexpected_line_is_not_quoted_when_it_holds_a_secret() {
        // Found by fuzz/fuzz_targets/hashes.rs (minimised): a crypt-shaped line was quoted raw.
        let e = parse_file_hashes("$2$$CCCCCCCf").unwrap_err();
        assert_eq!(detect(&e), None, "{e}");
        assert!(
            e.starts_with("unexpected line \"<withheld: contains"),
            "{e}"
        );
        assert_eq!(
            parse_file_hashes("/etc/x deadbeef").unwrap_err(),
            "unexpected line \"/etc/x deadbeef\""
        );
    }
}
