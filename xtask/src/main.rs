//! Generates the synthesised test data, so the cassette format has one implementation (the
//! library's `transport::cassette` types) and the fault scenarios live in one Rust table:
//!
//! ```sh
//! cargo xtask synthesize   # tests/cassettes/story-fleet.json (runs `clan-coord plan --json`, ssh-keygen)
//! cargo xtask broken       # tests/cassettes/broken/ (one cassette per fault, from the healthy ones)
//! cargo xtask monitor      # tests/monitor/healthy-24h.jsonl (from a round recorded on the lab)
//! cargo xtask all          # the three, in this order
//! ```
//!
//! Run after changing a probe command (synthesize, then broken) or the example clan. Regenerating
//! an unchanged input rewrites the same bytes; `tests/generated.rs` checks that the committed
//! story fleet, broken fleets and monitor log are what this writes.

use std::path::PathBuf;
use std::process::ExitCode;

mod broken;
mod json;
mod monitor;
mod synthesize;

const USAGE: &str = "usage: cargo xtask synthesize | broken | monitor | all";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [what] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let root = root();
    let result = match what.as_str() {
        "synthesize" => synthesize::write(&root),
        "broken" => broken::write(&root),
        "monitor" => monitor::write(&root),
        "all" => synthesize::write(&root)
            .and_then(|()| broken::write(&root))
            .and_then(|()| monitor::write(&root)),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the `clan-coordination` crate), wherever cargo was started: the nearest
/// directory upwards whose Cargo.toml declares the workspace.
fn root() -> PathBuf {
    let start = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    start
        .ancestors()
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"))
        })
        .unwrap_or(&start)
        .to_path_buf()
}
