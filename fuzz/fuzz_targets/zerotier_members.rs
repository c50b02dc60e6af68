//! The controller's member list (`zerotier-members`-style output). Property: no panic; errors
//! carry no secret.
#![no_main]

use clan_coordination::probe::zerotier::parse_members;
use clan_coordination_fuzz::{quiet, serializes, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_members(&text(data)) {
        Ok(m) => serializes("members", &m),
        Err(e) => quiet("members", &e.to_string(), data),
    }
});
