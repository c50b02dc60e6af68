//! Certificate validity as OpenSSH prints it (`sshkey_format_cert_validity`: `forever`,
//! `after <t>`, `before <t>`, `from <t> to <t>`, each `<t>` as `%Y-%m-%dT%H:%M:%S` in the local
//! time of the machine that printed it) and the clock a machine reports, so a window is judged
//! in the same local time it was printed in, whatever the machine's time zone.

use std::fmt;

use once_cell::sync::Lazy;
use regex::Regex;

use super::super::ProbeError;

static STAMP: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$").expect("static regex"));

/// A wall-clock time as OpenSSH and `date +%Y-%m-%dT%H:%M:%S` print it, in some machine's local
/// time. The fixed-width format orders chronologically as text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct LocalTime(String);

impl LocalTime {
    /// Parses `2026-01-01T00:00:00` (the only format OpenSSH prints).
    pub fn parse(s: &str) -> Option<LocalTime> {
        let ok = STAMP.is_match(s) && {
            let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(99);
            (1..=12).contains(&n(5..7))
                && (1..=31).contains(&n(8..10))
                && n(11..13) < 24
                && n(14..16) < 60
                && n(17..19) < 61
        };
        ok.then(|| LocalTime(s.to_string()))
    }

    /// Seconds since 1970-01-01T00:00:00 of this wall-clock reading (no zone applied).
    pub fn naive_seconds(&self) -> i64 {
        let n = |r: std::ops::Range<usize>| self.0[r].parse::<i64>().unwrap_or(0);
        let days = days_from_civil(n(0..4), n(5..7), n(8..10));
        days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
    }

    /// The wall-clock reading `secs` seconds after 1970-01-01T00:00:00.
    pub fn from_naive_seconds(secs: i64) -> LocalTime {
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        LocalTime(format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        ))
    }

    /// The text as printed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A certificate's validity window; `None` ends are open (`forever` has neither).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Validity {
    /// Valid from (inclusive).
    pub from: Option<LocalTime>,
    /// Valid until (exclusive: OpenSSH refuses at `now >= valid_before`).
    pub to: Option<LocalTime>,
}

/// Where a time falls against a [`Validity`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowState {
    /// Inside the window.
    Valid,
    /// Past its end, which is given.
    Expired(LocalTime),
    /// Before its start, which is given.
    NotYetValid(LocalTime),
}

impl Validity {
    /// Parses what follows `valid ` (ssh -v) or `Valid: ` (ssh-keygen -L).
    pub fn parse(s: &str) -> Result<Validity, ProbeError> {
        const P: &str = "certificate validity";
        let t = |x: &str| {
            LocalTime::parse(x).ok_or_else(|| ProbeError::new(P, format!("not a time: {x:?}"), s))
        };
        let s = s.trim();
        if s == "forever" {
            return Ok(Validity {
                from: None,
                to: None,
            });
        }
        if let Some(rest) = s.strip_prefix("from ") {
            let (a, b) = rest
                .split_once(" to ")
                .ok_or_else(|| ProbeError::new(P, "`from` without `to`", s))?;
            return Ok(Validity {
                from: Some(t(a)?),
                to: Some(t(b)?),
            });
        }
        if let Some(a) = s.strip_prefix("after ") {
            return Ok(Validity {
                from: Some(t(a)?),
                to: None,
            });
        }
        if let Some(b) = s.strip_prefix("before ") {
            return Ok(Validity {
                from: None,
                to: Some(t(b)?),
            });
        }
        Err(ProbeError::new(
            P,
            "expected forever, from <t> to <t>, after <t> or before <t>",
            s,
        ))
    }

    /// No end at all (clan issues its host certificates so).
    pub fn is_forever(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }

    /// Where `now` (in the same local time) falls.
    pub fn at(&self, now: &LocalTime) -> WindowState {
        match (&self.from, &self.to) {
            (Some(f), _) if now < f => WindowState::NotYetValid(f.clone()),
            (_, Some(t)) if now >= t => WindowState::Expired(t.clone()),
            _ => WindowState::Valid,
        }
    }

    /// The window of a certificate's `valid_after`/`valid_before` (Unix seconds, OpenSSH's
    /// 0 and `u64::MAX` for open ends) in a local time `offset` seconds east of UTC.
    pub fn from_unix(after: u64, before: u64, offset: i64) -> Validity {
        let local = |t: u64| {
            LocalTime::from_naive_seconds(i64::try_from(t).unwrap_or(i64::MAX / 2) + offset)
        };
        Validity {
            from: (after != 0).then(|| local(after)),
            to: (before != u64::MAX).then(|| local(before)),
        }
    }
}

impl fmt::Display for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.from, &self.to) {
            (None, None) => f.write_str("forever"),
            (Some(a), Some(b)) => write!(f, "from {a} to {b}"),
            (Some(a), None) => write!(f, "after {a}"),
            (None, Some(b)) => write!(f, "before {b}"),
        }
    }
}

/// A machine's clock as its client view probe printed it: Unix seconds and the same instant
/// in its local time (the time OpenSSH prints validity in).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Clock {
    /// `date +%s`.
    pub epoch: i64,
    /// `date +%Y-%m-%dT%H:%M:%S`.
    pub local: LocalTime,
}

impl Clock {
    /// Seconds the local time is east of UTC, to the minute (the two `date` calls may straddle
    /// a second).
    pub fn utc_offset(&self) -> i64 {
        let d = self.local.naive_seconds() - self.epoch;
        (d as f64 / 60.0).round() as i64 * 60
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> LocalTime {
        LocalTime::parse(s).unwrap()
    }

    #[test]
    fn openssh_validity_forms() {
        let v = Validity::parse("from 2025-01-01T00:00:00 to 2026-01-01T00:00:00").unwrap();
        assert_eq!(
            v.at(&t("2026-09-21T14:13:20")),
            WindowState::Expired(t("2026-01-01T00:00:00"))
        );
        assert_eq!(
            v.at(&t("2024-12-31T23:59:59")),
            WindowState::NotYetValid(t("2025-01-01T00:00:00"))
        );
        assert_eq!(v.at(&t("2025-06-01T00:00:00")), WindowState::Valid);
        assert!(Validity::parse("forever").unwrap().is_forever());
        assert_eq!(
            Validity::parse("after 2025-01-01T00:00:00").unwrap().to,
            None
        );
        assert_eq!(
            Validity::parse("before 2025-01-01T00:00:00").unwrap().from,
            None
        );
        assert!(Validity::parse("from 2025-13-01T00:00:00 to 2026-01-01T00:00:00").is_err());
        assert!(Validity::parse("sometimes").is_err());
    }

    #[test]
    fn local_time_round_trips_unix_seconds() {
        // 1790000000 = 2026-09-21T14:13:20Z (date -u -d @1790000000).
        assert_eq!(
            LocalTime::from_naive_seconds(1_790_000_000).as_str(),
            "2026-09-21T14:13:20"
        );
        assert_eq!(t("2026-09-21T14:13:20").naive_seconds(), 1_790_000_000);
        let c = Clock {
            epoch: 1_790_000_000,
            local: t("2026-09-21T16:13:21"),
        };
        assert_eq!(c.utc_offset(), 7200);
        let v = Validity::from_unix(1_735_689_600, u64::MAX, 0);
        assert_eq!(v.to_string(), "after 2025-01-01T00:00:00");
    }
}
