//! SSH on ssh2: one session per machine, reused by every test; channel use serialised by a mutex;
//! every command has a deadline enforced remotely (`timeout`) and client-side (bounded reads);
//! one reconnect when the session has died; agent or key-file auth, never a password.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ssh2::{MethodType, Session};

use super::hostkey::{check_presented, HostTrust};
use super::{quote, Cmd, Output, Transport};
use crate::config::SshAuth;
use crate::error::TransportError;

/// Extra time the client grants after the remote deadline before giving up itself.
const GRACE: Duration = Duration::from_secs(3);
/// Length of one blocking read: bounds how long a silent stream can hold the loop.
const SLICE: Duration = Duration::from_millis(50);

/// How to reach and trust one machine.
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// Machine name.
    pub machine: String,
    /// Address.
    pub host: IpAddr,
    /// Port.
    pub port: u16,
    /// Remote user.
    pub user: String,
    /// Authentication.
    pub auth: SshAuth,
    /// Connect + handshake limit.
    pub connect_timeout: Duration,
    /// Default command deadline.
    pub command_timeout: Duration,
    /// Host key trust.
    pub trust: HostTrust,
    /// Network namespace to open the TCP connection in (the lab's workstation), if any.
    pub netns: Option<String>,
}

/// A live SSH connection to one machine, opened lazily.
pub struct SshTransport {
    target: SshTarget,
    session: Mutex<Option<Session>>,
    /// Sessions opened so far (the first one is not a reconnect).
    connects: std::sync::atomic::AtomicU64,
    /// After a failed connect: when the next attempt may go out, and the current backoff.
    backoff: Mutex<Option<(Instant, Duration)>>,
}

/// Longest wait between reconnect attempts to a machine that is down.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

impl SshTransport {
    /// A transport that connects on first use.
    pub fn new(target: SshTarget) -> SshTransport {
        SshTransport {
            target,
            session: Mutex::new(None),
            connects: std::sync::atomic::AtomicU64::new(0),
            backoff: Mutex::new(None),
        }
    }

    fn target_str(&self) -> String {
        SocketAddr::new(self.target.host, self.target.port).to_string()
    }

    fn connect_err(&self, start: Instant, reason: impl Into<String>) -> TransportError {
        TransportError::Connect {
            machine: self.target.machine.clone(),
            target: self.target_str(),
            waited: start.elapsed(),
            reason: reason.into(),
        }
    }

