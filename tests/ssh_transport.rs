//! The ssh2 transport against Debian's real OpenSSH sshd on loopback, started by this test with
//! keys, a CA and a host certificate made by ssh-keygen. Skips with a visible reason when sshd is
//! missing or the test is not root (sshd must switch users); CI installs openssh-server.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod skip;

use clan_coord_lab::keys;
use clan_coord_lab::sshd::SshdConfig;
use clan_coordination::config::SshAuth;
use clan_coordination::error::TransportError;
use clan_coordination::transport::hostkey::{verify_certificate, HostTrust};
use clan_coordination::transport::ssh::{SshTarget, SshTransport};
use clan_coordination::transport::{Cmd, Transport};
use ssh_key::{Certificate, PublicKey};

const SSHD: &str = "/usr/sbin/sshd";
const DOMAIN: &str = "clan";

/// One sshd on 127.0.0.1 with its own keys; killed on drop.
struct Loopback {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
    _guard: Guard,
}

/// The test that freezes an sshd's session processes (SIGSTOP) runs alone: beside it, a reused
/// session's command in another test timed out now and then (3 of 7 runs of this binary on
/// 2026-11-30, never with it skipped or run alone, never under --nocapture; cause not found).
static FREEZE: std::sync::RwLock<()> = std::sync::RwLock::new(());

