//! The controller's member records (`controller.d/network/*/member/*.json`, concatenated), as the
//! harness reads them on a ZeroTier controller. Property: no panic; errors carry no secret.
#![no_main]

use clan_coordination::probe::zerotier::parse_member_files;
use clan_coordination_fuzz::{quiet, serializes, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_member_files(&text(data)) {
        Ok(m) => serializes("member files", &m),
        Err(e) => quiet("member files", &e.to_string(), data),
    }
});
