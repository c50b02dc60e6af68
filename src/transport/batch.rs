//! The batch runner: one remote script runs many independent commands concurrently and frames
//! each one's exit, stdout and stderr in its reply, so a machine's probes cost one round trip.

use std::time::Duration;

use super::outcome::{self, Ended, OUTPUT_CAP};
use super::{quote, Cmd, Output};

/// How many heavy commands (SSH hops) one machine runs at once in a batch.
const HEAVY_LANES: usize = 4;

/// Most bytes read of a whole batch reply. Each command's files are capped remotely at
/// [`OUTPUT_CAP`]; a reply beyond this is cut, its frame is broken, and the commands run one
/// by one, each under its own cap.
pub const BATCH_CAP: usize = 4 * OUTPUT_CAP;

/// One remote script running `cmds` concurrently, each under its own `timeout`. Returns the script
/// and its overall deadline (the slowest lane's or longest command's, plus grace).
///
/// The reply is `@@ <exit>…` (one per command, `-` if unknown), then `wc -c` of each command's
/// stdout and stderr file (POSIX: one `<size> <path>` line each, in argument order, then a total),
/// then all those files' bytes in order. The framing costs four processes per batch whatever its
/// size (`mktemp`, `wc`, `cat`, `rm`): on a 16-machine lab, framing each command with its own
/// `cat` and `wc` had been 40% of all processes started.
///
/// `ulimit -f` (512-byte blocks in every POSIX shell, bash as `sh` included) caps each output
/// file at [`OUTPUT_CAP`]: a runaway writer is stopped by SIGXFSZ instead of filling the
/// machine's /tmp, and its output is reported truncated.
pub fn batch_script(cmds: &[Cmd], default: Duration) -> (String, Duration) {
    let mut s = format!(
        "d=$(mktemp -d /tmp/clan-coord.XXXXXX) || exit 125; trap 'rm -rf \"$d\"' EXIT INT TERM\n\
         ulimit -f {} 2>/dev/null\n",
        OUTPUT_CAP / 512
    );
    let one = |i: usize, c: &Cmd| {
        format!(
            "timeout -k 2 {} sh -c {} >\"$d/{i}.o\" 2>\"$d/{i}.e\" </dev/null",
            c.deadline().unwrap_or(default).as_secs().max(1),
            quote(c.text())
        )
    };
    // Light commands all start at once, their exits collected by `wait <pid>`; heavy ones share
    // HEAVY_LANES lanes, each lane a subshell running its commands one after another and
    // writing each exit to a file.
    let mut light = Duration::ZERO;
    let mut lanes: Vec<(Vec<String>, Duration)> = vec![(Vec::new(), Duration::ZERO); HEAVY_LANES];
    let mut next_lane = 0;
    let mut collect = String::new();
    for (i, c) in cmds.iter().enumerate() {
        let dl = c.deadline().unwrap_or(default);
        if c.is_heavy() {
            let lane = &mut lanes[next_lane % HEAVY_LANES];
            next_lane += 1;
            lane.0.push(format!("{}; echo $? >\"$d/{i}.x\"", one(i, c)));
            lane.1 = lane.1.saturating_add(dl);
        } else {
            light = light.max(dl);
            s.push_str(&format!("{} & p{i}=$!\n", one(i, c)));
            collect.push_str(&format!("wait $p{i}; x{i}=$?\n"));
        }
    }
    for (steps, _) in lanes.iter().filter(|(v, _)| !v.is_empty()) {
        s.push_str(&format!("( {} ) &\n", steps.join("; ")));
    }
    // `wait <pid>` before the plain `wait`: shells forget the statuses a plain `wait` reaps.
    s.push_str(&collect);
    s.push_str("wait\n");
    for (i, c) in cmds.iter().enumerate() {
        if c.is_heavy() {
            s.push_str(&format!("x{i}=-; read -r x{i} <\"$d/{i}.x\"\n"));
        }
    }
    let files: String = (0..cmds.len())
        .map(|i| format!(" \"$d/{i}.o\" \"$d/{i}.e\""))
        .collect();
    let exits: String = (0..cmds.len())
        .map(|i| format!(" \"${{x{i}:--}}\""))
        .collect();
    s.push_str(&format!("echo @@{exits}\nwc -c{files}\ncat{files}\n"));
    let longest = lanes.iter().map(|(_, d)| *d).fold(light, Duration::max);
    (s, longest.saturating_add(Duration::from_secs(3)))
}

