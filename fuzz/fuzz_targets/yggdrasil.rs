//! `yggdrasilctl -json getSelf` and `getPeers`. Property: no panic; errors carry no secret.
#![no_main]

use clan_coordination::probe::yggdrasil::{parse_peers, parse_self};
use clan_coordination_fuzz::{quiet, serializes, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = text(data);
    match parse_self(&out) {
        Ok(s) => serializes("self", &s),
        Err(e) => quiet("getSelf", &e.to_string(), data),
    }
    match parse_peers(&out) {
        Ok(p) => serializes("peers", &p),
        Err(e) => quiet("getPeers", &e.to_string(), data),
    }
});
