//! A cassette file (`Cassette::load`: JSON, format check, `derive_from` chains applied). The
//! input is written to a file in a private temporary directory and loaded from there (a
//! `derive_from` naming itself is a loop the loader must stop). Properties: no panic; errors
//! carry no secret; a parsed cassette serialises and parses back to the same commands.
#![no_main]

use std::sync::OnceLock;

use clan_coordination::transport::cassette::Cassette;
use clan_coordination_fuzz::quiet;
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temporary directory"))
}

fuzz_target!(|data: &[u8]| {
    let path = dir().path().join("cassette.json");
    std::fs::write(&path, data).expect("write the input");
    match Cassette::load(&path) {
        Ok(loaded) => {
            let c = loaded.cassette;
            let text = serde_json::to_string(&c).expect("cassette serialises");
            let back: Cassette = serde_json::from_str(&text).expect("and parses back");
            assert_eq!(back.machines, c.machines);
            assert_eq!(back.workstation, c.workstation);
        }
        Err(e) => quiet("cassette", &e.to_string(), data),
    }
});
