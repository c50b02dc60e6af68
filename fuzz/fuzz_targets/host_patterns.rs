//! OpenSSH host patterns (`pattern_matches`, `pattern_list_matches`) on structured input: a
//! pattern list and a name, optionally blown up to the length caps. Properties: agrees with a
//! plain dynamic-programming matcher (small inputs); ASCII case never matters; a list over
//! its length cap never admits a name; no hang (libFuzzer's timeout) and no stack overflow.
#![no_main]

use arbitrary::Arbitrary;
use clan_coordination::probe::ssh::{
    pattern_list_matches, pattern_matches, ListMatch, MAX_NAME_LEN, MAX_PATTERN_LEN,
    MAX_PATTERN_LIST_LEN,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    patterns: Vec<String>,
    name: String,
    /// A piece repeated up to past the caps (`*a` × 600, `?` × 1100), appended to the list.
    long_pattern: Option<(String, u16)>,
    /// The same for the name.
    long_name: Option<(String, u16)>,
}

/// Repeats `unit` `n` times, stopping a little past `cap` bytes.
fn blow_up(unit: &str, n: u16, cap: usize) -> String {
    let mut s = String::new();
    for _ in 0..n {
        if s.len() > cap + 8 {
            break;
        }
        s.push_str(unit);
    }
    s
}

/// Reference matcher: `*` any run, `?` one byte, other bytes equal ignoring ASCII case.
fn reference(p: &[u8], n: &[u8]) -> bool {
    let mut dp = vec![vec![false; n.len() + 1]; p.len() + 1];
    dp[0][0] = true;
    for i in 1..=p.len() {
        dp[i][0] = dp[i - 1][0] && p[i - 1] == b'*';
        for j in 1..=n.len() {
            dp[i][j] = match p[i - 1] {
                b'*' => dp[i - 1][j] || dp[i][j - 1],
                b'?' => dp[i - 1][j - 1],
                c => c.eq_ignore_ascii_case(&n[j - 1]) && dp[i - 1][j - 1],
            };
        }
    }
    dp[p.len()][n.len()]
}

fuzz_target!(|input: Input| {
    let mut patterns = input.patterns;
    if let Some((unit, n)) = &input.long_pattern {
        patterns.push(blow_up(unit, *n, MAX_PATTERN_LEN));
    }
    let name = match &input.long_name {
        Some((unit, n)) => blow_up(unit, *n, MAX_NAME_LEN),
        None => input.name,
    };
    for p in &patterns {
        let got = pattern_matches(p, &name);
        if p.len() <= 96 && name.len() <= 96 {
            assert_eq!(
                got,
                reference(p.as_bytes(), name.as_bytes()),
                "{p:?} vs {name:?}"
            );
        }
        if p.len() > MAX_PATTERN_LEN || name.len() > MAX_NAME_LEN {
            assert!(!got, "over the cap yet matched");
        }
        assert_eq!(got, pattern_matches(p, &name.to_ascii_uppercase()));
        assert_eq!(got, pattern_matches(&p.to_ascii_lowercase(), &name));
    }
    let got = pattern_list_matches(patterns.iter().map(String::as_str), &name);
    let total: usize = patterns.iter().map(|p| p.len() + 1).sum();
    if total > MAX_PATTERN_LIST_LEN + 1 {
        assert_ne!(
            got,
            ListMatch::Positive,
            "a list over the cap admitted {name:?}"
        );
    } else {
        let hit = |p: &str| pattern_matches(p, &name);
        let want = if patterns
            .iter()
            .any(|p| p.strip_prefix('!').is_some_and(hit))
        {
            ListMatch::Negated
        } else if patterns.iter().any(|p| !p.starts_with('!') && hit(p)) {
            ListMatch::Positive
        } else {
            ListMatch::None
        };
        assert_eq!(got, want, "{patterns:?} vs {name:?}");
    }
});
