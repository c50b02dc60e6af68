//! The lab fleet: clan-shaped machines made of Linux namespaces on one host, each with its own
//! network, UTS and mount namespaces, Debian's real OpenSSH sshd with a CA-signed host
//! certificate, a real yggdrasil overlay daemon peering over the lab underlay, and clan-shaped
//! files (deployed vars, root's password hash, `/run/current-system`). See README, "Lab".
//!
//! Topology (nothing in the host's own namespace):
//! - `<prefix>-ws`: the workstation; bridge `br0` holds the management /24 (`.1`), and the harness
//!   opens its SSH sockets here (`[ssh] netns`).
//! - `<prefix>-net`: the underlay "internet"; bridge `br1`, no address of its own.
//! - `<prefix>-<machine>`: `eth0` on the management bridge, `eth1` on the underlay, `ygg0` from
//!   yggdrasil. An anchor process holds the machine's UTS and mount namespaces; daemons are
//!   started into them with nsenter and tracked by pid in `<dir>/lab.json`.

pub mod keys;
pub mod net;
pub mod relay;
pub mod repo;
pub mod shim;
pub mod sshd;
pub mod system;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::LabError;

/// root's password hash in the lab (of the lab-only test password `lab-only-test-password`):
/// the users-root var deployed to every machine and the shadow field it must match.
pub const LAB_ROOT_HASH: &str =
    "$6$clanlabtestsalt$H9/pb5UJDuJDg6PwI3fTb.PdTwwzbBbVuLtKZS7w2W1Rdyyoq2YYW6Nr8GHq7Jun8JXo.DOG7Spyi2qpq99Z2/";

/// Debian packages the lab needs, with a program that proves each is there.
pub const PACKAGES: &[(&str, &str)] = &[
    ("iproute2", "/usr/sbin/ip"),
    ("openssh-server", "/usr/sbin/sshd"),
    ("openssh-client", "/usr/bin/ssh"),
    ("yggdrasil", "/usr/sbin/yggdrasil"),
    ("iputils-ping", "/usr/bin/ping"),
    ("util-linux", "/usr/bin/nsenter"),
];

/// Machine names: the story's two first, then `vm-03` ...
pub fn machine_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i {
            0 => "hetzner-vm".to_string(),
            1 => "gcp-vm".to_string(),
            _ => format!("vm-{:02}", i + 1),
        })
        .collect()
}

/// One lab machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabMachine {
    /// Name (also hostname and netns suffix).
    pub name: String,
    /// 0-based index (interface names, addresses).
    pub index: usize,
    /// Management address (reached from the workstation namespace).
    pub mgmt_ip: Ipv4Addr,
    /// Underlay address (yggdrasil peers over it).
    pub underlay_ip: Ipv4Addr,
    /// yggdrasil address, from its key.
    pub ygg_address: String,
    /// yggdrasil public key (hex).
    pub ygg_key: String,
}

/// Everything `lab down`, `lab fault` and `lab heal` need, kept in `<dir>/lab.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    /// State directory.
    pub dir: PathBuf,
    /// Namespace name prefix.
    pub prefix: String,
    /// Clan domain.
    pub domain: String,
    /// Management /24.
    pub mgmt_net: Ipv4Addr,
    /// Underlay /24.
    pub underlay_net: Ipv4Addr,
    /// Machines.
    pub machines: Vec<LabMachine>,
    /// Tracked processes: `<machine>/<role>` → pid.
    pub pids: BTreeMap<String, u32>,
    /// Active faults: machine → kinds.
    #[serde(default)]
    pub faults: BTreeMap<String, Vec<String>>,
    /// The clan-coord binary, started as the `slow-link` relay.
    #[serde(default)]
    pub exe: Option<PathBuf>,
}

/// Options of `lab up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Number of machines (2..=16).
    pub machines: usize,
    /// State directory.
    pub dir: PathBuf,
    /// Namespace prefix (default `clab`).
    pub prefix: String,
    /// Install missing Debian packages with apt-get.
    pub install: bool,
    /// The clan-coord binary (for the `slow-link` relay); None = this process's executable.
    pub exe: Option<PathBuf>,
}

/// The faults `lab fault` can bring in.
pub const FAULTS: &[&str] = &[
    "overlay-down",
    "link-down",
    "sshd-down",
    "foreign-cert",
    "shared-var-drift",
    "user-key-revoked",
    "slow-link",
    "sessions-cut",
];

/// Delay the `slow-link` relay adds in each direction (RTT grows by twice this).
pub const SLOW_LINK_DELAY: Duration = Duration::from_millis(150);

const READY: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(20);

fn io(p: &Path, e: std::io::Error) -> LabError {
    LabError::Io {
        path: p.to_path_buf(),
        source: e,
    }
}

/// Writes a file (creating parents) with a mode.
pub(crate) fn write(path: &Path, text: &str, mode: u32) -> Result<(), LabError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(|e| io(p, e))?;
    }
    std::fs::write(path, text).map_err(|e| io(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| io(path, e))
}

fn mkdir(p: &Path) -> Result<(), LabError> {
    std::fs::create_dir_all(p).map_err(|e| io(p, e))
}

