//! `journalctl -o json` (one JSON object per line) into entries, and each entry into the line the
//! monitor log keeps (the shape of `-o short-iso`, in UTC). JSON rather than journalctl's text
//! because the text form folds a message's own newlines into the next "line", shows binary
//! messages as `[N blob data]`, and prints its errors in the same stream as entries.

use serde_json::Value;

use super::ssh::validity::LocalTime;

/// One journal entry, with the fields the monitor reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `__REALTIME_TIMESTAMP`: microseconds since the epoch, UTC.
    pub realtime_us: u64,
    /// `_HOSTNAME`.
    pub host: String,
    /// `SYSLOG_IDENTIFIER`, else `_COMM`, else `_SYSTEMD_UNIT` (systemd's own lines about a unit
    /// carry `systemd` here and the unit in `UNIT`).
    pub identifier: String,
    /// `_PID`, when the entry has one.
    pub pid: Option<u32>,
    /// `PRIORITY` (0 emerg .. 7 debug); 6 (info) when absent, as journald assumes.
    pub priority: u8,
    /// `MESSAGE`; a message journald stored as bytes (not UTF-8) is decoded lossily.
    pub message: String,
}

/// What a line of the output was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// An entry.
    Entry(Entry),
    /// A line that is not a journal entry (journalctl's own warnings, a shell error): kept as
    /// text, since it may be the only sign the scan saw nothing.
    Other(String),
}

/// Each non-empty line of `journalctl -o json` output, in order.
pub fn parse(output: &str) -> Vec<Line> {
    output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(v @ Value::Object(_)) => {
                entry(&v).map_or_else(|| Line::Other(l.to_string()), Line::Entry)
            }
            _ => Line::Other(l.to_string()),
        })
        .collect()
}

fn entry(v: &Value) -> Option<Entry> {
    let text = |k: &str| field_text(v.get(k)?);
    let realtime_us = text("__REALTIME_TIMESTAMP")?.parse().ok()?;
    let identifier = text("SYSLOG_IDENTIFIER")
        .or_else(|| text("_COMM"))
        .or_else(|| text("_SYSTEMD_UNIT"))
        .unwrap_or_else(|| "-".into());
    Some(Entry {
        realtime_us,
        host: text("_HOSTNAME").unwrap_or_else(|| "-".into()),
        identifier,
        pid: text("SYSLOG_PID")
            .or_else(|| text("_PID"))
            .and_then(|p| p.parse().ok()),
        priority: text("PRIORITY").and_then(|p| p.parse().ok()).unwrap_or(6),
        message: text("MESSAGE").unwrap_or_default(),
    })
}

/// journald's JSON gives a field as a string, as an array of byte values (not valid UTF-8 or
/// control characters), or as an array of either when the field repeats (the first is taken).
fn field_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.iter().all(Value::is_u64) => {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        Value::Array(items) => items.first().and_then(field_text),
        _ => None,
    }
}

impl Entry {
    /// The entry as `-o short-iso` would show it, in UTC: `2026-11-30T02:10:33+00:00 host
    /// ident[pid]: message`; a multi-line message stays on one line (`\n` shown as `⏎`).
    pub fn line(&self) -> String {
        let secs = i64::try_from(self.realtime_us / 1_000_000).unwrap_or(i64::MAX);
        let when = LocalTime::from_naive_seconds(secs);
        let pid = self.pid.map(|p| format!("[{p}]")).unwrap_or_default();
        let message = self.message.trim_end().replace('\n', " ⏎ ");
        format!(
            "{when}+00:00 {} {}{pid}: {message}",
            self.host, self.identifier
        )
    }
}

impl Line {
    /// The text the monitor log keeps for this line.
    pub fn text(&self) -> String {
        match self {
            Line::Entry(e) => e.line(),
            Line::Other(s) => s.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_as_short_iso_in_utc() {
        let out = r#"{"__REALTIME_TIMESTAMP":"1764468633123456","_HOSTNAME":"gcp-vm","SYSLOG_IDENTIFIER":"systemd","_PID":"1","PRIORITY":"4","MESSAGE":"zerotierone.service: Main process exited, code=killed, status=9/KILL"}"#;
        let lines = parse(out);
        assert_eq!(
            lines[0].text(),
            "2025-11-30T02:10:33+00:00 gcp-vm systemd[1]: zerotierone.service: Main process exited, code=killed, status=9/KILL"
        );
    }

    #[test]
    fn binary_messages_repeated_fields_and_other_lines() {
        let out = "{\"__REALTIME_TIMESTAMP\":\"0\",\"MESSAGE\":[104,105,10,255],\"_COMM\":[\"a\",\"b\"]}\nNo journal files were opened due to insufficient permissions.\n\n[1,2]\n";
        let lines = parse(out);
        assert_eq!(lines.len(), 3);
        let Line::Entry(e) = &lines[0] else {
            panic!("{lines:?}")
        };
        assert_eq!(e.message, "hi\n\u{fffd}");
        assert_eq!(e.identifier, "a");
        assert_eq!(e.priority, 6);
        assert_eq!(e.line(), "1970-01-01T00:00:00+00:00 - a: hi ⏎ \u{fffd}");
        assert_eq!(
            lines[1],
            Line::Other("No journal files were opened due to insufficient permissions.".into())
        );
        assert_eq!(lines[2], Line::Other("[1,2]".into()));
    }

    #[test]
    fn an_object_without_a_timestamp_is_not_an_entry() {
        assert!(matches!(&parse(r#"{"MESSAGE":"x"}"#)[0], Line::Other(_)));
    }
}
