//! ping output (iputils, BusyBox, macOS). Property: no panic; the summary serialises; an error
//! message carries no secret.
#![no_main]

use clan_coordination::probe::ping::parse_ping;
use clan_coordination_fuzz::{quiet, serializes, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_ping(&text(data)) {
        Ok(s) => serializes("ping", &s),
        Err(e) => {
            quiet("ping", &e.to_string(), data);
            serializes("ping error", &e);
        }
    }
});
