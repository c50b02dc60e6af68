//! NixOS: the state script's lines (`parse_state`), `list-generations` (bash, -ng, `--json`),
//! the system profile link, `/run/current-system` paths and `nixos-version`. Property: no
//! panic; a profile generation prints back to the link it came from; errors carry no secret.
#![no_main]

use clan_coordination::probe::nixos::{
    parse_generations, parse_nixos_version, parse_profile_link, parse_state, parse_system_paths,
};
use clan_coordination_fuzz::{quiet, serializes, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = text(data);
    match parse_state(&out) {
        Ok(s) => serializes("state", &s),
        Err(e) => quiet("state", &e, data),
    }
    match parse_generations(&out) {
        Ok(g) => serializes("generations", &g),
        Err(e) => quiet("generations", &e.to_string(), data),
    }
    match parse_profile_link(&out) {
        Ok(n) => assert_eq!(parse_profile_link(&format!("system-{n}-link")), Ok(n)),
        Err(e) => quiet("profile link", &e.to_string(), data),
    }
    match parse_system_paths(&out) {
        Ok(p) => serializes("system paths", &p),
        Err(e) => quiet("system paths", &e.to_string(), data),
    }
    match parse_nixos_version(&out) {
        Ok(_) => {}
        Err(e) => quiet("nixos-version", &e.to_string(), data),
    }
});
