//! The process groups of running workstation commands. Each command leads its own group, so
//! that a deadline kills everything it started (a rebuild's nix and ssh); that also takes it out
//! of the terminal's group, so a Ctrl-C would no longer reach it and a rebuild would run on
//! after the harness died. The harness therefore passes SIGINT, SIGTERM and SIGHUP on: the live
//! groups are killed, then the signal takes its default course.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Once;

/// More commands than machines never run at once; a command beyond this is not registered
/// (it still dies at its deadline).
const SLOTS: usize = 256;

static LIVE: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
static INSTALL: Once = Once::new();

/// A group registered for as long as this lives.
pub struct Registered(Option<usize>);

/// Registers the group `pgid` (a child that leads its own group) until the guard drops.
pub fn register(pgid: libc::pid_t) -> Registered {
    INSTALL.call_once(install);
    let slot = LIVE.iter().position(|s| {
        s.compare_exchange(0, pgid, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    });
    if slot.is_none() {
        tracing::warn!(
            pgid,
            "more than {SLOTS} commands at once: this one is not killed on Ctrl-C"
        );
    }
    Registered(slot)
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(i) = self.0 {
            LIVE[i].store(0, Ordering::SeqCst);
        }
    }
}

/// Installs the handler for each signal whose disposition is still the default (a program
/// that handles a signal itself keeps its handler).
fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: sigaction with a zeroed struct queries and then sets a plain handler
        // (no SA_SIGINFO) that only calls async-signal-safe functions.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0
                || old.sa_sigaction != libc::SIG_DFL
            {
                continue;
            }
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut new.sa_mask);
            libc::sigaction(sig, &new, std::ptr::null_mut());
        }
    }
}

/// Kills every live group, then lets the signal do what it would have done.
extern "C" fn on_signal(sig: libc::c_int) {
    for s in &LIVE {
        let g = s.load(Ordering::SeqCst);
        if g > 0 {
            // SAFETY: killpg and the calls below are async-signal-safe.
            unsafe { libc::killpg(g, libc::SIGKILL) };
        }
    }
    // SAFETY: as above; the default disposition then ends the process as the signal would have.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}
