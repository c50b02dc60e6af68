//! `[thresholds]`: pass/fail limits and ping pacing, bounded so a typo cannot make a check
//! meaningless (a zero count) or endless (an hour-long timeout).

use super::located::Source;
use super::raw::RawThresholds;
use super::MachineConfig;
use crate::error::ConfigError;

/// Pass/fail limits.
#[derive(Debug, Clone)]
pub struct Thresholds {
    /// Largest acceptable average and maximum RTT over the overlay (story: 200 ms).
    pub max_rtt_ms: f64,
    /// Echo requests per ordered pair.
    pub ping_count: u32,
    /// Seconds between echo requests (below 0.2 needs root on the machine).
    pub ping_interval_secs: f64,
    /// Seconds to wait for the last reply.
    pub ping_timeout_secs: u32,
}

/// Validates `[thresholds]`; absent fields take the story's defaults.
pub(super) fn parse(src: &Source, t: Option<&RawThresholds>) -> Result<Thresholds, ConfigError> {
    Ok(Thresholds {
        max_rtt_ms: src.bounded(
            t.and_then(|t| t.max_rtt_ms.as_ref()),
            200.0,
            0.1,
            60_000.0,
            "thresholds.max_rtt_ms",
        )?,
        ping_count: src.bounded(
            t.and_then(|t| t.ping_count.as_ref()),
            5,
            1,
            100,
            "thresholds.ping_count",
        )?,
        ping_interval_secs: src.bounded(
            t.and_then(|t| t.ping_interval_secs.as_ref()),
            0.2,
            0.002,
            10.0,
            "thresholds.ping_interval_secs",
        )?,
        ping_timeout_secs: src.bounded(
            t.and_then(|t| t.ping_timeout_secs.as_ref()),
            2,
            1,
            60,
            "thresholds.ping_timeout_secs",
        )?,
    })
}

/// iputils refuses intervals under 0.2 s to anyone but root ("cannot flood"): say so here, not
/// as a mesh failure on every pair. Needs the machines, so it runs after `[[machine]]`.
pub(super) fn check_ping_interval(
    src: &Source,
    t: Option<&RawThresholds>,
    machines: &[MachineConfig],
) -> Result<(), ConfigError> {
    if let (Some(iv), Some(m)) = (
        t.and_then(|t| t.ping_interval_secs.as_ref()),
        machines.iter().find(|m| m.user != "root"),
    ) {
        if *iv.get_ref() < 0.2 {
            return Err(src.error(
                iv.span().start,
                "thresholds.ping_interval_secs",
                format!(
                    "{} s is below 0.2 s, which ping allows only to root, and {} logs in as {:?}",
                    iv.get_ref(),
                    m.name,
                    m.user
                ),
                "use 0.2 or more, or log in as root",
            ));
        }
    }
    Ok(())
}
