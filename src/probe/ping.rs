//! ping summaries: iputils (v4/v6, old and new headers), BusyBox and macOS. Only the statistics
//! block is trusted: headers differ between versions, loss can be fractional, `+N errors` and
//! `+N duplicates` may appear, and there is no rtt line when nothing came back.

use once_cell::sync::Lazy;
use regex::Regex;

use crate::redact::withhold;

/// Round-trip times in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Rtt {
    /// Minimum.
    pub min: f64,
    /// Average.
    pub avg: f64,
    /// Maximum.
    pub max: f64,
    /// Mean deviation (iputils mdev, macOS std-dev); absent on BusyBox.
    pub mdev: Option<f64>,
}

/// The statistics block of one ping run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PingSummary {
    /// Echo requests sent.
    pub transmitted: u32,
    /// Replies received.
    pub received: u32,
    /// ICMP errors (`+N errors`).
    pub errors: u32,
    /// Duplicate replies.
    pub duplicates: u32,
    /// Loss in percent as printed (may be fractional).
    pub loss_percent: f64,
    /// RTT, when at least one reply arrived.
    pub rtt: Option<Rtt>,
    /// Last ICMP error text seen (e.g. "Destination Host Unreachable").
    pub icmp_error: Option<String>,
    /// Each reply's sequence number and time in ms, in arrival order (duplicates left out).
    pub echoes: Vec<(u32, f64)>,
}

/// A ping that produced no statistics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
pub enum PingError {
    /// `connect: Network is unreachable`: no route to the address at all.
    #[error("network is unreachable (no route to the overlay address: interface down or address not assigned)")]
    NetworkUnreachable,
    /// Name resolution failed.
    #[error("name {0:?} does not resolve")]
    NameNotKnown(String),
    /// Wrong address family requested.
    #[error("address family not supported for {0:?} (IPv4 ping of an IPv6 address?)")]
    AddressFamily(String),
    /// Legacy unknown-host message.
    #[error("unknown host {0:?}")]
    UnknownHost(String),
    /// Output ended before the statistics block (killed, truncated); carries the ICMP error seen.
    #[error("no statistics block in the output{}", .0.as_ref().map(|e| format!(" (last ICMP error: {e})")).unwrap_or_default())]
    NoSummary(Option<String>),
}

static SUMMARY: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?m)^(\d+) packets transmitted, (\d+)(?: packets)? received,(?: \+(\d+) duplicates,)?(?: \+(\d+) errors,)?(?: \+(\d+) duplicates,)? ([\d.]+)% packet loss").expect("static regex")
});
static RTT: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?m)^(?:rtt|round-trip) min/avg/max(?:/(?:mdev|std-dev|stddev))? = ([\d.]+)/([\d.]+)/([\d.]+)(?:/([\d.]+))? ms").expect("static regex")
});
static ICMP_ERR: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?m)^(?:From \S+ icmp_seq=\d+ |\d+ bytes from .*: )(Destination .*)$")
        .expect("static regex")
});
static ECHO: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?m)^\d+ bytes from .*?\b(?:icmp_seq|seq)=(\d+)\b.*?\btime[=<]([\d.]+) ?ms(.*)$")
        .expect("static regex")
});
static GAI: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?m)^ping6?: (.+): (Name or service not known|Address family for hostname not supported|Temporary failure in name resolution)$").expect("static regex")
});
static UNKNOWN: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"(?m)^ping6?: unknown host (\S+)").expect("static regex"));

/// A text quoted from the output, through the redaction point.
fn quoted(s: &str) -> String {
    withhold(s.trim()).into_owned()
}

/// Parses stdout and stderr of one ping run (pass both joined).
pub fn parse_ping(out: &str) -> Result<PingSummary, PingError> {
    let icmp_error = ICMP_ERR.captures_iter(out).last().map(|c| quoted(&c[1]));
    if let Some(c) = SUMMARY.captures(out) {
        let n = |i: usize| {
            c.get(i)
                .and_then(|m| m.as_str().parse::<u32>().ok())
                .unwrap_or(0)
        };
        let loss_percent = c[6].parse::<f64>().unwrap_or(100.0);
        let rtt = RTT.captures(out).map(|r| {
            let f = |i: usize| r.get(i).and_then(|m| m.as_str().parse::<f64>().ok());
            Rtt {
                min: f(1).unwrap_or(0.0),
                avg: f(2).unwrap_or(0.0),
                max: f(3).unwrap_or(0.0),
                mdev: f(4),
            }
        });
        let echoes = ECHO
            .captures_iter(out)
            .filter(|e| !e[3].contains("DUP!"))
            .filter_map(|e| Some((e[1].parse().ok()?, e[2].parse().ok()?)))
            .collect();
        return Ok(PingSummary {
            echoes,
            transmitted: n(1),
            received: n(2),
            duplicates: n(3).max(n(5)),
            errors: n(4),
            loss_percent,
            rtt,
            icmp_error,
        });
    }
    if out.contains("connect: Network is unreachable") {
        return Err(PingError::NetworkUnreachable);
    }
    if let Some(c) = GAI.captures(out) {
        return Err(if c[2].starts_with("Address family") {
            PingError::AddressFamily(quoted(&c[1]))
        } else {
            PingError::NameNotKnown(quoted(&c[1]))
        });
    }
    if let Some(c) = UNKNOWN.captures(out) {
        return Err(PingError::UnknownHost(quoted(&c[1])));
    }
    Err(PingError::NoSummary(icmp_error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::detect;

    #[test]
    fn an_icmp_error_is_not_quoted_when_it_holds_a_secret() {
        // Found by fuzz/fuzz_targets/ping.rs (shortened): the ICMP error text reads, without
        // its spaces, as a DES shadow line (`eachable:<13>:4700:10:`) and was kept raw.
        let out = "From 2606:4700:10::6814:57f7 icmp_seq=2 Destination un$eachable: Rej5s from \
                   2606:4700:10::6814:57f7: icmp_seq=2\n";
        assert!(detect(out).is_some());
        let e = parse_ping(out).unwrap_err();
        let PingError::NoSummary(Some(icmp)) = &e else {
            panic!("{e:?}");
        };
        assert!(icmp.starts_with("<withheld: contains"), "{icmp}");
        assert_eq!(detect(&e.to_string()), None, "{e}");
        // An ordinary ICMP error is kept as it is.
        let out = "From fd00::1 icmp_seq=1 Destination unreachable: Address unreachable\n";
        assert_eq!(
            parse_ping(out),
            Err(PingError::NoSummary(Some(
                "Destination unreachable: Address unreachable".into()
            )))
        );
    }
}