/// Runs a host tool; Ok(stdout) or an error carrying its stderr.
fn run<S: AsRef<OsStr>>(prog: &str, args: &[S]) -> Result<String, LabError> {
    let out = Command::new(prog)
        .args(args)
        .output()
        .map_err(|e| LabError::Tool {
            tool: prog.into(),
            reason: format!("cannot start: {e}"),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let argv: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        Err(LabError::Tool {
            tool: format!("{prog} {}", argv.join(" ")),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn ip(args: &[&str]) -> Result<String, LabError> {
    run("ip", args)
}

/// Starts `argv` detached (own session, reparented to init), output appended to `log`; its pid.
fn spawn_detached(argv: &[String], log: &Path) -> Result<u32, LabError> {
    let mut args: Vec<String> = vec![
        "-c".into(),
        r#"log="$1"; shift; setsid "$@" >>"$log" 2>&1 </dev/null & echo $!"#.into(),
        "sh".into(),
        log.display().to_string(),
    ];
    args.extend(argv.iter().cloned());
    let out = run("sh", &args)?;
    out.trim().parse().map_err(|_| LabError::Tool {
        tool: argv.join(" "),
        reason: format!("no pid from launcher: {out:?}"),
    })
}

/// A process that exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Waits (bounded, polling) until `cond` holds.
fn await_cond(
    machine: &str,
    what: &str,
    limit: Duration,
    mut cond: impl FnMut() -> Result<bool, String>,
) -> Result<(), LabError> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        match cond() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = e,
        }
        if start.elapsed() > limit {
            return Err(LabError::NotReady {
                machine: machine.into(),
                what: what.into(),
                waited: start.elapsed(),
                detail: last,
            });
        }
        std::thread::sleep(POLL);
    }
}

fn tail(path: &Path, n: usize) -> String {
    let t = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = t.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" ⏎ ")
}

/// uid of this process.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Why the lab cannot run here (not root, packages missing), if it cannot.
pub fn unsupported() -> Option<String> {
    if !is_root() {
        return Some("not root: namespaces, veths and sshd need root".into());
    }
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, p)| !Path::new(p).exists())
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "missing Debian packages: {} (apt-get install {})",
            missing.join(", "),
            missing.join(" ")
        ));
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing: yggdrasil needs TUN".into());
    }
    None
}

/// Installs missing packages with apt-get, saying what and why.
pub fn install_missing() -> Result<(), LabError> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, p)| !Path::new(p).exists())
        .map(|(n, _)| *n)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "lab: installing missing Debian packages: {}",
        missing.join(" ")
    );
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    let status = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .envs(env)
            .status()
            .map_err(|e| LabError::Tool {
                tool: "apt-get".into(),
                reason: e.to_string(),
            })
    };
    status(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq"];
    args.extend(&missing);
    if !status(&args)?.success() {
        return Err(LabError::Tool {
            tool: "apt-get install".into(),
            reason: format!("could not install {}", missing.join(" ")),
        });
    }
    Ok(())
}

impl LabState {
    /// Loads `<dir>/lab.json`, if a lab was brought up there.
    pub fn load(dir: &Path) -> Result<Option<LabState>, LabError> {
        let p = dir.join("lab.json");
        match std::fs::read_to_string(&p) {
            Ok(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| LabError::Invalid(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&p, e)),
        }
    }

    fn save(&self) -> Result<(), LabError> {
        write(
            &self.dir.join("lab.json"),
            &serde_json::to_string_pretty(self).unwrap_or_default(),
            0o644,
        )
    }

    /// Reads a file of the state directory.
    pub fn read(&self, rel: &str) -> Result<String, LabError> {
        let p = self.dir.join(rel);
        std::fs::read_to_string(&p).map_err(|e| io(&p, e))
    }

    /// The lab clan's name (its inventory snapshot is pinned for the default 2 machines).
    pub fn clan_name(&self) -> String {
        if self.machines.len() == 2 {
            "lab-clan".into()
        } else {
            format!("lab-clan-{}", self.machines.len())
        }
    }