/// One command's part of a batch reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The status the batch shell recorded (None: `-`, none recorded).
    pub status: Option<i32>,
    /// Raw stdout.
    pub stdout: Vec<u8>,
    /// Raw stderr.
    pub stderr: Vec<u8>,
}

impl Frame {
    /// The command's [`Output`]: each stream decoded on its own (a stray non-UTF-8 byte costs
    /// one replacement character, not the batch), capped, with notes for a signal death, a
    /// missing status or a cut stream. `elapsed` is the batch's, `deadline` the command's.
    pub fn output(self, elapsed: Duration, deadline: Duration) -> (Ended, Output) {
        let ended = match self.status {
            Some(x) => outcome::from_shell_status(x, elapsed, deadline),
            None => Ended::Unknown("the batch runner recorded none".into()),
        };
        let (mut out, mut err) = (self.stdout, self.stderr);
        let cut = [
            ("stdout", outcome::cap(&mut out)),
            ("stderr", outcome::cap(&mut err)),
        ];
        let mut stderr = String::from_utf8_lossy(&err).into_owned();
        let mut exit = ended.exit();
        if let Some(note) = ended.note() {
            outcome::add_note(&mut stderr, &note);
        }
        // A file at the cap was stopped by `ulimit -f` (or the client cut it): not a full answer.
        let full = |b: &[u8]| b.len() >= OUTPUT_CAP;
        for (stream, at_cap) in [("stdout", full(&out)), ("stderr", full(&err))] {
            if at_cap || cut.iter().any(|(s, c)| *s == stream && *c) {
                outcome::add_note(&mut stderr, &outcome::truncated_note(stream));
                exit = None;
            }
        }
        let output = Output {
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr,
            exit,
            duration: elapsed,
        };
        (ended, output)
    }
}

