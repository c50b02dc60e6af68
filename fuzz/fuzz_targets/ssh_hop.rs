//! `ssh -v` stderr and exit status of one hop (`parse_hop`; input `stderr\0exit`). Property: no panic; an `Other`
//! class quotes one line of the input (trimmed) or the fixed exit-0 note, nothing else.
#![no_main]

use clan_coordination::probe::ssh::{parse_hop, HopClass};
use clan_coordination_fuzz::{exit, fields, serializes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [stderr, status] = fields(data);
    let hop = parse_hop(&stderr, exit(&status));
    if let HopClass::Other { line } = &hop.class {
        assert!(
            line.is_empty()
                || line.starts_with("exited 0 without")
                || stderr.lines().any(|l| l.trim() == line),
            "{line:?}"
        );
    }
    serializes("hop", &hop);
});
