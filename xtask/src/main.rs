//! Generates the derived test data, so the cassette format has one implementation (the
//! library's `transport::cassette` types) and the fault scenarios live in one Rust table:
//!
//! ```sh
//! cargo xtask broken       # tests/cassettes/broken/ (one cassette per fault, from the healthy ones)
//! cargo xtask monitor      # tests/monitor/healthy-24h.jsonl (from a round recorded on the lab)
//! cargo xtask all          # both, in this order
//! ```
//!
//! Run after re-recording a healthy cassette (the story fleet, the yggdrasil lab) or changing the
//! example clan. Regenerating an unchanged input rewrites the same bytes; `tests/generated.rs`
//! checks that the committed broken fleets and monitor log are what this writes.

use std::path::PathBuf;
use std::process::ExitCode;

mod broken;
mod json;
mod monitor;

const USAGE: &str = "usage: cargo xtask broken | monitor | all";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [what] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let root = root();
    let result = match what.as_str() {
        "broken" => broken::write(&root),
        "monitor" => monitor::write(&root),
        "all" => broken::write(&root).and_then(|()| monitor::write(&root)),
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
