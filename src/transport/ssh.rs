//! SSH on ssh2: one session per machine, reused by every test; channel use serialised by a mutex;
//! every command has a deadline enforced remotely (`timeout`) and client-side (bounded reads);
//! one reconnect when the session has died; agent or key-file auth, never a password.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ssh2::{MethodType, Session};

use super::batch::{batch_script, unframe, BATCH_CAP};
use super::hostkey::{check_presented, HostTrust};
use super::outcome::{self, libssh2_timeout_ms, Ended, OUTPUT_CAP};
use super::{quote, Cmd, Output, Transport};
use crate::config::SshAuth;
use crate::error::TransportError;

/// Extra time the client grants after the remote deadline before giving up itself.
const GRACE: Duration = Duration::from_secs(3);
/// Longest wait for the socket between reads: how late the loop notices a deadline.
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
        // Bounds every blocking step of the session: banner, key exchange, auth, channel open.
        sess.set_timeout(libssh2_timeout_ms(t.connect_timeout));
        sess.method_pref(MethodType::HostKey, t.trust.host_key_methods())
            .map_err(|e| self.connect_err(start, e.to_string()))?;
        sess.handshake().map_err(|e| {
            let why = match sess.banner() {
                None => format!(
                    "no SSH banner within {:?}: something accepts TCP on the port but does not \
                     speak SSH, or the server is stalled",
                    t.connect_timeout
                ),
                Some(b) => format!(
                    "SSH handshake with {:?} did not finish within {:?}",
                    b.trim(),
                    t.connect_timeout
                ),
            };
            self.connect_err(start, format!("{why} ({e})"))
        })?;
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

    /// Runs one command on an open session, reading at most `cap` bytes of each stream.
    fn run_once(&self, sess: &Session, cmd: &Cmd, cap: usize) -> Result<Ran, RunError> {
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
        let session_timeout = libssh2_timeout_ms(t.connect_timeout);
        sess.set_timeout(session_timeout);
        let mut ch = sess
            .channel_session()
            .map_err(|e| RunError::Dead(chan_err(e)))?;
        ch.exec(&wrapped).map_err(|e| RunError::Dead(chan_err(e)))?;
        let (mut raw_out, mut raw_err) = (Vec::new(), Vec::new());
        let limit = deadline.saturating_add(GRACE);
        sess.set_blocking(false);
        let read = read_streams(
            sess,
            &mut ch,
            cap,
            (start, limit),
            [&mut raw_out, &mut raw_err],
        );
        sess.set_blocking(true);
        let truncated = match read {
            Ok(cut) => cut,
            Err(ReadEnd::Deadline) => {
                // The session is dropped after a timeout (it may be stalled): closing the channel
                // and freeing both must not wait out the connect timeout at each step.
                sess.set_timeout(libssh2_timeout_ms(SLICE));
                let _ = ch.close();
                return Err(RunError::Other(TransportError::Timeout {
                    machine: t.machine.clone(),
                    command: cmd.text().into(),
                    waited: start.elapsed(),
                }));
            }
            Err(ReadEnd::Failed(reason)) => {
                return Err(RunError::Other(TransportError::Channel {
                    machine: t.machine.clone(),
                    command: cmd.text().into(),
                    reason,
                }))
            }
        };
        sess.set_timeout(session_timeout);
        let ended = match truncated {
            // Stop reading and close our side: the remote writer gets EPIPE instead of waiting
            // forever on a full window. Whatever status comes after that is not the command's.
            Some(_) => {
                let _ = ch.close();
                let _ = ch.wait_close();
                Ended::Unknown("output over the cap, channel closed".into())
            }
            None => channel_ended(&mut ch, start.elapsed(), deadline),
        };
        let duration = start.elapsed();
        if ended == Ended::TimedOut {
            return Err(RunError::Other(TransportError::Timeout {
                machine: t.machine.clone(),
                command: cmd.text().into(),
                waited: duration,
            }));
        }
        let mut stderr = String::from_utf8_lossy(&raw_err).into_owned();
        match truncated {
            Some(stream) => outcome::add_note(&mut stderr, &outcome::truncated_note(stream)),
            None => {
                if let Some(note) = ended.note() {
                    outcome::add_note(&mut stderr, &note);
                }
            }
        }
        let out = Output {
            stdout: String::from_utf8_lossy(&raw_out).into_owned(),
            stderr,
            exit: ended.exit(),
            duration,
        };
        tracing::debug!(machine = %t.machine, command = %cmd, exit = ?out.exit, ?duration, stdout = %crate::redact::excerpt(&out.stdout, 300), stderr = %crate::redact::excerpt(&out.stderr, 300), "ran");
        Ok(Ran {
            out,
            raw_stdout: raw_out,
        })
    }
}