    /// Workstation namespace.
    pub fn ns_ws(&self) -> String {
        format!("{}-ws", self.prefix)
    }
    fn ns_net(&self) -> String {
        format!("{}-net", self.prefix)
    }
    fn ns(&self, m: &str) -> String {
        format!("{}-{m}", self.prefix)
    }
    /// Every namespace the lab owns.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v = vec![self.ns_ws(), self.ns_net()];
        v.extend(self.machines.iter().map(|m| self.ns(&m.name)));
        v
    }

    /// The machines.toml path.
    pub fn machines_file(&self) -> PathBuf {
        self.dir.join("machines.toml")
    }

    fn mdir(&self, m: &str) -> PathBuf {
        self.dir.join("machines").join(m)
    }

    /// A machine by name.
    pub fn machine(&self, name: &str) -> Result<&LabMachine, LabError> {
        self.machines
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| {
                LabError::Invalid(format!(
                    "no lab machine {name:?} (machines: {})",
                    self.machines
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    fn anchor(&self, m: &str) -> Result<u32, LabError> {
        self.pids
            .get(&format!("{m}/anchor"))
            .copied()
            .filter(|p| alive(*p))
            .ok_or_else(|| LabError::Invalid(format!("machine {m} is not running (no anchor)")))
    }

    /// Runs a program inside a machine's namespaces and returns its stdout.
    pub fn exec_in(&self, m: &str, argv: &[&str]) -> Result<String, LabError> {
        let a = self.anchor(m)?.to_string();
        let mut args = vec!["-t", a.as_str(), "-n", "-u", "-m", "--"];
        args.extend(argv);
        run("nsenter", &args)
    }
}

/// Brings the lab up (cleaning a previous one in the same directory first) and returns its state.
pub fn up(opts: &UpOptions) -> Result<LabState, LabError> {
    let start = Instant::now();
    if !(2..=16).contains(&opts.machines) {
        return Err(LabError::Invalid(format!(
            "--machines {} is out of range: the lab has 2 to 16 machines",
            opts.machines
        )));
    }
    if !crate::config::NAME_RE.is_match(&opts.prefix) || opts.prefix.len() > 8 {
        return Err(LabError::Invalid(format!(
            "prefix {:?}: use up to 8 lowercase letters/digits",
            opts.prefix
        )));
    }
    if opts.install && is_root() {
        install_missing()?;
    }
    if let Some(why) = unsupported() {
        return Err(LabError::Unsupported { reason: why });
    }
    down(&opts.dir)?;
    reap_orphans(&opts.prefix)?;
    // Host safety: the lab's subnets must overlap nothing of the host's.
    let host = net::host_prefixes(
        &ip(&["-j", "addr"])?,
        &[&ip(&["-j", "-4", "route"])?, &ip(&["-j", "-6", "route"])?],
    );
    let (mgmt_net, underlay_net) = net::choose(&host).map_err(|what| LabError::SubnetInUse {
        subnet: "198.18.100.0-198.18.251.0 /24 pairs".into(),
        what,
    })?;
    mkdir(&opts.dir)?;
    let dir = std::fs::canonicalize(&opts.dir).map_err(|e| io(&opts.dir, e))?;
    // A fresh fleet: no machine keeps files, keys or generations from a previous lab here.
    for sub in ["machines", "clan"] {
        let p = dir.join(sub);
        if p.exists() {
            std::fs::remove_dir_all(&p).map_err(|e| io(&p, e))?;
        }
    }
    let host_octets = |n: Ipv4Addr, i: usize| {
        let o = n.octets();
        Ipv4Addr::new(o[0], o[1], o[2], 10 + i as u8)
    };
    let mut state = LabState {
        dir: dir.clone(),
        prefix: opts.prefix.clone(),
        domain: "clan".into(),
        mgmt_net,
        underlay_net,
        machines: machine_names(opts.machines)
            .into_iter()
            .enumerate()
            .map(|(i, name)| LabMachine {
                name,
                index: i,
                mgmt_ip: host_octets(mgmt_net, i),
                underlay_ip: host_octets(underlay_net, i),
                ygg_address: String::new(),
                ygg_key: String::new(),
            })
            .collect(),
        pids: BTreeMap::new(),
        faults: BTreeMap::new(),
        exe: opts.exe.clone().or_else(|| std::env::current_exe().ok()),
    };
    state.save()?;
    make_keys(&mut state)?;
    tracing::info!(elapsed = ?start.elapsed(), "lab keys");
    make_network(&state)?;
    tracing::info!(elapsed = ?start.elapsed(), "lab network");
    repo::write_repo(&state)?;
    for i in 0..state.machines.len() {
        let m = state.machines[i].clone();
        write_machine_files(&state, &m)?;
        let path = write_closure(&state, &m, &current_system(&state, &m)?)?;
        switch_to(&state, &m.name, 1, &path)?;
    }
    write(&state.machines_file(), &repo::machines_toml(&state), 0o644)?;
    write(&dir.join("bin/systemctl"), shim::SYSTEMCTL, 0o755)?;
    // Each machine mounts its own /nix; the host needs the (empty) mountpoint. It is created only
    // when missing and never written to.
    if !Path::new("/nix").exists() {
        mkdir(Path::new("/nix"))?;
        eprintln!("lab: created an empty /nix on the host as the machines' mountpoint");
    }
    for i in 0..state.machines.len() {
        let name = state.machines[i].name.clone();
        start_anchor(&mut state, &name)?;
    }
    for i in 0..state.machines.len() {
        let name = state.machines[i].name.clone();
        start_daemon(&mut state, &name, "sshd")?;
        start_daemon(&mut state, &name, "yggdrasil")?;
    }
    state.save()?;
    await_ready(&state)?;
    tracing::info!(elapsed = ?start.elapsed(), "lab up");
    Ok(state)
}

fn make_keys(state: &mut LabState) -> Result<(), LabError> {
    let d = state.dir.clone();
    mkdir(&d.join("ca"))?;
    keys::ed25519(&d.join("ca/ca"), "clan-coord lab CA (test key)")?;
    mkdir(&d.join("foreign-ca"))?;
    keys::ed25519(&d.join("foreign-ca/ca"), "a foreign CA (test key)")?;
    mkdir(&d.join("workstation"))?;
    keys::ed25519(
        &d.join("workstation/id_ed25519"),
        "lab workstation (test key)",
    )?;
    let domain = state.domain.clone();
    in_parallel(state.machines.iter_mut(), |m| {
        let k = d.join("machines").join(&m.name).join("keys");
        mkdir(&k)?;
        let host_pub = keys::ed25519(&k.join("host"), &m.name)?;
        keys::sign_host(
            &d.join("ca/ca"),
            &host_pub,
            &m.name,
            &format!("{}.{domain}", m.name),
        )?;
        keys::ed25519(&k.join("root"), &format!("root@{}", m.name))?;
        let conf = run("yggdrasil", &["-genconf", "-json"])?;
        write(&k.join("yggdrasil.json"), &conf, 0o600)?;
        let conf_path = k.join("yggdrasil.json");
        let p = conf_path.display().to_string();
        m.ygg_address = run("yggdrasil", &["-useconffile", &p, "-address"])?
            .trim()
            .to_string();
        let v: serde_json::Value = serde_json::from_str(&conf)
            .map_err(|e| LabError::Invalid(format!("yggdrasil -genconf: {e}")))?;
        m.ygg_key = v["PublicKey"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        Ok(())
    })?;
    state.save()
}

fn make_network(state: &LabState) -> Result<(), LabError> {
    for ns in state.namespaces() {
        ip(&["netns", "add", &ns])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
    }
    let (ws, netns) = (state.ns_ws(), state.ns_net());
    let gw = {
        let o = state.mgmt_net.octets();
        format!("{}.{}.{}.1/24", o[0], o[1], o[2])
    };
    ip(&["-n", &ws, "link", "add", "br0", "type", "bridge"])?;
    ip(&["-n", &ws, "addr", "add", &gw, "dev", "br0"])?;
    ip(&["-n", &ws, "link", "set", "br0", "up"])?;
    ip(&["-n", &netns, "link", "add", "br1", "type", "bridge"])?;
    ip(&["-n", &netns, "link", "set", "br1", "up"])?;
    for m in &state.machines {
        let ns = state.ns(&m.name);
        let (mp, up) = (format!("m{}", m.index), format!("u{}", m.index));
        // Both ends are created directly in their namespaces: nothing appears in the host's.
        ip(&[
            "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &mp, "netns", &ws,
        ])?;
        ip(&[
            "link", "add", "eth1", "netns", &ns, "type", "veth", "peer", "name", &up, "netns",
            &netns,
        ])?;
        ip(&["-n", &ws, "link", "set", &mp, "master", "br0", "up"])?;
        ip(&["-n", &netns, "link", "set", &up, "master", "br1", "up"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/24", m.mgmt_ip),
            "dev",
            "eth0",
        ])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/24", m.underlay_ip),
            "dev",
            "eth1",
        ])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns, "link", "set", "eth1", "up"])?;
    }
    Ok(())
}

