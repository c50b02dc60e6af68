//! How a command ended, read the same way by every transport: signals are no exit (never
//! success), output is capped, and what the harness noticed goes into stderr as a bracketed
//! note a verdict shows. Also the one conversion of a deadline into libssh2's milliseconds.

use std::time::Duration;

/// Most bytes kept of one command's stdout, and of its stderr. Probes print kilobytes; a
/// runaway (`yes`, a binary dumped by mistake) must not fill the harness's memory.
pub const OUTPUT_CAP: usize = 16 * 1024 * 1024;

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Exited with this status.
    Exit(i32),
    /// Killed by this signal (name without `SIG`, e.g. `KILL`).
    Signal(String),
    /// The remote `timeout` wrapper gave up on it.
    TimedOut,
    /// No exit status came back (channel or connection closed first); the text says why.
    Unknown(String),
}

impl Ended {
    /// The cassette's `exit`: only a real exit has one.
    pub fn exit(&self) -> Option<i32> {
        match self {
            Ended::Exit(x) => Some(*x),
            _ => None,
        }
    }

    /// The note for stderr, if the end is not a plain exit.
    pub fn note(&self) -> Option<String> {
        match self {
            Ended::Exit(_) | Ended::TimedOut => None,
            Ended::Signal(s) => Some(format!(
                "[clan-coord: killed by signal SIG{s}: no exit status]"
            )),
            Ended::Unknown(why) => Some(format!("[clan-coord: no exit status: {why}]")),
        }
    }
}

/// Reads a status a POSIX shell reported. A shell reports a signal death of what it ran as
/// 128+n and cannot tell it from `exit 128+n`: statuses 129..=192 (signals 1..=64) are read as
/// signals, never as an exit; none of the harness's probes exits there.
pub fn from_sh_status(status: i32) -> Ended {
    match status {
        129..=192 => Ended::Signal(signal_name(status - 128)),
        x => Ended::Exit(x),
    }
}

/// Reads a status as `timeout -k 2 <secs> sh -c ...` reports it through a POSIX shell.
///
/// `timeout` exits 124 when it stopped the command, and kills itself (and the command) with
/// SIGKILL when the command ignored that; it re-raises a signal that killed the command. So a
/// SIGKILL at or after the deadline is `timeout`'s own; other signals are the command's.
pub fn from_shell_status(status: i32, elapsed: Duration, deadline: Duration) -> Ended {
    if status == 124 {
        return Ended::TimedOut;
    }
    match from_sh_status(status) {
        Ended::Signal(name) => from_signal(name, elapsed, deadline),
        other => other,
    }
}

/// A signal death (named by the server, or decoded from a shell status).
pub fn from_signal(name: String, elapsed: Duration, deadline: Duration) -> Ended {
    if name == "KILL" && elapsed >= deadline {
        Ended::TimedOut
    } else {
        Ended::Signal(name)
    }
}

/// Linux's name for signal `n` (without `SIG`), as sshd and `kill -l` print it.
pub fn signal_name(n: i32) -> String {
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    usize::try_from(n)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| format!("{n}"), |s| (*s).to_string())
}

/// The note a truncated stream gets.
pub fn truncated_note(stream: &str) -> String {
    format!(
        "[clan-coord: {stream} truncated at {} MiB]",
        OUTPUT_CAP / (1024 * 1024)
    )
}

/// Appends `note` to `stderr` on a line of its own.
pub fn add_note(stderr: &mut String, note: &str) {
    if !stderr.is_empty() && !stderr.ends_with('\n') {
        stderr.push('\n');
    }
    stderr.push_str(note);
    stderr.push('\n');
}

/// Keeps the first [`OUTPUT_CAP`] bytes; true if it cut.
pub fn cap(bytes: &mut Vec<u8>) -> bool {
    let cut = bytes.len() > OUTPUT_CAP;
    bytes.truncate(OUTPUT_CAP);
    cut
}

/// A deadline as libssh2's `u32` milliseconds, where 0 means "wait forever": saturates at
/// `u32::MAX` (49 days) instead of wrapping (536870912 s had become 0, no timeout at all), and
/// gives at least 1 ms, since no `Duration` means forever (a zero one is refused upstream).
pub fn libssh2_timeout_ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libssh2_timeouts_saturate_and_are_never_zero() {
        assert_eq!(libssh2_timeout_ms(Duration::from_secs(3)), 3000);
        // 536870912 s = 2^39 ms: the old `as u32` made it 0, libssh2's "no timeout".
        assert_eq!(
            libssh2_timeout_ms(Duration::from_secs(536_870_912)),
            u32::MAX
        );
        assert_eq!(libssh2_timeout_ms(Duration::MAX), u32::MAX);
        assert_eq!(libssh2_timeout_ms(Duration::from_micros(300)), 1);
        assert_eq!(libssh2_timeout_ms(Duration::ZERO), 1);
        assert_eq!(
            libssh2_timeout_ms(Duration::from_millis(u64::from(u32::MAX))),
            u32::MAX
        );
    }

    #[test]
    fn shell_statuses_read_signals_as_no_exit() {
        let (s, d) = (Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(from_shell_status(0, s, d), Ended::Exit(0));
        assert_eq!(from_shell_status(3, s, d), Ended::Exit(3));
        assert_eq!(from_shell_status(255, s, d), Ended::Exit(255));
        assert_eq!(from_shell_status(124, s, d), Ended::TimedOut);
        assert_eq!(from_shell_status(137, s, d), Ended::Signal("KILL".into()));
        assert_eq!(from_shell_status(137, d, d), Ended::TimedOut);
        assert_eq!(from_shell_status(143, s, d), Ended::Signal("TERM".into()));
        assert_eq!(from_shell_status(153, s, d).exit(), None);
        assert_eq!(from_shell_status(192, s, d), Ended::Signal("64".into()));
        let note = from_shell_status(137, s, d).note().unwrap();
        assert!(note.contains("SIGKILL"), "{note}");
        let mut e = "err".to_string();
        add_note(&mut e, &note);
        assert_eq!(e, format!("err\n{note}\n"));
    }
}