/// How the command on a drained channel ended. libssh2 reports exit status 0 when none
/// came, so a signal (`exit-signal`) or a channel that did not close is read first.
fn channel_ended(ch: &mut ssh2::Channel, elapsed: Duration, deadline: Duration) -> Ended {
    if let Err(e) = ch.wait_close() {
        return Ended::Unknown(format!("the channel did not close: {e}"));
    }
    match ch.exit_signal().ok().and_then(|s| s.exit_signal) {
        Some(sig) => outcome::from_signal(sig, elapsed, deadline),
        None => match ch.exit_status() {
            Ok(x) => outcome::from_shell_status(x, elapsed, deadline),
            Err(e) => Ended::Unknown(e.to_string()),
        },
    }
}

/// Why [`read_streams`] stopped early.
enum ReadEnd {
    /// The client-side deadline passed.
    Deadline,
    /// The channel failed.
    Failed(String),
}

/// Reads stdout and stderr until the remote's EOF, in non-blocking mode: both streams are read
/// until neither has data, then the socket is polled for at most [`SLICE`] (a blocking read of
/// an idle stderr had held every 32 KiB of stdout for a whole slice). Stops at `cap` bytes of
/// either stream and says which; fails at the deadline `limit` after `start`.
fn read_streams(
    sess: &Session,
    ch: &mut ssh2::Channel,
    cap: usize,
    (start, limit): (Instant, Duration),
    [out, err]: [&mut Vec<u8>; 2],
) -> Result<Option<&'static str>, ReadEnd> {
    let mut buf = [0u8; 32 * 1024];
    loop {
        if start.elapsed() > limit {
            return Err(ReadEnd::Deadline);
        }
        let mut progressed = false;
        for (stream, sink) in [("stdout", &mut *out), ("stderr", &mut *err)] {
            let r = if stream == "stdout" {
                ch.read(&mut buf)
            } else {
                ch.stderr().read(&mut buf)
            };
            match r {
                Ok(0) => {}
                Ok(n) => {
                    let room = cap.saturating_sub(sink.len());
                    sink.extend_from_slice(&buf[..n.min(room)]);
                    progressed = true;
                    if n > room {
                        return Ok(Some(stream));
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                    ) => {}
                Err(e) => return Err(ReadEnd::Failed(e.to_string())),
            }
        }
        if progressed {
            continue;
        }
        if ch.eof() {
            return Ok(None);
        }
        wait_socket(sess);
    }
}

/// Waits up to [`SLICE`] for the session's socket to be ready the way libssh2 last needed it.
fn wait_socket(sess: &Session) {
    let dirs = sess.block_directions();
    let mut events = libc::POLLIN;
    if matches!(
        dirs,
        ssh2::BlockDirections::Outbound | ssh2::BlockDirections::Both
    ) {
        events |= libc::POLLOUT;
    }
    let mut fd = libc::pollfd {
        fd: sess.as_raw_fd(),
        events,
        revents: 0,
    };
    let ms = libc::c_int::try_from(SLICE.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd for the session's socket, which outlives this call; poll only
    // waits, a failure or timeout just ends the wait.
    unsafe { libc::poll(&mut fd, 1, ms) };
}

/// One command's result: its Output, and stdout's bytes as they came (batch frames count bytes).
struct Ran {
    out: Output,
    raw_stdout: Vec<u8>,
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
        match self.run_capped(&Cmd::assembled(batch, Some(limit)), BATCH_CAP) {
            Ok(Ran { out, raw_stdout }) => match unframe(&raw_stdout, cmds.len()) {
                Some(frames) => frames
                    .into_iter()
                    .zip(cmds)
                    .map(|(frame, cmd)| {
                        let deadline = cmd.deadline().unwrap_or(self.target.command_timeout);
                        let (ended, Output { stdout, stderr, exit, .. }) =
                            frame.output(started.elapsed(), deadline);
                        if ended == Ended::TimedOut {
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
        self.run_capped(cmd, OUTPUT_CAP).map(|r| r.out)
    }
}

impl SshTransport {
    /// [`Transport::run`] keeping at most `cap` bytes per stream (a batch reply gets more).
    fn run_capped(&self, cmd: &Cmd, cap: usize) -> Result<Ran, TransportError> {
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
            match self.run_once(sess, cmd, cap) {
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

/// Path of the identity file, if key-file auth is configured (for the record).
pub fn identity_path(auth: &SshAuth) -> Option<PathBuf> {
    match auth {
        SshAuth::IdentityFile(p) => Some(p.clone()),
        SshAuth::Agent => None,
    }
}