/// The system machine `m` should run per the lab repo.
fn current_system(state: &LabState, m: &LabMachine) -> Result<system::System, LabError> {
    let cfg = system::read_config(state)?;
    system::evaluate(state, &cfg, m).map_err(LabError::Invalid)
}

/// (Re)writes a machine's private files from the lab's keys: what `lab heal` restores.
fn write_machine_files(state: &LabState, m: &LabMachine) -> Result<(), LabError> {
    let md = state.mdir(&m.name);
    let keys = md.join("keys");
    let k = |f: &str| std::fs::read_to_string(keys.join(f)).map_err(|e| io(&keys.join(f), e));
    let run_dir = md.join("run");
    let etc = md.join("etc-ssh");
    for d in [&run_dir, &etc, &md.join("root/.ssh"), &md.join("log")] {
        mkdir(d)?;
    }
    for d in ["sshd", "lab/units", "yggdrasil", "secrets/vars/shared"] {
        mkdir(&run_dir.join(d))?;
    }
    // Deployed vars (current layout), as sops-nix leaves them.
    let pm = run_dir.join(format!("secrets/vars/per-machine/{}", m.name));
    write(&pm.join("openssh/ssh.id_ed25519"), &k("host")?, 0o600)?;
    let ygg: serde_json::Value = serde_json::from_str(&k("yggdrasil.json")?)
        .map_err(|e| LabError::Invalid(format!("yggdrasil.json: {e}")))?;
    write(
        &pm.join("yggdrasil/privateKey"),
        ygg["PrivateKey"].as_str().unwrap_or_default(),
        0o600,
    )?;
    write(
        &run_dir.join("secrets-for-users/vars/shared/user-password-root/user-password-hash"),
        LAB_ROOT_HASH,
        0o600,
    )?;
    // sshd: host key from vars, certificate, CA line as clan's client role writes it.
    write(
        &etc.join("ssh_host_ed25519_key-cert.pub"),
        &k("host-cert.pub")?,
        0o644,
    )?;
    let ca = state.read("ca/ca.pub")?;
    let ca_key: Vec<&str> = ca.split_whitespace().take(2).collect();
    write(
        &etc.join("ssh_known_hosts"),
        &format!(
            "@cert-authority ssh-ca,*.{} {}\n",
            state.domain,
            ca_key.join(" ")
        ),
        0o644,
    )?;
    let mut auth = state.read("workstation/id_ed25519.pub")?;
    for other in state.machines.iter().filter(|o| o.name != m.name) {
        auth.push_str(&state.read(&format!("machines/{}/keys/root.pub", other.name))?);
    }
    write(&etc.join("authorized_keys.d/root"), &auth, 0o644)?;
    let cfg = sshd::SshdConfig {
        listen: vec![
            "0.0.0.0:22"
                .parse()
                .map_err(|_| LabError::Invalid("listen".into()))?,
            "[::]:22"
                .parse()
                .map_err(|_| LabError::Invalid("listen".into()))?,
        ],
        host_key: PathBuf::from(format!(
            "/run/secrets/vars/per-machine/{}/openssh/ssh.id_ed25519",
            m.name
        )),
        host_cert: Some(PathBuf::from("/etc/ssh/ssh_host_ed25519_key-cert.pub")),
        authorized_keys: "/etc/ssh/authorized_keys.d/%u".into(),
        pid_file: PathBuf::from("/run/sshd.pid"),
    };
    write(&etc.join("sshd_config"), &cfg.render(), 0o644)?;
    // root's own key (clan's generateRootKey) for machine-to-machine SSH.
    write(&md.join("root/.ssh/id_ed25519"), &k("root")?, 0o600)?;
    write(&md.join("root/.ssh/id_ed25519.pub"), &k("root.pub")?, 0o644)?;
    // A private shadow whose root hash is the users-root var.
    let host_shadow = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
    let mut shadow = String::new();
    let mut has_root = false;
    for line in host_shadow.lines() {
        let mut f: Vec<&str> = line.split(':').collect();
        if f.first() == Some(&"root") && f.len() > 2 {
            f[1] = LAB_ROOT_HASH;
            has_root = true;
        }
        shadow.push_str(&f.join(":"));
        shadow.push('\n');
    }
    if !has_root {
        shadow = format!("root:{LAB_ROOT_HASH}:20000:0:99999:7:::\n{shadow}");
    }
    write(&md.join("shadow"), &shadow, 0o640)?;
    // yggdrasil: listen on the underlay, peer with every other machine (clan builds peers from
    // the other machines' exported hosts), admin socket where NixOS puts it, no multicast.
    let sys = current_system(state, m)?;
    let mut conf = ygg.clone();
    conf["Listen"] = serde_json::json!([format!("tcp://{}:{}", m.underlay_ip, sys.port)]);
    conf["Peers"] = serde_json::json!(sys.peers);
    conf["AdminListen"] = serde_json::json!("unix:///run/yggdrasil/yggdrasil.sock");
    conf["IfName"] = serde_json::json!("ygg0");
    conf["MulticastInterfaces"] = serde_json::json!([]);
    write(
        &run_dir.join("yggdrasil/yggdrasil.conf"),
        &serde_json::to_string_pretty(&conf).unwrap_or_default(),
        0o600,
    )
}