    /// Opens and authenticates a session (host key checked before any credential is sent).
    pub fn connect(&self) -> Result<Session, TransportError> {
        let t = &self.target;
        let start = Instant::now();
        let addr = SocketAddr::new(t.host, t.port);
        let tcp = match &t.netns {
            Some(ns) => super::netns::connect_in(ns, addr, t.connect_timeout),
            None => TcpStream::connect_timeout(&addr, t.connect_timeout),
        }
        .map_err(|e| self.connect_err(start, e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let mut sess = Session::new().map_err(|e| self.connect_err(start, e.to_string()))?;
        sess.set_tcp_stream(tcp);
        sess.set_timeout(t.connect_timeout.as_millis() as u32);
        sess.method_pref(MethodType::HostKey, t.trust.host_key_methods())
            .map_err(|e| self.connect_err(start, e.to_string()))?;
        sess.handshake()
            .map_err(|e| self.connect_err(start, format!("SSH handshake: {e}")))?;
        let (blob, _) = sess
            .host_key()
            .ok_or_else(|| self.connect_err(start, "server presented no host key"))?;
        check_presented(
            &t.machine,
            &self.target_str(),
            &t.host.to_string(),
            t.port,
            &t.trust,
            blob,
        )?;
        let auth_err = |method: &str, e: ssh2::Error| TransportError::Auth {
            machine: t.machine.clone(),
            user: t.user.clone(),
            method: method.into(),
            reason: e.to_string(),
        };
        match &t.auth {
            SshAuth::Agent => sess
                .userauth_agent(&t.user)
                .map_err(|e| auth_err("ssh-agent", e))?,
            SshAuth::IdentityFile(p) => sess
                .userauth_pubkey_file(&t.user, None, p, None)
                .map_err(|e| auth_err(&format!("identity file {}", p.display()), e))?,
        }
        if !sess.authenticated() {
            return Err(TransportError::Auth {
                machine: t.machine.clone(),
                user: t.user.clone(),
                method: "publickey".into(),
                reason: "server did not accept any key".into(),
            });
        }
        sess.set_keepalive(true, 30);
        tracing::debug!(machine = %t.machine, target = %self.target_str(), elapsed = ?start.elapsed(), "connected");
        Ok(sess)
    }

    fn run_once(&self, sess: &Session, cmd: &Cmd) -> Result<Output, RunError> {
        let t = &self.target;
        let deadline = cmd.deadline().unwrap_or(t.command_timeout);
        let secs = deadline.as_secs().max(1);
        let wrapped = format!("timeout -k 2 {secs} sh -c {}", quote(cmd.text()));
        let start = Instant::now();
        let chan_err = |e: ssh2::Error| TransportError::Channel {
            machine: t.machine.clone(),
            command: cmd.text().into(),
            reason: e.to_string(),
        };
        sess.set_timeout(t.connect_timeout.as_millis() as u32);
        let mut ch = sess
            .channel_session()
            .map_err(|e| RunError::Dead(chan_err(e)))?;
        ch.exec(&wrapped).map_err(|e| RunError::Dead(chan_err(e)))?;
        sess.set_timeout(SLICE.as_millis() as u32);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut buf = [0u8; 32 * 1024];
        let limit = deadline + GRACE;
        loop {
            if start.elapsed() > limit {
                let _ = ch.close();
                return Err(RunError::Other(TransportError::Timeout {
                    machine: t.machine.clone(),
                    command: cmd.text().into(),
                    waited: start.elapsed(),
                }));
            }
            let mut progressed = false;
            for (stream, sink) in [(0, &mut out), (1, &mut err)] {
                let r = if stream == 0 {
                    ch.read(&mut buf)
                } else {
                    ch.stderr().read(&mut buf)
                };
                match r {
                    Ok(0) => {}
                    Ok(n) => {
                        sink.extend_from_slice(&buf[..n]);
                        progressed = true;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                        ) => {}
                    Err(e) => {
                        return Err(RunError::Other(TransportError::Channel {
                            machine: t.machine.clone(),
                            command: cmd.text().into(),
                            reason: e.to_string(),
                        }))
                    }
                }
            }
            if ch.eof() && !progressed {
                break;
            }
        }
        sess.set_timeout(t.connect_timeout.as_millis() as u32);
        let _ = ch.wait_close();
        let exit = ch.exit_status().ok();
        let duration = start.elapsed();
        if exit == Some(124) || exit == Some(137) {
            return Err(RunError::Other(TransportError::Timeout {
                machine: t.machine.clone(),
                command: cmd.text().into(),
                waited: duration,
            }));
        }
        let out = Output {
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
            exit,
            duration,
        };
        tracing::debug!(machine = %t.machine, command = %cmd, exit = ?out.exit, ?duration, stdout = %crate::redact::excerpt(&out.stdout, 300), stderr = %crate::redact::excerpt(&out.stderr, 300), "ran");
        Ok(out)
    }
}

impl SshTransport {
    /// Connects unless a recent failure asks to wait; failures double the wait (1 s up to
    /// 60 s), a success clears it. Keeps a monitor from hammering a machine that is down.
    fn connect_with_backoff(&self) -> Result<Session, TransportError> {
        let mut b = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((next, wait)) = *b {
            if Instant::now() < next {
                return Err(TransportError::Connect {
                    machine: self.target.machine.clone(),
                    target: self.target_str(),
                    waited: Duration::ZERO,
                    reason: format!(
                        "backing off after a failed connect (next attempt within {wait:?})"
                    ),
                });
            }
        }
        match self.connect() {
            Ok(s) => {
                *b = None;
                self.connects
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(s)
            }
            Err(e) => {
                let wait = b.map_or(Duration::from_secs(1), |(_, w)| (w * 2).min(MAX_BACKOFF));
                *b = Some((Instant::now() + wait, wait));
                Err(e)
            }
        }
    }
}

enum RunError {
    /// The session could not open a channel: reconnect once.
    Dead(TransportError),
    Other(TransportError),
}

impl Transport for SshTransport {
    fn name(&self) -> &str {
        &self.target.machine
    }

    fn keepalive(&self) {
        // Only when idle: a busy session is alive by definition.
        if let Ok(guard) = self.session.try_lock() {
            if let Some(sess) = guard.as_ref() {
                let _ = sess.keepalive_send();
            }
        }
    }

    fn run_many(&self, cmds: &[Cmd]) -> Vec<Result<Output, TransportError>> {
        if cmds.len() < 2 {
            return cmds.iter().map(|c| self.run(c)).collect();
        }
        let (batch, limit) = batch_script(cmds, self.target.command_timeout);
        let started = Instant::now();
        match self.run(&Cmd::assembled(batch, Some(limit))) {
            Ok(out) => match unframe(&out.stdout, cmds.len()) {
                Some(frames) => frames
                    .into_iter()
                    .zip(cmds)
                    .map(|((exit, stdout, stderr), cmd)| {
                        if exit == Some(124) || exit == Some(137) {
                            return Err(TransportError::Timeout {
                                machine: self.target.machine.clone(),
                                command: cmd.text().into(),
                                waited: started.elapsed(),
                            });
                        }
                        let o = Output { stdout, stderr, exit, duration: out.duration };
                        tracing::debug!(machine = %self.target.machine, command = %cmd, exit = ?o.exit, stdout = %crate::redact::excerpt(&o.stdout, 300), stderr = %crate::redact::excerpt(&o.stderr, 300), "ran (batched)");
                        Ok(o)
                    })
                    .collect(),
                // Could not run as a batch (no mktemp, odd shell): one by one, as before.
                None => {
                    tracing::debug!(machine = %self.target.machine, stderr = %crate::redact::excerpt(&out.stderr, 200), "batch unreadable; running one by one");
                    cmds.iter().map(|c| self.run(c)).collect()
                }
            },
            Err(e) => {
                let msg = e.to_string();
                cmds.iter()
                    .map(|c| {
                        Err(TransportError::Channel {
                            machine: self.target.machine.clone(),
                            command: c.text().into(),
                            reason: format!("batch failed: {msg}"),
                        })
                    })
                    .collect()
            }
        }
    }

    fn reconnects(&self) -> u64 {
        self.connects
            .load(std::sync::atomic::Ordering::SeqCst)
            .saturating_sub(1)
    }

    fn run(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        let mut guard = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let mut reconnected = false;
        loop {
            if guard.is_none() {
                *guard = Some(self.connect_with_backoff()?);
                reconnected = true;
            }
            let sess = guard
                .as_ref()
                .ok_or_else(|| TransportError::UnknownMachine {
                    machine: self.target.machine.clone(),
                })?;
            match self.run_once(sess, cmd) {
                Ok(o) => return Ok(o),
                Err(RunError::Dead(e)) if !reconnected => {
                    tracing::warn!(machine = %self.target.machine, error = %e, "session died; reconnecting once");
                    *guard = None;
                }
                Err(RunError::Dead(e)) | Err(RunError::Other(e)) => {
                    if matches!(e, TransportError::Timeout { .. }) {
                        *guard = None; // the channel may still be busy: start clean next time
                    }
                    return Err(e);
                }
            }
        }
    }
}

/// One remote script running `cmds` concurrently, each under its own `timeout`. Returns the script
/// and its overall deadline (the slowest lane's or longest command's, plus grace).
///
/// The reply is `@@ <exit>…` (one per command, `-` if unknown), then `wc -c` of each command's
/// stdout and stderr file (POSIX: one `<size> <path>` line each, in argument order, then a total),
/// then all those files' bytes in order. The framing costs four processes per batch whatever its
/// size (`mktemp`, `wc`, `cat`, `rm`): on a 16-machine lab, framing each command with its own
/// `cat` and `wc` had been 40% of all processes started.
fn batch_script(cmds: &[Cmd], default: Duration) -> (String, Duration) {
    let mut s = String::from(
        "d=$(mktemp -d /tmp/clan-coord.XXXXXX) || exit 125; trap 'rm -rf \"$d\"' EXIT INT TERM\n",
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
            lane.1 += dl;
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
    (s, longest + Duration::from_secs(3))
}

/// How many heavy commands (SSH hops) one machine runs at once in a batch.
const HEAVY_LANES: usize = 4;

/// Splits a batch's reply (see [`batch_script`]); None unless it holds exactly `n` exits, `2n`
/// sizes and their total, and as many bytes as the sizes add up to.
fn unframe(out: &str, n: usize) -> Option<Vec<(Option<i32>, String, String)>> {
    let mut lines = out.splitn(2 * n + 3, '\n');
    let exits: Vec<Option<i32>> = lines
        .next()?
        .strip_prefix("@@")?
        .split_whitespace()
        .map(|x| x.parse().ok())
        .collect();
    let size = |line: Option<&str>| line?.split_whitespace().next()?.parse::<usize>().ok();
    let sizes = (0..2 * n)
        .map(|_| size(lines.next()))
        .collect::<Option<Vec<usize>>>()?;
    let total = sizes.iter().try_fold(0usize, |a, &x| a.checked_add(x))?;
    if size(lines.next()) != Some(total) {
        return None; // wc's `total` line
    }
    let body = lines.next().unwrap_or_default().as_bytes();
    if exits.len() != n || total != body.len() {
        return None;
    }
    let mut pos = 0;
    let mut take = |len: usize| {
        let text = String::from_utf8_lossy(&body[pos..pos + len]).into_owned();
        pos += len;
        text
    };
    Some(
        exits
            .into_iter()
            .zip(sizes.chunks(2))
            .map(|(exit, oe)| (exit, take(oe[0]), take(oe[1])))
            .collect(),
    )
}

/// Path of the identity file, if key-file auth is configured (for the record).
pub fn identity_path(auth: &SshAuth) -> Option<PathBuf> {
    match auth {
        SshAuth::IdentityFile(p) => Some(p.clone()),
        SshAuth::Agent => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_script_output_unframes_under_a_real_sh() {
        // The script and its parser agree, under the local POSIX sh: light and heavy commands,
        // exit codes, empty and multi-line outputs, quoting.
        let cmds = [
            Cmd::new("printf").arg("a b'c\"$HOME"),
            Cmd::sh("echo out; echo err >&2; exit 3"),
            Cmd::new("true").heavy(),
            Cmd::sh("printf 'x\\ny\\n'; exit 7").heavy(),
        ];
        let (script, _) = batch_script(&cmds, Duration::from_secs(5));
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        let f = unframe(&String::from_utf8(out.stdout).unwrap(), cmds.len()).unwrap();
        assert_eq!(f[0], (Some(0), "a b'c\"$HOME".into(), String::new()));
        assert_eq!(f[1], (Some(3), "out\n".into(), "err\n".into()));
        assert_eq!(f[2], (Some(0), String::new(), String::new()));
        assert_eq!(f[3], (Some(7), "x\ny\n".into(), String::new()));
    }

    #[test]
    fn frames_round_trip_and_reject_garbage() {
        // GNU wc pads the sizes; BSD indents them.
        let out =
            "@@ 0 1\n3 /tmp/d/0.o\n0 /tmp/d/0.e\n0 /tmp/d/1.o\n4 /tmp/d/1.e\n7 total\nabcerr\n";
        let f = unframe(out, 2).unwrap();
        assert_eq!(f[0], (Some(0), "abc".into(), String::new()));
        assert_eq!(f[1], (Some(1), String::new(), "err\n".into()));
        assert!(unframe(out, 3).is_none());
        let one = |sizes: &str, body: &str| unframe(&format!("@@ 0\n{sizes}{body}"), 1);
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
        assert!(unframe("@@ -\n2 a\n0 b\n2 total\nab", 1).unwrap()[0]
            .0
            .is_none());
        assert!(unframe("", 1).is_none());
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
}
