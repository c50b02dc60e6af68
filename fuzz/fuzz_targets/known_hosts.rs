//! A machine's known_hosts (input `known_hosts\0name`): `@cert-authority` lines (`parse_cert_authorities`, then matching a
//! name against each line's patterns) and plain/hashed/`@revoked` entries
//! (`known_hosts_keys`). Property: no panic; no hang (libFuzzer's timeout); a line with
//! patterns over the caps is an error, never a match.
#![no_main]

use clan_coordination::probe::ssh::{parse_cert_authorities, MAX_PATTERN_LIST_LEN};
use clan_coordination::transport::hostkey::known_hosts_keys;
use clan_coordination_fuzz::{fields, quiet, serializes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [text, name] = fields(data);
    match parse_cert_authorities(&text) {
        Ok(cas) => {
            for ca in &cas {
                assert!(
                    ca.patterns.iter().map(|p| p.len() + 1).sum::<usize>()
                        <= MAX_PATTERN_LIST_LEN + 1
                );
                let _ = ca.matches(&name);
            }
            serializes("cert authorities", &cas);
        }
        Err(e) => quiet("known_hosts", &e.to_string(), data),
    }
    let _ = known_hosts_keys(&text, &name);
});