/// Writes machine `m`'s evaluated system into its lab store; returns the store path as the
/// machine sees it. The name is the hash of the content: same configuration, same closure.
fn write_closure(
    state: &LabState,
    m: &LabMachine,
    sys: &system::System,
) -> Result<String, LabError> {
    use sha2::Digest;
    let files = system::closure(m, sys);
    let mut h = sha2::Sha256::new();
    for (p, c) in &files {
        h.update(p.as_bytes());
        h.update([0]);
        h.update(c.as_bytes());
        h.update([0]);
    }
    // Nix's base32 alphabet has no e, o, u, t: keep the name looking like a store path.
    let hash: String = hex::encode(h.finalize())
        .chars()
        .map(|c| if c == 'e' { 'z' } else { c })
        .take(32)
        .collect();
    let name = format!("{hash}-nixos-system-{}-26.05.lab", m.name);
    let dir = state.mdir(&m.name).join("nix/store").join(&name);
    for (p, c) in &files {
        write(&dir.join(p), c, 0o644)?;
    }
    write(
        &dir.join("kernel-params"),
        &format!("init=/nix/store/{name}/init root=fstab loglevel=4\n"),
        0o644,
    )?;
    write(
        &dir.join("init"),
        "#!/bin/sh\n# clan-coord lab: a generation marker, never executed\n",
        0o755,
    )?;
    Ok(format!("/nix/store/{name}"))
}

/// The highest system generation of machine `m` (0 when none).
fn last_generation(state: &LabState, m: &str) -> u32 {
    std::fs::read_dir(state.mdir(m).join("nix/var/nix/profiles"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.strip_prefix("system-")?
                .strip_suffix("-link")?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or(0)
}

/// Registers `path` as generation `n` and switches to it (profile and /run/current-system).
fn switch_to(state: &LabState, m: &str, n: u32, path: &str) -> Result<(), LabError> {
    let md = state.mdir(m);
    let profiles = md.join("nix/var/nix/profiles");
    mkdir(&profiles)?;
    relink(&profiles.join(format!("system-{n}-link")), path)?;
    relink(&profiles.join("system"), &format!("system-{n}-link"))?;
    relink(&md.join("run/current-system"), path)
}

fn relink(link: &Path, target: &str) -> Result<(), LabError> {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link).map_err(|e| io(link, e))
}

fn start_anchor(state: &mut LabState, m: &str) -> Result<(), LabError> {
    let md = state.mdir(m);
    let argv: Vec<String> = [
        "ip",
        "netns",
        "exec",
        &state.ns(m),
        "unshare",
        "--uts",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        shim::ANCHOR,
        "anchor",
        m,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        md.display().to_string(),
        state.dir.join("bin").display().to_string(),
    ])
    .collect();
    let log = md.join("log/anchor.log");
    let pid = spawn_detached(&argv, &log)?;
    state.pids.insert(format!("{m}/anchor"), pid);
    state.save()?; // a crash from here on leaves a pid `lab up`/`lab down` can find
    await_cond(m, "namespace anchor", READY, || {
        if !alive(pid) {
            return Err(format!("anchor exited: {}", tail(&log, 5)));
        }
        Ok(comm(pid) == "sleep")
    })
}

/// Starts a lab daemon (`sshd` or `yggdrasil`) inside machine `m` and waits until it serves.
fn start_daemon(state: &mut LabState, m: &str, which: &str) -> Result<(), LabError> {
    let anchor = state.anchor(m)?.to_string();
    let md = state.mdir(m);
    let (unit, prog): (&str, Vec<&str>) = match which {
        "sshd" => (
            "sshd.service",
            vec!["/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/sshd_config"],
        ),
        _ => (
            "yggdrasil.service",
            vec![
                "/usr/sbin/yggdrasil",
                "-useconffile",
                "/run/yggdrasil/yggdrasil.conf",
                "-logto",
                "stdout",
            ],
        ),
    };
    let mut argv: Vec<String> = ["nsenter", "-t", &anchor, "-n", "-u", "-m", "--"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.extend(prog.iter().map(|s| s.to_string()));
    let log = md.join(format!("log/{which}.log"));
    let ready_file = match which {
        "sshd" => md.join("run/sshd.pid"),
        _ => md.join("run/yggdrasil/yggdrasil.sock"),
    };
    let _ = std::fs::remove_file(&ready_file);
    let pid = spawn_detached(&argv, &log)?;
    state.pids.insert(format!("{m}/{which}"), pid);
    state.save()?;
    let _ = std::fs::remove_file(md.join(format!("run/lab/units/{unit}.stopped")));
    write(
        &md.join(format!("run/lab/units/{unit}.pid")),
        &format!("{pid}\n"),
        0o644,
    )?;
    await_cond(m, which, READY, || {
        if !alive(pid) {
            return Err(format!("{which} exited: {}", tail(&log, 5)));
        }
        Ok(ready_file.exists())
    })
}

/// Runs `f` on every item on its own thread; the first error wins, a panic becomes an error.
fn in_parallel<T: Send>(
    items: impl IntoIterator<Item = T>,
    f: impl Fn(T) -> Result<(), LabError> + Sync,
) -> Result<(), LabError> {
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = items.into_iter().map(|x| s.spawn(move || f(x))).collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(LabError::Invalid("lab worker thread panicked".into())))
        })
    })
}

/// Waits until every machine peers with every other over yggdrasil and reaches it by ping.
fn await_ready(state: &LabState) -> Result<(), LabError> {
    let n = state.machines.len();
    in_parallel(state.machines.iter(), |m| {
        let sock = format!(
            "unix://{}",
            state
                .mdir(&m.name)
                .join("run/yggdrasil/yggdrasil.sock")
                .display()
        );
        await_cond(&m.name, "yggdrasil peerings", READY, || {
            let out = run("yggdrasilctl", &["-endpoint", &sock, "-json", "getPeers"])
                .map_err(|e| e.to_string())?;
            let peers = crate::probe::yggdrasil::parse_peers(&out).map_err(|e| e.to_string())?;
            Ok(peers.len() >= n - 1)
        })?;
        for o in state.machines.iter().filter(|o| o.name != m.name) {
            await_cond(
                &m.name,
                &format!("overlay route to {}", o.name),
                READY,
                || {
                    Ok(state
                        .exec_in(
                            &m.name,
                            &["ping", "-6", "-c", "1", "-W", "1", &o.ygg_address],
                        )
                        .is_ok())
                },
            )?;
        }
        Ok(())
    })
}