#[allow(dead_code)] // held for its lifetime only
enum Guard {
    Shared(std::sync::RwLockReadGuard<'static, ()>),
    Exclusive(std::sync::RwLockWriteGuard<'static, ()>),
}

impl Drop for Loopback {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Loopback {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn host_key(&self) -> PublicKey {
        PublicKey::read_openssh_file(self.path("host_ed25519.pub")).unwrap()
    }
    fn target(&self, trust: HostTrust) -> SshTarget {
        SshTarget {
            machine: "loop-vm".into(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: self.port,
            user: "root".into(),
            auth: SshAuth::IdentityFile(self.path("user_ed25519")),
            connect_timeout: Duration::from_secs(3),
            command_timeout: Duration::from_secs(10),
            trust,
            netns: None,
        }
    }
    fn clan_trust(&self) -> HostTrust {
        HostTrust::Clan {
            key: self.host_key(),
            source: self.path("host_ed25519.pub"),
        }
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
    }
}

/// Why the test cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    if !Path::new(SSHD).exists() {
        return Some(format!("{SSHD} not found (apt-get install openssh-server)"));
    }
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_default();
    if uid != "0" {
        return Some("not root: sshd needs root to accept logins as root".into());
    }
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start() -> Option<Loopback> {
    start_with(Guard::Shared(
        FREEZE.read().unwrap_or_else(|p| p.into_inner()),
    ))
}

/// [`start`] for a test that freezes sshd processes: no other loopback test runs meanwhile.
fn start_alone() -> Option<Loopback> {
    start_with(Guard::Exclusive(
        FREEZE.write().unwrap_or_else(|p| p.into_inner()),
    ))
}

fn start_with(guard: Guard) -> Option<Loopback> {
    if let Some(why) = skip_reason() {
        skip::skip(&why);
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keys::ed25519(&d.join("ca"), "loopback test CA").unwrap();
    let host_pub = keys::ed25519(&d.join("host_ed25519"), "loop-vm").unwrap();
    let cert = keys::sign_host(
        &d.join("ca"),
        &host_pub,
        "loop-vm",
        &format!("loop-vm.{DOMAIN}"),
    )
    .unwrap();
    let user_pub = keys::ed25519(&d.join("user_ed25519"), "test workstation").unwrap();
    std::fs::copy(&user_pub, d.join("authorized_keys")).unwrap();
    // Privilege separation directory Debian's sshd insists on.
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = free_port();
    let cfg = SshdConfig {
        listen: vec![format!("127.0.0.1:{port}").parse().unwrap()],
        host_key: d.join("host_ed25519"),
        host_cert: Some(cert),
        authorized_keys: d.join("authorized_keys").display().to_string(),
        pid_file: d.join("sshd.pid"),
        use_pam: false,
    };
    std::fs::write(d.join("sshd_config"), cfg.render()).unwrap();
    let log = std::fs::File::create(d.join("sshd.log")).unwrap();
    let child = Command::new(SSHD)
        .args(["-D", "-e", "-f"])
        .arg(d.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let lb = Loopback {
        dir,
        port,
        child,
        _guard: guard,
    };
    // Await the listener (bounded), instead of sleeping.
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sshd did not listen: {}",
            lb.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(lb)
}

#[test_log::test]
fn runs_commands_over_one_reused_session() {
    let Some(lb) = start() else { return };
    let t = SshTransport::new(lb.target(lb.clan_trust()));
    let out = t.run(&Cmd::sh("echo out; echo err >&2; exit 3")).unwrap();
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    assert_eq!(out.exit, Some(3));
    for i in 0..20 {
        let out = t.run(&Cmd::new("echo").arg(format!("n{i}"))).unwrap();
        assert_eq!(out.stdout, format!("n{i}\n"));
    }
    // Quoting survives the remote shell: arguments reach the program verbatim.
    let tricky = "a b'c\"$HOME;`x`";
    let out = t.run(&Cmd::new("printf").arg("%s").arg(tricky)).unwrap();
    assert_eq!(out.stdout, tricky);
    let accepted = lb.log().matches("Accepted publickey").count();
    assert_eq!(
        accepted,
        1,
        "one session for all 22 commands; sshd log:\n{}",
        lb.log()
    );
}

#[test_log::test]
fn hung_command_times_out_and_session_recovers() {
    let Some(lb) = start() else { return };
    let t = SshTransport::new(lb.target(lb.clan_trust()));
    let started = Instant::now();
    let err = t
        .run(&Cmd::new("sleep").arg("30").timeout(Duration::from_secs(1)))
        .unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    assert!(
        waited < Duration::from_secs(8),
        "deadline not enforced: {waited:?}"
    );
    assert!(err.to_string().contains("sleep 30"), "{err}");
    let out = t.run(&Cmd::new("echo").arg("alive")).unwrap();
    assert_eq!(out.stdout, "alive\n");
}

#[test_log::test]
fn wrong_host_key_is_refused_with_both_fingerprints() {
    let Some(lb) = start() else { return };
    let other = keys::ed25519(&lb.path("impostor"), "impostor").unwrap();
    let trust = HostTrust::Clan {
        key: PublicKey::read_openssh_file(&other).unwrap(),
        source: other.clone(),
    };
    let err = SshTransport::new(lb.target(trust))
        .run(&Cmd::new("true"))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, TransportError::HostKeyMismatch { .. }),
        "{msg}"
    );
    let want = PublicKey::read_openssh_file(&other)
        .unwrap()
        .fingerprint(Default::default())
        .to_string();
    let seen = lb.host_key().fingerprint(Default::default()).to_string();
    assert!(msg.contains(&want) && msg.contains(&seen), "{msg}");
    // Refused before authenticating: the server never saw our key.
    assert!(!lb.log().contains("Accepted publickey"), "{}", lb.log());
}

#[test_log::test]
fn known_hosts_fallback_plain_revoked_and_missing() {
    let Some(lb) = start() else { return };
    let key = std::fs::read_to_string(lb.path("host_ed25519.pub")).unwrap();
    let key = key.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let kh = lb.path("known_hosts");
    let write = |text: String| {
        let mut f = std::fs::File::create(&kh).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    let trust = || HostTrust::KnownHosts { path: kh.clone() };

    write(format!("[127.0.0.1]:{} {key}\n", lb.port));
    let out = SshTransport::new(lb.target(trust()))
        .run(&Cmd::new("echo").arg("ok"))
        .unwrap();
    assert_eq!(out.stdout, "ok\n");

    write(format!(
        "@revoked [127.0.0.1]:{} {key}\n[127.0.0.1]:{} {key}\n",
        lb.port, lb.port
    ));
    let err = SshTransport::new(lb.target(trust()))
        .run(&Cmd::new("true"))
        .unwrap_err();
    assert!(err.to_string().contains("@revoked"), "{err}");

    write("[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0v1Yq3bwqBPhS1KcmuAdKrKUtYyBEOCzPW3tu0Kb9R\n".into());
    let err = SshTransport::new(lb.target(trust()))
        .run(&Cmd::new("true"))
        .unwrap_err();
    assert!(
        matches!(err, TransportError::NoTrustedHostKey { .. }),
        "never trust on first use: {err}"
    );
}

#[test_log::test]
fn unknown_user_key_is_an_auth_error() {
    let Some(lb) = start() else { return };
    keys::ed25519(&lb.path("stranger"), "stranger").unwrap();
    let mut target = lb.target(lb.clan_trust());
    target.auth = SshAuth::IdentityFile(lb.path("stranger"));
    let err = SshTransport::new(target)
        .run(&Cmd::new("true"))
        .unwrap_err();
    assert!(matches!(err, TransportError::Auth { .. }), "{err}");
    assert!(err.to_string().contains("root"), "{err}");
}

#[test_log::test]
fn closed_port_and_silent_server_fail_within_the_connect_timeout() {
    let Some(lb) = start() else { return };
    // Closed: a port nobody listens on.
    let mut target = lb.target(lb.clan_trust());
    target.port = free_port();
    let err = SshTransport::new(target)
        .run(&Cmd::new("true"))
        .unwrap_err();
    assert!(matches!(err, TransportError::Connect { .. }), "{err}");

    // Silent: accepts TCP but never speaks SSH. Must give up at the connect timeout, not hang.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let port = silent.local_addr().unwrap().port();
    let keep = held.clone();
    std::thread::spawn(move || {
        for s in silent.incoming().flatten() {
            keep.lock().unwrap().push(s);
        }
    });
    let mut target = lb.target(lb.clan_trust());
    target.port = port;
    target.connect_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let err = SshTransport::new(target)
        .run(&Cmd::new("true"))
        .unwrap_err();
    assert!(matches!(err, TransportError::Connect { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "hung: {:?}",
        started.elapsed()
    );
}

#[test]
fn repo_certificates_made_by_ssh_keygen_are_verified() {
    if Command::new("ssh-keygen").arg("-?").output().is_err() {
        skip::skip("ssh-keygen not found (apt-get install openssh-client)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = PublicKey::read_openssh_file(keys::ed25519(&d.join("ca"), "ca").unwrap()).unwrap();
    keys::ed25519(&d.join("foreign"), "foreign").unwrap();
    let host_pub = keys::ed25519(&d.join("host"), "host").unwrap();
    let host = PublicKey::read_openssh_file(&host_pub).unwrap();
    let check = |ca_file: &str, principal: &str| {
        let c = keys::sign_host(&d.join(ca_file), &host_pub, "m", principal).unwrap();
        let cert = Certificate::read_file(&c).unwrap();
        verify_certificate("m", "m.clan", &cert, &c, &ca, &host)
    };
    check("ca", "m.clan").unwrap();
    let foreign = check("foreign", "m.clan").unwrap_err().to_string();
    assert!(foreign.contains("not by the clan CA"), "{foreign}");
    let principal = check("ca", "other.clan").unwrap_err().to_string();
    assert!(principal.contains("do not include"), "{principal}");
}

#[test_log::test]
fn independent_commands_run_together_in_one_round_trip() {
    let Some(lb) = start() else { return };
    let t = SshTransport::new(lb.target(lb.clan_trust()));
    let cmds = [
        Cmd::new("sleep").arg("1"),
        Cmd::sh("echo out; echo err >&2; exit 3"),
        Cmd::new("printf").arg("%s").arg("a b'c\"$HOME"),
        Cmd::new("sleep").arg("1"),
        Cmd::new("sleep").arg("30").timeout(Duration::from_secs(1)),
    ];
    // Heavy commands (hops) run in lanes and report exits through files: six of them, each
    // with its own output and exit code, spread over the lanes.
    let heavy: Vec<Cmd> = (0..6)
        .map(|i| {
            let script = format!("echo h{i}; echo e{i} >&2; exit {}", 10 + i);
            Cmd::new("sh").arg("-c").arg(script).heavy()
        })
        .collect();
    let cmds: Vec<Cmd> = cmds.into_iter().chain(heavy).collect();
    let started = Instant::now();
    let outs = t.run_many(&cmds);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "concurrent, bounded by the slowest deadline: {took:?}"
    );
    assert_eq!(outs.len(), 11);
    for (i, o) in outs[5..].iter().enumerate() {
        let o = o.as_ref().unwrap();
        assert_eq!(
            (o.stdout.clone(), o.stderr.clone(), o.exit),
            (format!("h{i}\n"), format!("e{i}\n"), Some(10 + i as i32))
        );
    }
    let o = outs[1].as_ref().unwrap();
    assert_eq!(
        (o.stdout.as_str(), o.stderr.as_str(), o.exit),
        ("out\n", "err\n", Some(3))
    );
    assert_eq!(outs[2].as_ref().unwrap().stdout, "a b'c\"$HOME");
    assert!(outs[0].as_ref().unwrap().success() && outs[3].as_ref().unwrap().success());
    assert!(
        matches!(outs[4], Err(TransportError::Timeout { .. })),
        "{:?}",
        outs[4]
    );
    assert_eq!(lb.log().matches("Accepted publickey").count(), 1);
}

/// A `tracing` writer into a shared buffer, to read what the debug log would have shown.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[allow(dead_code)] // the samples module serves tests/secrets.rs too
mod samples;

/// Issue 14: with `RUST_LOG=debug` the transport logged 300 characters of each command's stdout
/// and stderr, secrets included. Every sample in every variant (plain, wrapped, CRLF, stderr),
/// printed by a real command over a real session, one at a time and batched, is withheld.
#[test]
fn the_debug_log_withholds_every_secret() {
    let Some(lb) = start() else { return };
    let t = SshTransport::new(lb.target(lb.clan_trust()));
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let mut cases = Vec::new();
    for s in samples::all() {
        for v in samples::VARIANTS {
            let (o, e) = v.output(&s.text);
            let n = cases.len();
            let (out, err) = (
                lb.path(&format!("case{n}.out")),
                lb.path(&format!("case{n}.err")),
            );
            std::fs::write(&out, &o).unwrap();
            std::fs::write(&err, &e).unwrap();
            let cmd = Cmd::sh(r#"cat "$1"; cat "$2" >&2"#)
                .arg(out.display().to_string())
                .arg(err.display().to_string());
            cases.push((s.name, v, s.text.clone(), cmd));
        }
    }
    let cmds: Vec<Cmd> = cases.iter().map(|c| c.3.clone()).collect();
    tracing::subscriber::with_default(subscriber, || {
        // One at a time (each command costs ~0.25 s here: every sample once, its variant
        // rotating), then every case batched.
        for c in cmds.iter().step_by(samples::VARIANTS.len() + 1) {
            t.run(c).unwrap();
        }
        for chunk in cmds.chunks(12) {
            for o in t.run_many(chunk) {
                o.unwrap();
            }
        }
    });
    let text = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    let (ran, batched) = (
        text.matches(" ran ").count(),
        text.matches("ran (batched)").count(),
    );
    assert!(
        ran >= cases.len() / 5 && batched == cases.len(),
        "only {ran} + {batched} debug events captured:\n{text}"
    );
    let leaked: Vec<String> = cases
        .iter()
        .filter_map(|(name, v, secret, _)| {
            samples::leaked(secret, &text).map(|f| format!("{name} ({v:?}): {f:?}"))
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "leaked into the debug log:\n{}",
        leaked.join("\n")
    );
    eprintln!(
        "debug log: {} of {} withheld ({ran} single, {batched} batched)",
        cases.len(),
        cases.len()
    );
}

/// A command killed by a signal has no exit status (the cassette's `null`), never success, and
/// its stderr names the signal; alone and in a batch.
#[test_log::test]
fn a_command_killed_by_a_signal_has_no_exit() {
    let Some(lb) = start() else { return };
    let t = SshTransport::new(lb.target(lb.clan_trust()));
    // `Cmd::new` with a whole line: the remote shell kills itself and sshd reports the signal
    // (`exit-signal`), for which libssh2's exit status reads 0. Through `Cmd::sh`, a shell
    // above reports 128+n.
    for (cmd, sig) in [
        (Cmd::new("kill -9 $$"), "SIGKILL"),
        (Cmd::new("kill -TERM $$"), "SIGTERM"),
        (Cmd::sh("kill -9 $$"), "SIGKILL"),
        (Cmd::sh("kill -TERM $$"), "SIGTERM"),
    ] {
        let o = t.run(&cmd).unwrap();
        assert_eq!(o.exit, None, "{cmd}: {o:?}");
        assert!(!o.success());
        assert!(o.stderr.contains(sig), "{cmd}: {}", o.stderr);
    }
    let outs = t.run_many(&[
        Cmd::sh("kill -9 $$"),
        Cmd::sh("kill -9 $$").heavy(),
        Cmd::new("echo").arg("fine"),
    ]);
    for o in &outs[..2] {
        let o = o.as_ref().unwrap();
        assert_eq!(o.exit, None, "{o:?}");
        assert!(o.stderr.contains("SIGKILL"), "{}", o.stderr);
    }
    assert_eq!(outs[2].as_ref().unwrap().stdout, "fine\n");
}

/// How many times each command ran, counted in a file the commands append to (the sshd runs on
/// this host, so the test can read it).
fn runs(counter: &Path) -> usize {
    std::fs::read_to_string(counter).unwrap_or_default().len()
}

#[test_log::test]
fn a_non_utf8_byte_does_not_break_the_batch() {
    let Some(lb) = start() else { return };
    let t = SshTransport::new(lb.target(lb.clan_trust()));
    let counter = lb.path("runs");
    let c = counter.display().to_string();
    let cmds = [
        Cmd::sh("printf x >>\"$1\"; printf 'a\\377b'").arg(&c),
        Cmd::sh("printf x >>\"$1\"; echo plain").arg(&c),
        Cmd::sh("printf x >>\"$1\"; printf '\\376' >&2; exit 4").arg(&c),
    ];
    let outs = t.run_many(&cmds);
    assert_eq!(
        runs(&counter),
        3,
        "each command ran once: one batch, no re-run"
    );
    let o: Vec<_> = outs.into_iter().map(Result::unwrap).collect();
    assert_eq!((o[0].stdout.as_str(), o[0].exit), ("a\u{fffd}b", Some(0)));
    assert_eq!((o[1].stdout.as_str(), o[1].exit), ("plain\n", Some(0)));
    assert_eq!((o[2].stderr.as_str(), o[2].exit), ("\u{fffd}", Some(4)));
}

#[test_log::test]
fn output_over_the_cap_is_cut_and_the_session_survives() {
    use clan_coordination::transport::outcome::OUTPUT_CAP;
    let Some(lb) = start() else { return };
    let t = SshTransport::new(lb.target(lb.clan_trust()));
    let note = "stdout truncated at 16 MiB";
    // 40 MiB, and an endless writer: both cut at the cap, the channel closed, no hang.
    for cmd in [
        Cmd::new("head").args(["-c", "41943040", "/dev/zero"]),
        Cmd::new("yes").timeout(Duration::from_secs(60)),
    ] {
        let started = Instant::now();
        let o = t.run(&cmd).unwrap();
        assert_eq!(o.stdout.len(), OUTPUT_CAP, "{cmd}");
        assert!(o.stderr.contains(note), "{cmd}: {}", o.stderr);
        assert_eq!(o.exit, None, "{cmd}: a cut output is no complete answer");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{cmd}: {:?}",
            started.elapsed()
        );
        assert_eq!(
            t.run(&Cmd::new("echo").arg("alive")).unwrap().stdout,
            "alive\n"
        );
    }
    // In a batch the remote files are capped (ulimit -f): the batch stands.
    let counter = lb.path("runs");
    let c = counter.display().to_string();
    let outs = t.run_many(&[
        Cmd::sh("printf x >>\"$1\"; head -c 41943040 /dev/zero").arg(&c),
        Cmd::sh("printf x >>\"$1\"; echo small").arg(&c),
    ]);
    assert_eq!(runs(&counter), 2, "one batch, no re-run");
    let big = outs[0].as_ref().unwrap();
    assert_eq!((big.stdout.len(), big.exit), (OUTPUT_CAP, None));
    assert!(big.stderr.contains(note), "{}", big.stderr);
    assert_eq!(outs[1].as_ref().unwrap().stdout, "small\n");
    assert_eq!(lb.log().matches("Accepted publickey").count(), 1);
}

#[path = "ssh_transport/stalls.rs"]
mod stalls;
