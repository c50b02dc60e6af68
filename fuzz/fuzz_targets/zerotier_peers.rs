//! `zerotier-cli peers`/`listpeers` (text and `-j`). Property: no panic; in the JSON form each
//! peer's latency is the printed one (no number is silently wrapped into another).
#![no_main]

use clan_coordination::probe::zerotier::parse_peers;
use clan_coordination_fuzz::{quiet, serializes, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = text(data);
    match parse_peers(&out) {
        Ok(peers) => {
            if let Ok(serde_json::Value::Array(raw)) = serde_json::from_str(out.trim()) {
                for (p, r) in peers.iter().zip(&raw) {
                    if let Some(ms) = p.latency_ms {
                        assert_eq!(r["latency"].as_i64(), Some(i64::from(ms)), "{r}");
                    }
                }
            }
            serializes("peers", &peers);
        }
        Err(e) => quiet("peers", &e.to_string(), data),
    }
});