/// Every process below `pid` (children, their children, ...), from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let child: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid = stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()?;
            Some((child, ppid))
        })
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for &(c, pp) in &parents {
            if pp == p && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

fn kill(pid: u32, sig: &str) {
    if alive(pid) {
        let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
    }
}

/// The program a tracked role runs, so that a pid reused by another process after a crash is
/// never signalled.
fn expected_comm(role_key: &str) -> &'static str {
    match role_key.rsplit('/').next() {
        Some("anchor") => "sleep",
        Some("sshd") => "sshd",
        Some(r) if r.starts_with("relay-") => "clan-coord",
        _ => "yggdrasil",
    }
}

fn ours(key: &str, pid: u32) -> bool {
    let c = comm(pid);
    // `comm` is the program until exec completes; a freshly started one may still show the launcher.
    alive(pid)
        && (c == expected_comm(key)
            || c == "nsenter"
            || c == "setsid"
            || c == "ip"
            || c == "unshare")
}

/// Stops the lab in `dir`: ends only its tracked processes, deletes only its namespaces. A
/// directory without a lab is fine (idempotent).
pub fn down(dir: &Path) -> Result<bool, LabError> {
    let Some(state) = LabState::load(dir)? else {
        return Ok(false);
    };
    // Daemons first, anchors last; TERM, then KILL after a bounded wait.
    let mut pids: Vec<(String, u32)> = state
        .pids
        .iter()
        .filter(|(k, v)| ours(k, **v))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    pids.sort_by_key(|(k, _)| k.ends_with("/anchor"));
    for (_, p) in &pids {
        kill(*p, "-TERM");
    }
    let start = Instant::now();
    while pids.iter().any(|(_, p)| alive(*p)) && start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(POLL);
    }
    for (_, p) in &pids {
        kill(*p, "-KILL");
    }
    for ns in state.namespaces() {
        if Path::new("/run/netns").join(&ns).exists() {
            ip(&["netns", "del", &ns])?;
        }
    }
    let _ = std::fs::remove_file(dir.join("lab.json"));
    Ok(true)
}

/// Removes namespaces a crashed lab with this prefix left behind without a state file (its
/// directory gone): the processes inside them are the lab's own (`ip netns pids`), so they are
/// ended, then the namespaces deleted. Names outside the lab's scheme are never touched.
fn reap_orphans(prefix: &str) -> Result<(), LabError> {
    let mut names = vec![format!("{prefix}-ws"), format!("{prefix}-net")];
    names.extend(machine_names(16).iter().map(|m| format!("{prefix}-{m}")));
    for ns in names {
        if !Path::new("/run/netns").join(&ns).exists() {
            continue;
        }
        eprintln!("lab: removing namespace {ns} left by a crashed lab");
        let pids: Vec<u32> = ip(&["netns", "pids", &ns])?
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        for p in &pids {
            kill(*p, "-KILL");
        }
        let start = Instant::now();
        while pids.iter().any(|p| alive(*p)) && start.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(POLL);
        }
        ip(&["netns", "del", &ns])?;
    }
    Ok(())
}

/// One line per machine: processes and addresses.
pub fn status(dir: &Path) -> Result<String, LabError> {
    let Some(state) = LabState::load(dir)? else {
        return Ok(format!("no lab in {}", dir.display()));
    };
    let mut s = format!(
        "lab in {} ({} machines; machines file {})\n",
        state.dir.display(),
        state.machines.len(),
        state.machines_file().display()
    );
    for m in &state.machines {
        let st = |r: &str| match state.pids.get(&format!("{}/{r}", m.name)) {
            Some(p) if alive(*p) => format!("{r} {p}"),
            Some(_) => format!("{r} DOWN"),
            None => format!("{r} -"),
        };
        s.push_str(&format!(
            "  {:<11} mgmt {:<15} ygg {:<40} {}, {}, {}{}\n",
            m.name,
            m.mgmt_ip,
            m.ygg_address,
            st("anchor"),
            st("sshd"),
            st("yggdrasil"),
            state
                .faults
                .get(&m.name)
                .map(|f| format!("  faults: {}", f.join(", ")))
                .unwrap_or_default()
        ));
    }
    Ok(s)
}

/// Brings a real fault into machine `m`.
pub fn fault(dir: &Path, m: &str, kind: &str) -> Result<(), LabError> {
    let _lock = StateLock::take(dir)?;
    let mut state = LabState::load(dir)?
        .ok_or_else(|| LabError::Invalid(format!("no lab in {}", dir.display())))?;
    let mach = state.machine(m)?.clone();
    let md = state.mdir(m);
    match kind {
        "overlay-down" | "sshd-down" => {
            let which = if kind == "overlay-down" {
                "yggdrasil"
            } else {
                "sshd"
            };
            if let Some(p) = state.pids.get(&format!("{m}/{which}")) {
                kill(*p, "-TERM");
                let p = *p;
                await_cond(m, &format!("{which} stopped"), READY, || Ok(!alive(p)))?;
            }
        }
        "link-down" => {
            underlay_link(&state, &mach, false)?;
        }
        "sessions-cut" => {
            // What a reboot or an OOM kill does to SSH: every sshd process of the machine dies,
            // established sessions with it; the listener is back at once, as systemd restarts it.
            // A one-shot event: nothing stays broken, so nothing is recorded to heal.
            let key = format!("{m}/sshd");
            if let Some(p) = state.pids.get(&key).copied().filter(|p| ours(&key, *p)) {
                let mut victims = descendants(p);
                victims.push(p);
                for v in &victims {
                    kill(*v, "-KILL");
                }
                await_cond(m, "sshd and its sessions ended", READY, || {
                    Ok(victims.iter().all(|v| !alive(*v)))
                })?;
            }
            start_daemon(&mut state, m, "sshd")?;
            return state.save();
        }
        "foreign-cert" => {
            let tmp = md.join("keys/foreign");
            mkdir(&tmp)?;
            std::fs::copy(md.join("keys/host.pub"), tmp.join("host.pub"))
                .map_err(|e| io(&tmp, e))?;
            let cert = keys::sign_host(
                &state.dir.join("foreign-ca/ca"),
                &tmp.join("host.pub"),
                m,
                &format!("{m}.{}", state.domain),
            )?;
            let text = std::fs::read_to_string(&cert).map_err(|e| io(&cert, e))?;
            write(
                &md.join("etc-ssh/ssh_host_ed25519_key-cert.pub"),
                &text,
                0o644,
            )?;
            reload_sshd(&state, m)?;
        }
        "shared-var-drift" => {
            write(
                &md.join("run/secrets-for-users/vars/shared/user-password-root/user-password-hash"),
                "$6$driftedsalt$a-different-lab-test-hash",
                0o600,
            )?;
        }
        "user-key-revoked" => {
            let key = std::fs::read_to_string(md.join("keys/root.pub")).map_err(|e| io(&md, e))?;
            for o in state.machines.iter().filter(|o| o.name != m) {
                let p = state.mdir(&o.name).join("etc-ssh/authorized_keys.d/root");
                let t = std::fs::read_to_string(&p).map_err(|e| io(&p, e))?;
                write(&p, &t.replace(&key, ""), 0o644)?;
            }
        }
        "slow-link" => slow_link(&mut state, m)?,
        other => {
            return Err(LabError::Invalid(format!(
                "unknown fault {other:?}; kinds: {}",
                FAULTS.join(", ")
            )))
        }
    }
    let f = state.faults.entry(m.to_string()).or_default();
    if !f.iter().any(|x| x == kind) {
        f.push(kind.to_string());
    }
    state.save()
}

