//! `systemctl show`, `systemctl status` and `systemctl is-active` (input `stdout\0exit`).
//! Property: no panic; `show` keeps no empty unit; `is-active` accepts only systemd's words;
//! errors carry no secret.
#![no_main]

use clan_coordination::probe::systemd::{parse_is_active, parse_show, parse_status};
use clan_coordination_fuzz::{exit, fields, quiet, serializes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [out, status] = fields(data);
    let exit = exit(&status).unwrap_or(0);
    match parse_show(&out) {
        Ok(units) => {
            assert!(units.iter().all(|u| !u.props.is_empty()), "{units:?}");
            serializes("show", &units);
        }
        Err(e) => quiet("show", &e.to_string(), data),
    }
    match parse_status(&out) {
        Ok(s) => serializes("status", &s),
        Err(e) => quiet("status", &e.to_string(), data),
    }
    match parse_is_active(&out, exit) {
        Ok(a) => {
            assert_eq!(a.state, out.trim());
            assert!(!a.state.is_empty() && a.state.bytes().all(|b| b.is_ascii_lowercase()));
        }
        Err(e) => quiet("is-active", &e.to_string(), data),
    }
});
