//! A test that cannot run on this machine says so where the operator looks. libtest captures
//! `eprintln!` of passing tests, so a skipped test would read as a pass: the line goes to the real
//! standard error at once, and one closing line after cargo's own summary counts the skips by
//! reason (`skipped 3: not root (lab_fault, lab_heal, lab_monitor)`).

#![allow(dead_code)] // not every test binary that has this module skips

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Reason → the tests skipped for it.
static SKIPPED: Mutex<BTreeMap<String, Vec<String>>> = Mutex::new(BTreeMap::new());

/// Marks the running test as not run here because of `why`; the caller then returns. libtest
/// names each test's thread after the test.
pub fn skip(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    write_stderr(&format!("SKIPPED {test}: {why}\n"));
    let mut all = SKIPPED.lock().unwrap_or_else(|p| p.into_inner());
    if all.is_empty() {
        // SAFETY: registers a plain `extern "C" fn` that takes no arguments; atexit has no
        // other precondition.
        unsafe {
            libc::atexit(summary);
        }
    }
    all.entry(why.to_string())
        .or_default()
        .push(test.to_string());
}

/// Runs at process exit, after libtest printed `test result: ...`.
extern "C" fn summary() {
    let all = SKIPPED.lock().unwrap_or_else(|p| p.into_inner());
    let count: usize = all.values().map(Vec::len).sum();
    let reasons: Vec<String> = all
        .iter()
        .map(|(why, tests)| format!("{why} ({})", tests.join(", ")))
        .collect();
    write_stderr(&format!("skipped {count}: {}\n", reasons.join("; ")));
}

/// Straight to file descriptor 2: neither libtest's capture nor Rust's stdio state at exit in
/// the way.
fn write_stderr(text: &str) {
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        // SAFETY: the pointer and length describe `rest`, a live byte slice.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            return;
        }
        rest = &rest[n as usize..];
    }
}