/// Sets a machine's underlay link (its port on the underlay bridge) up or down.
fn underlay_link(state: &LabState, m: &LabMachine, up: bool) -> Result<(), LabError> {
    let port = format!("u{}", m.index);
    ip(&[
        "-n",
        &state.ns_net(),
        "link",
        "set",
        &port,
        if up { "up" } else { "down" },
    ])
    .map(|_| ())
}

fn stop(pid: u32) -> Result<(), LabError> {
    kill(pid, "-TERM");
    await_cond("lab", &format!("process {pid} to end"), READY, || {
        Ok(!alive(pid))
    })
}

/// `slow-link`: machine `m` reaches every peer only through relays in its own namespace that
/// delay the underlay TCP stream; its yggdrasil listens on loopback only, so no peer bypasses
/// them. Restarts m's yggdrasil with that configuration and waits until it peers again.
fn slow_link(state: &mut LabState, m: &str) -> Result<(), LabError> {
    let exe = state.exe.clone().ok_or_else(|| {
        LabError::Invalid("slow-link needs the clan-coord binary (state has none)".into())
    })?;
    let anchor = state.anchor(m)?.to_string();
    let md = state.mdir(m);
    let others: Vec<LabMachine> = state
        .machines
        .iter()
        .filter(|o| o.name != m)
        .cloned()
        .collect();
    let mut peers = Vec::new();
    for o in &others {
        let port = 7000 + o.index;
        let argv: Vec<String> = vec![
            "nsenter".into(),
            "-t".into(),
            anchor.clone(),
            "-n".into(),
            "-u".into(),
            "-m".into(),
            "--".into(),
            exe.display().to_string(),
            "lab".into(),
            "relay".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--to".into(),
            format!("{}:{}", o.underlay_ip, current_system(state, o)?.port),
            "--delay-ms".into(),
            SLOW_LINK_DELAY.as_millis().to_string(),
        ];
        let pid = spawn_detached(&argv, &md.join("log/relay.log"))?;
        state.pids.insert(format!("{m}/relay-{}", o.name), pid);
        state.save()?;
        peers.push(format!("tcp://127.0.0.1:{port}"));
    }
    let conf_path = md.join("run/yggdrasil/yggdrasil.conf");
    let text = std::fs::read_to_string(&conf_path).map_err(|e| io(&conf_path, e))?;
    let mut conf: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| LabError::Invalid(format!("{}: {e}", conf_path.display())))?;
    conf["Listen"] = serde_json::json!(["tcp://127.0.0.1:6443"]);
    conf["Peers"] = serde_json::json!(peers);
    write(
        &conf_path,
        &serde_json::to_string_pretty(&conf).unwrap_or_default(),
        0o600,
    )?;
    if let Some(p) = state.pids.get(&format!("{m}/yggdrasil")).copied() {
        stop(p)?;
    }
    start_daemon(state, m, "yggdrasil")?;
    await_ready(state)
}

fn reload_sshd(state: &LabState, m: &str) -> Result<(), LabError> {
    // SIGHUP: sshd re-executes itself and reloads its configuration, keys and certificate.
    if let Some(p) = state.pids.get(&format!("{m}/sshd")) {
        kill(*p, "-HUP");
        let log = state.mdir(m).join("log/sshd.log");
        let before = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("Server listening")
            .count();
        await_cond(m, "sshd reload", READY, || {
            Ok(std::fs::read_to_string(&log)
                .unwrap_or_default()
                .matches("Server listening")
                .count()
                > before)
        })?;
    }
    Ok(())
}