/// Splits a batch's reply (see [`batch_script`]); None unless it holds exactly `n` exits, `2n`
/// sizes and their total, and as many bytes as the sizes add up to. Works on bytes: the
/// commands' outputs need not be UTF-8.
pub fn unframe(out: &[u8], n: usize) -> Option<Vec<Frame>> {
    let mut lines = out.splitn(2 * n + 3, |&b| b == b'\n');
    fn text(line: Option<&[u8]>) -> Option<&str> {
        std::str::from_utf8(line?).ok()
    }
    let exits: Vec<Option<i32>> = text(lines.next())?
        .strip_prefix("@@")?
        .split_whitespace()
        .map(|x| x.parse().ok())
        .collect();
    let size = |line: Option<&[u8]>| text(line)?.split_whitespace().next()?.parse::<usize>().ok();
    let sizes = (0..2 * n)
        .map(|_| size(lines.next()))
        .collect::<Option<Vec<usize>>>()?;
    let total = sizes.iter().try_fold(0usize, |a, &x| a.checked_add(x))?;
    if size(lines.next()) != Some(total) {
        return None; // wc's `total` line
    }
    let body = lines.next().unwrap_or_default();
    if exits.len() != n || total != body.len() {
        return None;
    }
    let mut pos = 0;
    let mut take = |len: usize| {
        let bytes = body[pos..pos + len].to_vec();
        pos += len;
        bytes
    };
    Some(
        exits
            .into_iter()
            .zip(sizes.chunks(2))
            .map(|(status, oe)| Frame {
                status,
                stdout: take(oe[0]),
                stderr: take(oe[1]),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(status: Option<i32>, stdout: &str, stderr: &str) -> Frame {
        Frame {
            status,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn batch_script_output_unframes_under_a_real_sh() {
        // The script and its parser agree, under the local POSIX sh: light and heavy commands,
        // exit codes, empty and multi-line outputs, quoting, a non-UTF-8 byte, a signal.
        let cmds = [
            Cmd::new("printf").arg("a b'c\"$HOME"),
            Cmd::sh("echo out; echo err >&2; exit 3"),
            Cmd::new("true").heavy(),
            Cmd::sh("printf 'x\\ny\\n'; exit 7").heavy(),
            Cmd::sh("printf 'a\\377b'"),
            Cmd::sh("kill -9 $$"),
        ];
        let (script, _) = batch_script(&cmds, Duration::from_secs(5));
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        let f = unframe(&out.stdout, cmds.len()).unwrap();
        assert_eq!(f[0], frame(Some(0), "a b'c\"$HOME", ""));
        assert_eq!(f[1], frame(Some(3), "out\n", "err\n"));
        assert_eq!(f[2], frame(Some(0), "", ""));
        assert_eq!(f[3], frame(Some(7), "x\ny\n", ""));
        assert_eq!(f[4].stdout, b"a\xffb");
        let (s, d) = (Duration::from_secs(1), Duration::from_secs(5));
        assert_eq!(f[4].clone().output(s, d).1.stdout, "a\u{fffd}b");
        let (ended, o) = f[5].clone().output(s, d);
        assert_eq!((ended, o.exit), (Ended::Signal("KILL".into()), None));
        assert!(
            o.stderr.contains("killed by signal SIGKILL"),
            "{}",
            o.stderr
        );
    }

    #[test]
    fn frames_round_trip_and_reject_garbage() {
        // GNU wc pads the sizes; BSD indents them.
        let out =
            "@@ 0 1\n3 /tmp/d/0.o\n0 /tmp/d/0.e\n0 /tmp/d/1.o\n4 /tmp/d/1.e\n7 total\nabcerr\n";
        let f = unframe(out.as_bytes(), 2).unwrap();
        assert_eq!(f[0], frame(Some(0), "abc", ""));
        assert_eq!(f[1], frame(Some(1), "", "err\n"));
        assert!(unframe(out.as_bytes(), 3).is_none());
        let one = |sizes: &str, body: &str| unframe(format!("@@ 0\n{sizes}{body}").as_bytes(), 1);
        assert!(one("      2 a\n      0 b\n      2 total\n", "ab").is_some());
        assert!(one("99 a\n0 b\n99 total\n", "abc").is_none());
        assert!(
            one("2 a\n0 b\n3 total\n", "ab").is_none(),
            "total must add up"
        );
        assert!(
            one("1 a\n0 b\n1 total\n", "ab").is_none(),
            "no trailing bytes"
        );
        let none = unframe(b"@@ -\n2 a\n0 b\n2 total\nab", 1)
            .unwrap()
            .remove(0);
        assert!(none.status.is_none());
        let o = none.output(Duration::ZERO, Duration::from_secs(1)).1;
        assert!(
            o.exit.is_none() && o.stderr.contains("no exit status"),
            "{o:?}"
        );
        assert!(unframe(b"", 1).is_none());
        // Bytes that are not UTF-8 are counted as bytes: the frame stands.
        let f = unframe(b"@@ 0\n2 a\n0 b\n2 total\n\xff\xfe", 1).unwrap();
        assert_eq!(f[0].stdout, b"\xff\xfe");
        let (script, limit) = batch_script(
            &[
                Cmd::new("true"),
                Cmd::new("sleep").arg("1").timeout(Duration::from_secs(9)),
            ],
            Duration::from_secs(5),
        );
        assert!(script.contains("timeout -k 2 9 sh -c"), "{script}");
        assert_eq!(limit, Duration::from_secs(12));
    }

    #[test]
    fn a_stream_at_the_cap_is_reported_truncated() {
        let big = Frame {
            status: Some(0),
            stdout: vec![b'y'; OUTPUT_CAP + 10],
            stderr: Vec::new(),
        };
        let o = big.output(Duration::ZERO, Duration::from_secs(1)).1;
        assert_eq!(o.stdout.len(), OUTPUT_CAP);
        assert_eq!(o.exit, None);
        assert!(
            o.stderr.contains("stdout truncated at 16 MiB"),
            "{}",
            o.stderr
        );
    }
}
