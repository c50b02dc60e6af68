//! `ssh-keygen -L` and `sshd -T`. Property: no panic; principals and keywords come out
//! trimmed; errors carry no secret.
#![no_main]

use clan_coordination::probe::ssh::{parse_keygen_l, parse_sshd_t};
use clan_coordination_fuzz::{quiet, serializes, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = text(data);
    match parse_keygen_l(&out) {
        Ok(c) => {
            assert!(c.principals.iter().all(|p| p.trim() == p), "{c:?}");
            serializes("keygen", &c);
        }
        Err(e) => quiet("ssh-keygen -L", &e.to_string(), data),
    }
    match parse_sshd_t(&out) {
        Ok(m) => {
            assert!(!m.is_empty());
            assert!(m.values().flatten().all(|v| v.trim() == v), "{m:?}");
        }
        Err(e) => quiet("sshd -T", &e.to_string(), data),
    }
});
