//! What every fuzz target checks of a parser's answer, beyond "it returned".

use clan_coordination::redact;
use serde::Serialize;

/// A message a parser returns reaches the operator (findings, logs): when the input holds a
/// secret, the message must not carry one, whatever part of the input it quotes. (When the input
/// holds none, a match in the message is the message's own words around a quote, e.g.
/// `error: Destinationun:::` read as a DES shadow line: not a leak.)
pub fn quiet(what: &str, msg: &str, input: &[u8]) {
    if let Some(kind) = redact::detect(msg) {
        if redact::detect(&text(input)).is_some() {
            panic!("{what}: message carries {kind}: {}", redact::describe(msg));
        }
    }
}

/// Parsed values go into report.json: serialising them must work.
pub fn serializes<T: Serialize>(what: &str, v: &T) {
    if let Err(e) = serde_json::to_string(v) {
        panic!("{what}: does not serialise: {e}");
    }
}

/// The input as text, the way a transport decodes a command's output (lossy UTF-8).
pub fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// Targets that take several texts (stdout, stderr, an exit status, a name) read them from one
/// input split at NUL bytes, so a real output is a seed as it is (`out\0exit`). Missing fields
/// are empty.
pub fn fields<const N: usize>(data: &[u8]) -> [String; N] {
    let mut parts = data.splitn(N, |b| *b == 0);
    std::array::from_fn(|_| parts.next().map(text).unwrap_or_default())
}

/// An exit status field: a number, or none (`-`, empty, anything else), as the batch runner
/// reports it.
pub fn exit(field: &str) -> Option<i32> {
    field.trim().parse().ok()
}
