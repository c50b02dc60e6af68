//! A round as the log may hold it: every text that came from a machine (overlay status, journal
//! lines, ping and hop errors, the round's error lines) through `redact`, so the log, the
//! `report` summary and the HTML page built from it never quote a secret.

use super::Round;
use crate::redact::{detect, withheld, withhold_lines, SecretKind};

/// Withholds `text` if it holds a secret, remembering it so the error lines quoting it are
/// withheld too (a bare key quoted after `m: journal: ` no longer looks like one).
fn check(text: &mut String, quoted: &mut Vec<(String, SecretKind)>) {
    if let Some(kind) = detect(text) {
        let marker = withheld(kind, text);
        quoted.push((std::mem::replace(text, marker), kind));
    }
}

impl Round {
    /// This round with remote texts that hold a secret withheld (length and hash only).
    pub fn redacted(mut self) -> Round {
        let mut quoted = Vec::new();
        for s in self.machines.values_mut() {
            check(&mut s.overlay, &mut quoted);
            if let Some(e) = s.session.as_mut().and_then(|x| x.error.as_mut()) {
                check(e, &mut quoted);
            }
            if let Some(kind) = detect(&s.journal.join("\n")) {
                quoted.extend(s.journal.iter().map(|l| (l.clone(), kind)));
                s.journal = withhold_lines(std::mem::take(&mut s.journal));
            }
        }
        for p in &mut self.pairs {
            if let Some(e) = &mut p.error {
                check(e, &mut quoted);
            }
        }
        for h in &mut self.hops {
            check(&mut h.detail, &mut quoted);
        }
        quoted.retain(|(q, _)| q.trim().len() >= 8);
        for e in &mut self.errors {
            if let Some((_, kind)) = quoted.iter().find(|(q, _)| e.contains(q.as_str())) {
                *e = withheld(*kind, e);
            }
        }
        self.errors = withhold_lines(std::mem::take(&mut self.errors));
        self
    }
}
