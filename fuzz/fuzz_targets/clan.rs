//! clan CLI outputs: `clan machines list`, `clan vars list`, and vars paths. Property: no
//! panic; every machine name listed is a valid name; a secret var keeps no value; errors
//! carry no secret.
#![no_main]

use clan_coordination::names::MachineName;
use clan_coordination::probe::clan::{parse_machines_list, parse_var_path, parse_vars_list};
use clan_coordination_fuzz::{quiet, serializes, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = text(data);
    match parse_machines_list(&out) {
        Ok(names) => assert!(
            names.iter().all(|n| MachineName::new(n).is_ok()),
            "{names:?}"
        ),
        Err(e) => quiet("machines list", &e.to_string(), data),
    }
    match parse_vars_list(&out) {
        Ok(vars) => {
            assert!(vars.iter().all(|v| !v.secret || v.value.is_none()));
            serializes("vars", &vars);
        }
        Err(e) => quiet("vars list", &e.to_string(), data),
    }
    match parse_var_path(&out) {
        Ok(p) => serializes("var path", &p),
        Err(e) => quiet("var path", &e.to_string(), data),
    }
});
