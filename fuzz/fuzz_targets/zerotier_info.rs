//! `zerotier-cli info` (text and `-j`) and the CLI's error shapes. Property: no panic; a parsed
//! node id prints and parses back to itself; errors and causes carry no secret.
#![no_main]

use clan_coordination::probe::zerotier::{parse_cli_error, parse_info};
use clan_coordination::probe::zerotier_ids::NodeId;
use clan_coordination_fuzz::{quiet, serializes, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = text(data);
    match parse_info(&out) {
        Ok(info) => {
            let again: NodeId = info
                .address
                .to_string()
                .parse()
                .expect("node id round trip");
            assert_eq!(again, info.address);
            serializes("info", &info);
        }
        Err(e) => quiet("info", &e.to_string(), data),
    }
    if let Some(e) = parse_cli_error(&out) {
        quiet("cli error", &e.cause(), data);
        serializes("cli error", &e);
    }
});
