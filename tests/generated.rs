//! The generated test data is what `cargo xtask` writes: the broken fleets (its fault table), the
//! 24 h monitor log are regenerated in memory and compared byte for byte with
//! the committed files, so the table and the data cannot drift apart. The generators' source is
//! compiled in here (`#[path]`): a test of the root crate cannot depend on the xtask binary.

use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "../xtask/src/json.rs"]
mod json;

#[allow(dead_code)]
#[path = "../xtask/src/broken.rs"]
mod broken;

#[allow(dead_code)]
#[path = "../xtask/src/monitor.rs"]
mod monitor;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn assert_committed(path: &Path, generated: &str) {
    let committed = std::fs::read_to_string(root().join(path))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        committed == generated,
        "{} differs from what `cargo xtask` writes: regenerate it (docs/cassettes.md)",
        path.display()
    );
}

#[test]
fn broken_fleets_are_what_the_fault_table_writes() {
    let files = broken::files(root()).unwrap();
    for (path, text) in &files {
        assert_committed(path, text);
    }
    // No committed cassette the table no longer writes.
    let written: Vec<&PathBuf> = files.iter().map(|(p, _)| p).collect();
    for e in std::fs::read_dir(root().join(broken::DIR)).unwrap() {
        let p = Path::new(broken::DIR).join(e.unwrap().file_name());
        if p.extension().is_some_and(|x| x == "json") {
            assert!(
                written.contains(&&p),
                "{} is in no fault table entry",
                p.display()
            );
        }
    }
}

#[test]
fn monitor_log_is_what_the_generator_writes() {
    assert_committed(Path::new(monitor::OUTPUT), &monitor::log(root()).unwrap());
}
