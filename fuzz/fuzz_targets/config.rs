//! machines.toml (`config::parse`). Properties: no panic; an error points inside the file
//! (line within it, column from 1) and its message carries no secret; an accepted file has
//! valid unique machine names, at most `MAX_MACHINES`, systemd unit names that cannot be read
//! as options, and timeouts libssh2 takes as they are (never 0, never saturated).
#![no_main]

use std::collections::HashSet;
use std::path::Path;

use clan_coordination::config::{parse, MAX_MACHINES};
use clan_coordination::names::{MachineName, UnitName};
use clan_coordination::transport::outcome::libssh2_timeout_ms;
use clan_coordination_fuzz::{quiet, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let toml = text(data);
    match parse(Path::new("/nonexistent/fuzz/machines.toml"), &toml) {
        Ok(c) => {
            assert!(!c.machines.is_empty() && c.machines.len() <= MAX_MACHINES);
            let mut seen = HashSet::new();
            for m in &c.machines {
                assert!(MachineName::new(&m.name).is_ok(), "{:?}", m.name);
                assert!(seen.insert(&m.name), "{:?} twice", m.name);
            }
            for d in [
                c.ssh.connect_timeout,
                c.ssh.command_timeout,
                c.rebuild.timeout,
            ] {
                assert!(!d.is_zero());
                assert_eq!(u128::from(libssh2_timeout_ms(d)), d.as_millis(), "{d:?}");
            }
            for u in c
                .rebuild
                .restart_units
                .iter()
                .chain(c.modules.values().flat_map(|m| &m.units))
            {
                assert!(UnitName::new(u).is_ok(), "{u:?}");
            }
            assert!((1..=64).contains(&c.rebuild.parallel));
        }
        Err(e) => {
            let lines = toml.lines().count().max(1);
            assert!(e.line <= lines + 1, "line {} of {lines}", e.line);
            assert!(e.line == 0 || e.column >= 1, "{e:?}");
            quiet("config", &e.to_string(), data);
        }
    }
});
