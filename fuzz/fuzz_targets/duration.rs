//! Durations on the command line and in `COORD_*` (`parse_duration`, `24h`, `1.5d`), against
//! the monitor's span and interval ranges. Properties: no panic; an accepted duration is within
//! its range and libssh2 takes it as it is; an error names the value and the range.
#![no_main]

use clan_coordination::env::{parse_duration, INTERVAL, SPAN};
use clan_coordination::transport::outcome::libssh2_timeout_ms;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    for range in [SPAN, INTERVAL] {
        match parse_duration(s, range) {
            Ok(d) => {
                assert!(range.min <= d && d <= range.max, "{s:?}: {d:?}");
                assert_eq!(u128::from(libssh2_timeout_ms(d)), d.as_millis().max(1));
            }
            Err(e) => assert!(e.contains(&range.allowed()), "{e}"),
        }
    }
});
