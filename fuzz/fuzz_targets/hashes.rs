//! The harness's hash scripts' output (input `stdout\0stderr\0exit`): a user's shadow and hash-file hashes (with stderr and
//! exit) and deployed files' hashes. Property: no panic; every file hash kept is 64 hex digits;
//! errors carry no secret (they quote stderr: a password hash there must be withheld).
#![no_main]

use clan_coordination::probe::hashes::{parse_file_hashes, parse_user_hashes};
use clan_coordination_fuzz::{exit, fields, quiet, serializes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [stdout, stderr, status] = fields(data);
    let exit = exit(&status);
    match parse_user_hashes(&stdout, &stderr, exit) {
        Ok(h) => serializes("user hashes", &h),
        Err(e) => quiet("user hashes", &e, data),
    }
    match parse_file_hashes(&stdout) {
        Ok(m) => assert!(m
            .values()
            .all(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))),
        Err(e) => quiet("file hashes", &e, data),
    }
});