/// Undoes every fault on `m` (or on all machines): files rewritten from the lab's keys, links up,
/// stopped daemons started, sshd reloaded; then waits for the mesh.
pub fn heal(dir: &Path, only: Option<&str>) -> Result<(), LabError> {
    let _lock = StateLock::take(dir)?;
    let mut state = LabState::load(dir)?
        .ok_or_else(|| LabError::Invalid(format!("no lab in {}", dir.display())))?;
    let names: Vec<String> = match only {
        Some(m) => vec![state.machine(m)?.name.clone()],
        None => state.machines.iter().map(|m| m.name.clone()).collect(),
    };
    // Authorized keys live on the peers: rewrite every machine's files.
    for i in 0..state.machines.len() {
        let m = state.machines[i].clone();
        write_machine_files(&state, &m)?;
    }
    for name in &names {
        let mach = state.machine(name)?.clone();
        underlay_link(&state, &mach, true)?;
        let relays: Vec<(String, u32)> = state
            .pids
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{name}/relay-")))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        if !relays.is_empty() {
            // The yggdrasil config was changed for the relays: restart it with the normal one.
            if let Some(p) = state.pids.get(&format!("{name}/yggdrasil")).copied() {
                stop(p)?;
            }
            for (k, p) in relays {
                if ours(&k, p) {
                    stop(p)?;
                }
                state.pids.remove(&k);
            }
        }
        for which in ["sshd", "yggdrasil"] {
            let running = state
                .pids
                .get(&format!("{name}/{which}"))
                .is_some_and(|p| alive(*p));
            if !running {
                start_daemon(&mut state, name, which)?;
            } else if which == "sshd" {
                reload_sshd(&state, name)?;
            }
        }
        state.faults.remove(name);
    }
    state.save()?;
    await_ready(&state)
}

/// Records a live run of the running lab for offline replay: copies the lab's clan repo (public
/// vars, placeholders, inventory) to `<out>/clan`, writes `<out>/machines.toml` pointing at it and
/// returns the path the cassette should be recorded to (`<out>/cassette.json`).
pub fn prepare_recording(state: &LabState, out: &Path) -> Result<PathBuf, LabError> {
    let clan = out.join("clan");
    let _ = std::fs::remove_dir_all(&clan);
    copy_tree(&state.dir.join("clan"), &clan)?;
    write(
        &out.join("machines.toml"),
        &repo::machines_toml_with(
            state,
            "clan",
            "Recorded from the lab for offline replay: tests/verdicts.rs replays cassette.json",
        ),
        0o644,
    )?;
    Ok(out.join("cassette.json"))
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), LabError> {
    mkdir(to)?;
    for e in std::fs::read_dir(from).map_err(|e| io(from, e))? {
        let e = e.map_err(|e| io(from, e))?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type().map_err(|e| io(&src, e))?;
        if ft.is_symlink() {
            let target = std::fs::read_link(&src).map_err(|e| io(&src, e))?;
            std::os::unix::fs::symlink(target, &dst).map_err(|e| io(&dst, e))?;
        } else if ft.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| io(&src, e))?;
        }
    }
    Ok(())
}

/// Points a finished recording at its own machines.toml and says where it came from.
pub fn finish_recording(out: &Path, machines: usize) -> Result<(), LabError> {
    let p = out.join("cassette.json");
    let text = std::fs::read_to_string(&p).map_err(|e| io(&p, e))?;
    let mut v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| LabError::Invalid(format!("{}: {e}", p.display())))?;
    v["machines_file"] = serde_json::json!("machines.toml");
    v["description"] = serde_json::json!(format!(
        "recorded live from a healthy {machines}-machine clan-coord lab (`clan-coord lab check --record`)"
    ));
    write(
        &p,
        &(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"),
        0o644,
    )
}

/// An exclusive lock on the lab's state: rebuilds of several machines run at once (as
/// `clan machines update` does), and each rewrites `lab.json`; the lock keeps their
/// load-change-save sequences from overwriting each other's pids.
struct StateLock {
    _held: std::fs::File,
}

impl StateLock {
    fn take(dir: &Path) -> Result<StateLock, LabError> {
        use std::os::fd::AsRawFd;
        let p = dir.join("lab.lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| io(&p, e))?;
        // SAFETY: flock on an fd we own; released when the file is closed (on drop).
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io(&p, std::io::Error::last_os_error()));
        }
        Ok(StateLock { _held: f })
    }
}

/// `lab rebuild <machine>`: the lab's `clan machines update`. Evaluates the lab repo's
/// configuration for the machine, builds its closure, registers a new numbered generation and
/// switches to it when the closure changed, rewrites the deployed files, and restarts yggdrasil
/// when its settings changed, unless the machine's `restart_on_switch` is false (mirroring clan
/// leaving running services alone). Prints what it does, as a deploy log.
pub fn rebuild(dir: &Path, m: &str) -> Result<(), LabError> {
    let _lock = StateLock::take(dir)?;
    let mut state = LabState::load(dir)?
        .ok_or_else(|| LabError::Invalid(format!("no lab in {}", dir.display())))?;
    let mach = state.machine(m)?.clone();
    let md = state.mdir(m);
    println!(
        "evaluating the configuration of {m} ({})",
        state.dir.join("clan/lab-config.json").display()
    );
    let cfg = system::read_config(&state)?;
    let sys = system::evaluate(&state, &cfg, &mach).map_err(|e| LabError::Tool {
        tool: format!("lab rebuild {m}"),
        reason: e,
    })?;
    let path = write_closure(&state, &mach, &sys)?;
    println!("built {path}");
    let current = std::fs::read_link(md.join("run/current-system"))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let in_lab = |store_path: &str| md.join(store_path.trim_start_matches('/'));
    let old_settings =
        std::fs::read_to_string(in_lab(&current).join("etc/yggdrasil/settings.json"))
            .unwrap_or_default();
    let new_settings = std::fs::read_to_string(in_lab(&path).join("etc/yggdrasil/settings.json"))
        .unwrap_or_default();
    if current == path {
        println!(
            "{m}: the system closure did not change; generation {} stays active",
            last_generation(&state, m)
        );
        return Ok(());
    }
    let n = last_generation(&state, m) + 1;
    write_machine_files(&state, &mach)?;
    switch_to(&state, m, n, &path)?;
    println!("{m}: switched to generation {n}");
    if old_settings != new_settings {
        if sys.restart_on_switch {
            println!("{m}: restarting yggdrasil.service (settings changed)");
            if let Some(p) = state.pids.get(&format!("{m}/yggdrasil")).copied() {
                stop(p)?;
            }
            start_daemon(&mut state, m, "yggdrasil")?;
            state.save()?;
        } else {
            println!("{m}: yggdrasil.service settings changed but the unit was not restarted (restart_on_switch = false)");
        }
    }
    Ok(())
}
