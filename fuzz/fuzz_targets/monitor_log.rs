//! The monitor log (`read_log`: JSON lines, a torn tail, the stored plan checked), then what
//! `clan-coord report` and AC7 make of it: `summarize`, `render`, the HTML page. The input is
//! written to a file in a private temporary directory. Properties: no panic; every round read
//! has a sane plan (`every_secs` within 1 s..1 d, not above `for_secs`, finite times), so a
//! resumed monitor can neither spin nor overflow its round counter.
#![no_main]

use std::sync::OnceLock;

use clan_coordination::monitor::analysis::{render, summarize};
use clan_coordination::monitor::{html, read_log};
use clan_coordination_fuzz::quiet;
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temporary directory"))
}

fuzz_target!(|data: &[u8]| {
    let path = dir().path().join("monitor.jsonl");
    std::fs::write(&path, data).expect("write the input");
    match read_log(&path) {
        Ok(rounds) => {
            for r in &rounds {
                assert!(
                    r.every_secs >= 1.0 && r.every_secs <= 86_400.0,
                    "{}",
                    r.every_secs
                );
                assert!(r.every_secs <= r.for_secs && r.for_secs.is_finite());
                assert!(r.ts.is_finite() && r.secs.is_finite());
                assert!(r.round.checked_add(1).is_some());
            }
            let s = summarize(&rounds, 86_400.0);
            let _ = render(&s);
            let _ = html::page("fuzz", &rounds, &s);
        }
        Err(e) => quiet("monitor log", &e, data),
    }
});
