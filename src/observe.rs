//! Runs the probes on the fleet and keeps what was seen, with the command and exit status, so a
//! verdict can quote it. This is the only place checks touch machines; machines work in parallel.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::time::Duration;

use crate::fleet::Fleet;
use crate::probe::ping::{parse_ping, PingError, PingSummary};
use crate::probe::ssh::{
    parse_cert_authorities, parse_hop, parse_keygen_l, parse_sshd_t, CertAuthority, Hop,
    KeygenCertificate,
};
use crate::probe::systemd::{parse_show, UnitState};
use crate::probe::yggdrasil::{parse_peers as parse_ygg_peers, parse_self, PeerInfo, SelfInfo};
use crate::probe::zerotier::{parse_info, parse_listnetworks, parse_peers, Info, Network, Peer};
use crate::probe::{excerpt, ProbeError};
use crate::transport::{Cmd, Output};

/// What one command showed: the command, its exit, an excerpt, and the parsed value or why not.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Seen<T> {
    /// Command line.
    pub command: String,
    /// Exit status.
    pub exit: Option<i32>,
    /// Output excerpt (never secret: probes only print hashes and public data).
    pub excerpt: String,
    /// Parsed value, or the transport/parse error.
    pub value: Result<T, String>,
}

impl<T> Seen<T> {
    /// The value, if any.
    pub fn ok(&self) -> Option<&T> {
        self.value.as_ref().ok()
    }
}

/// Runs one probe command on a machine and parses its output (the one I/O path of the checks).
pub fn probe<T>(
    fleet: &Fleet,
    machine: &str,
    cmd: Cmd,
    parse: impl FnOnce(&Output) -> Result<T, String>,
) -> Seen<T> {
    seen_via(
        &|c: &Cmd| fleet.run(machine, c).map_err(|e| e.to_string()),
        cmd,
        parse,
    )
}

fn pe(e: ProbeError) -> String {
    e.to_string()
}

/// Hash probe of one user's password: sha256 of the shadow field and of the deployed hash file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserHashes {
    /// sha256 of `getent shadow <u>` field 2 (empty string hash when the user has none).
    pub shadow: String,
    /// Deployed hash file found and the sha256 of its content (trailing newline removed).
    pub file: Option<(String, String)>,
}

/// sha256 of the empty string: what the probe prints when there is nothing to hash.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const USER_HASH_SCRIPT: &str = r#"u="$1"; shift; printf 'shadow '; getent shadow "$u" | cut -d: -f2 | tr -d '\n' | sha256sum | cut -d' ' -f1; for f in "$@"; do if [ -e "$f" ]; then printf 'file %s ' "$f"; tr -d '\n' < "$f" | sha256sum | cut -d' ' -f1; fi; done"#;
const FILE_HASH_SCRIPT: &str = r#"for f in "$@"; do if [ -e "$f" ]; then printf '%s ' "$f"; sha256sum < "$f" | cut -d' ' -f1; fi; done; true"#;

fn parse_user_hashes(out: &Output) -> Result<UserHashes, String> {
    let mut shadow = None;
    let mut file = None;
    for line in out.stdout.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["shadow", h] => shadow = Some(h.to_string()),
            ["file", p, h] if file.is_none() => file = Some((p.to_string(), h.to_string())),
            _ => {}
        }
    }
    Ok(UserHashes {
        shadow: shadow.ok_or_else(|| {
            format!(
                "no shadow hash line (exit {:?}): {}",
                out.exit,
                excerpt(&out.stderr, 120)
            )
        })?,
        file,
    })
}

fn parse_file_hashes(out: &Output) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for line in out.stdout.lines() {
        if let Some((p, h)) = line.rsplit_once(' ') {
            if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
                m.insert(p.to_string(), h.to_string());
                continue;
            }
        }
        return Err(format!("unexpected line {line:?}"));
    }
    Ok(m)
}

/// Everything observed on one machine, shared by AC1, AC3 and AC4.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MachineStatus {
    /// `zerotier-cli -j info` (ZeroTier fleets).
    pub zt_info: Option<Seen<Info>>,
    /// `zerotier-cli -j listnetworks`.
    pub zt_networks: Option<Seen<Vec<Network>>>,
    /// `zerotier-cli -j peers`.
    pub zt_peers: Option<Seen<Vec<Peer>>>,
    /// `yggdrasilctl -json getSelf` (yggdrasil fleets).
    pub ygg_self: Option<Seen<SelfInfo>>,
    /// `yggdrasilctl -json getPeers`.
    pub ygg_peers: Option<Seen<Vec<PeerInfo>>>,
    /// Unit states by unit name.
    pub units: Seen<BTreeMap<String, UnitState>>,
    /// `sshd -T`.
    pub sshd: Seen<BTreeMap<String, Vec<String>>>,
    /// `ssh-keygen -L` of sshd's HostCertificate, when one is configured.
    pub host_cert: Option<Seen<KeygenCertificate>>,
    /// `@cert-authority` lines of /etc/ssh/ssh_known_hosts.
    pub cert_authorities: Seen<Vec<CertAuthority>>,
    /// /run/current-system/kernel-params.
    pub kernel_params: Seen<String>,
    /// Entries of /run/secrets/vars (era detection: `per-machine`/`shared` = 2026 layout).
    pub secrets_vars: Seen<Vec<String>>,
    /// Password hash probes by user.
    pub users: BTreeMap<String, Seen<UserHashes>>,
    /// sha256 of deployed shared secret files, by `<generator>/<file>`, path → hash.
    pub shared: BTreeMap<String, Seen<BTreeMap<String, String>>>,
}

impl MachineStatus {
    /// Whether the machine's deployed secrets use the 2026 per-machine/shared layout.
    pub fn secrets_era_b(&self) -> bool {
        self.secrets_vars
            .ok()
            .is_some_and(|v| v.iter().any(|e| e == "per-machine" || e == "shared"))
    }
}

/// Units whose state the checks read on every machine.
pub fn units_of_interest(fleet: &Fleet) -> Vec<String> {
    let mut units = vec![
        "zerotierone.service".to_string(),
        "sshd.service".to_string(),
        "emergency-access.service".to_string(),
    ];
    for (iname, _) in fleet.inventory.instances_of("zerotier") {
        units.push(fleet.oracle.autoaccept_unit(iname));
    }
    if fleet.config.overlay == crate::config::OverlayKind::Yggdrasil
        || fleet.inventory.instances_of("yggdrasil").next().is_some()
    {
        units.push("yggdrasil.service".to_string());
    }
    for probe in fleet.config.modules.values() {
        units.extend(probe.units.iter().cloned());
    }
    units.sort();
    units.dedup();
    units
}

/// Users managed by `users` instances on `machine` (name from settings, default instance name).
pub fn managed_users(fleet: &Fleet, machine: &str) -> Vec<(String, bool)> {
    let mut v = Vec::new();
    for (iname, inst) in fleet.inventory.instances_of("users") {
        for (rname, role) in &inst.roles {
            if role.members.iter().any(|m| m == machine) {
                let s = fleet.inventory.effective_settings(iname, rname, machine);
                let user = s
                    .get("user")
                    .and_then(|u| u.as_str())
                    .unwrap_or(iname)
                    .to_string();
                let share = s.get("share").and_then(|u| u.as_bool()).unwrap_or(false);
                if crate::config::NAME_RE.is_match(&user) && !v.iter().any(|(u, _)| u == &user) {
                    v.push((user, share));
                }
            }
        }
    }
    v
}

/// How `observe_with` runs one command.
type Runner<'a> = dyn Fn(&Cmd) -> Result<Output, String> + 'a;

fn seen_via<T>(
    run: &Runner,
    cmd: Cmd,
    parse: impl FnOnce(&Output) -> Result<T, String>,
) -> Seen<T> {
    match run(&cmd) {
        Ok(out) => Seen {
            command: cmd.text().into(),
            exit: out.exit,
            excerpt: excerpt(&out.combined(), 300),
            value: parse(&out),
        },
        Err(e) => Seen {
            command: cmd.text().into(),
            exit: None,
            excerpt: String::new(),
            value: Err(e),
        },
    }
}

/// Fetches everything AC1–AC4 will ask every machine in one round trip per machine: the status
/// probes, the pings to every other machine and the SSH hops to them run together, remotely in
/// parallel. The checks then find their answers waiting (see [`Fleet::prefetch`]).
pub fn prefetch(fleet: &Fleet) {
    prefetch_for(fleet, true, true)
}

/// [`prefetch`] for a subset of the criteria: `pings` for AC1, `hops` for AC2 (the status probes
/// serve every criterion and are always fetched).
pub fn prefetch_for(fleet: &Fleet, pings: bool, hops: bool) {
    let plans: BTreeMap<String, Vec<Cmd>> = fleet
        .machines()
        .iter()
        .map(|m| {
            let others: Vec<(&str, Ipv6Addr)> = fleet
                .machines()
                .into_iter()
                .filter(|t| t != m)
                .filter_map(|t| overlay_address(fleet, t).map(|a| (t, a)))
                .collect();
            // Pings first: their clock (count × interval) is the floor of the whole run.
            let mut cmds: Vec<Cmd> = Vec::new();
            if pings {
                cmds.extend(others.iter().map(|(_, a)| ping_cmd(fleet, *a)));
            }
            if hops {
                cmds.extend(others.iter().map(|(t, a)| hop_cmd(fleet, t, *a)));
            }
            let planned = std::cell::RefCell::new(Vec::new());
            let _ = observe_with(fleet, m, &|c: &Cmd| {
                planned.borrow_mut().push(c.clone());
                Err("planned".to_string())
            });
            cmds.extend(planned.into_inner());
            (m.to_string(), cmds)
        })
        .collect();
    fleet.prefetch(&plans);
}

/// One machine's status in as few round trips as the probes allow: a planning pass collects
/// every independent probe command, they run together in one batch, then the real pass reads
/// their results; only probes that depend on another's output (the certificate sshd names)
/// take a further round trip.
fn observe_machine(fleet: &Fleet, machine: &str) -> MachineStatus {
    let planned = std::cell::RefCell::new(Vec::new());
    let _ = observe_with(fleet, machine, &|c: &Cmd| {
        planned.borrow_mut().push(c.clone());
        Err("planned".to_string())
    });
    let planned = planned.into_inner();
    let results: std::collections::HashMap<String, Result<Output, String>> = planned
        .iter()
        .map(|c| c.text().to_string())
        .zip(
            fleet
                .run_many(machine, &planned)
                .into_iter()
                .map(|r| r.map_err(|e| e.to_string())),
        )
        .collect();
    let results = std::cell::RefCell::new(results);
    observe_with(fleet, machine, &|c: &Cmd| {
        let pre = results.borrow_mut().remove(c.text());
        pre.unwrap_or_else(|| fleet.run(machine, c).map_err(|e| e.to_string()))
    })
}

fn observe_with(fleet: &Fleet, machine: &str, run: &Runner) -> MachineStatus {
    let zt = fleet.config.overlay == crate::config::OverlayKind::Zerotier;
    let zt_info = zt.then(|| {
        seen_via(run, Cmd::new("zerotier-cli").args(["-j", "info"]), |o| {
            parse_info(&o.combined()).map_err(pe)
        })
    });
    let zt_networks = zt.then(|| {
        seen_via(
            run,
            Cmd::new("zerotier-cli").args(["-j", "listnetworks"]),
            |o| parse_listnetworks(&o.combined()).map_err(pe),
        )
    });
    let zt_peers = zt.then(|| {
        seen_via(run, Cmd::new("zerotier-cli").args(["-j", "peers"]), |o| {
            parse_peers(&o.combined()).map_err(pe)
        })
    });
    let ygg = fleet.config.overlay == crate::config::OverlayKind::Yggdrasil;
    let ygg_self = ygg.then(|| {
        seen_via(
            run,
            Cmd::new("yggdrasilctl").args(["-json", "getSelf"]),
            |o| parse_self(&o.combined()).map_err(pe),
        )
    });
    let ygg_peers = ygg.then(|| {
        seen_via(
            run,
            Cmd::new("yggdrasilctl").args(["-json", "getPeers"]),
            |o| parse_ygg_peers(&o.combined()).map_err(pe),
        )
    });
    let unit_names = units_of_interest(fleet);
    let mut show = Cmd::new("systemctl").arg("show");
    for p in [
        "LoadState",
        "ActiveState",
        "SubState",
        "Result",
        "ExecMainStatus",
    ] {
        show = show.args(["-p", p]);
    }
    let units = seen_via(run, show.args(&unit_names), |o| {
        let states = parse_show(&o.stdout).map_err(pe)?;
        if states.len() != unit_names.len() {
            return Err(format!(
                "systemctl show printed {} blocks for {} units",
                states.len(),
                unit_names.len()
            ));
        }
        Ok(unit_names.iter().cloned().zip(states).collect())
    });
    let sshd = seen_via(run, Cmd::new("sshd").arg("-T"), |o| {
        parse_sshd_t(&o.stdout).map_err(pe)
    });
    let host_cert = sshd
        .ok()
        .and_then(|m| m.get("hostcertificate"))
        .and_then(|v| v.first())
        .filter(|p| p.starts_with('/') && !p.contains(".."))
        .map(|path| {
            seen_via(
                run,
                Cmd::new("ssh-keygen").args(["-L", "-f"]).arg(path),
                |o| parse_keygen_l(&o.stdout).map_err(pe),
            )
        });
    let cert_authorities = seen_via(run, Cmd::new("cat").arg("/etc/ssh/ssh_known_hosts"), |o| {
        if o.success() {
            parse_cert_authorities(&o.stdout).map_err(pe)
        } else {
            Ok(Vec::new())
        }
    });
    let kernel_params = seen_via(
        run,
        Cmd::new("cat").arg("/run/current-system/kernel-params"),
        |o| {
            if o.success() {
                Ok(o.stdout.trim().to_string())
            } else {
                Err(format!(
                    "cannot read kernel-params: {}",
                    excerpt(&o.stderr, 120)
                ))
            }
        },
    );
    let secrets_vars = seen_via(run, Cmd::new("ls").args(["-1", "/run/secrets/vars"]), |o| {
        Ok(o.stdout.lines().map(String::from).collect())
    });
    let mut users = BTreeMap::new();
    for (user, _share) in managed_users(fleet, machine) {
        let gen = format!("user-password-{user}");
        let paths = [
            format!("/run/secrets-for-users/vars/per-machine/{machine}/{gen}/user-password-hash"),
            format!("/run/secrets-for-users/vars/shared/{gen}/user-password-hash"),
            format!("/run/secrets-for-users/vars/{gen}/user-password-hash"),
        ];
        users.insert(
            user.clone(),
            seen_via(
                run,
                Cmd::sh(USER_HASH_SCRIPT).arg(&user).args(&paths),
                parse_user_hashes,
            ),
        );
    }
    let mut shared = BTreeMap::new();
    for f in fleet
        .oracle
        .shared_files()
        .filter(|f| f.secret && f.recipients.iter().any(|r| r == machine))
    {
        let rel = format!("{}/{}", f.generator, f.file);
        let paths = [
            format!("/run/secrets/vars/shared/{rel}"),
            format!("/run/secrets-for-users/vars/shared/{rel}"),
            format!("/run/secrets/vars/{rel}"),
            format!("/run/secrets-for-users/vars/{rel}"),
        ];
        shared.insert(
            rel,
            seen_via(
                run,
                Cmd::sh(FILE_HASH_SCRIPT).args(&paths),
                parse_file_hashes,
            ),
        );
    }
    MachineStatus {
        zt_info,
        zt_networks,
        zt_peers,
        ygg_self,
        ygg_peers,
        units,
        sshd,
        host_cert,
        cert_authorities,
        kernel_params,
        secrets_vars,
        users,
        shared,
    }
}

/// Status of every machine, observed once per fleet and shared by the criteria.
pub fn status(fleet: &Fleet) -> &BTreeMap<String, MachineStatus> {
    fleet
        .status
        .get_or_init(|| fleet.each(|m| observe_machine(fleet, m)))
}

/// Status of every machine observed now, bypassing the per-fleet cache (after a rebuild).
pub fn status_fresh(fleet: &Fleet) -> BTreeMap<String, MachineStatus> {
    fleet.each(|m| observe_machine(fleet, m))
}

/// Expected overlay address of a machine: machines.toml override, else the clan repo.
pub fn overlay_address(fleet: &Fleet, machine: &str) -> Option<Ipv6Addr> {
    if let Some(a) = fleet
        .config
        .machine(machine)
        .and_then(|m| m.overlay_address)
    {
        return Some(a);
    }
    if fleet.config.overlay == crate::config::OverlayKind::Yggdrasil {
        return fleet
            .oracle
            .machines
            .get(machine)
            .and_then(|m| m.yggdrasil_ip.as_ref())
            .map(|s| s.value);
    }
    let instance = fleet
        .inventory
        .instances_of("zerotier")
        .find(|(_, i)| {
            i.roles
                .values()
                .any(|r| r.members.iter().any(|m| m == machine))
        })
        .map(|(n, _)| n.clone())
        .unwrap_or_default();
    fleet
        .oracle
        .zerotier_ip(machine, &instance)
        .map(|s| s.value)
}

/// A ping from one machine to another's overlay address.
pub type PingSeen = Seen<Result<PingSummary, PingError>>;

/// The ping command for a pair.
pub fn ping_cmd(fleet: &Fleet, to: Ipv6Addr) -> Cmd {
    let t = &fleet.config.thresholds;
    let budget = (f64::from(t.ping_count) * t.ping_interval_secs).ceil() as u64
        + u64::from(t.ping_timeout_secs)
        + 5;
    Cmd::new("ping")
        .arg("-6")
        .args(["-c", &t.ping_count.to_string()])
        .args(["-i", &format!("{}", t.ping_interval_secs)])
        .args(["-W", &t.ping_timeout_secs.to_string()])
        .arg(to.to_string())
        .timeout(Duration::from_secs(budget))
}

fn not_run<T>(why: String) -> Seen<T> {
    Seen {
        command: String::new(),
        exit: None,
        excerpt: String::new(),
        value: Err(why),
    }
}

/// For every ordered pair, `make(from, to, to's overlay address)` gives the command to run on
/// `from` (or why there is none); each source sends all its commands in one round trip, where
/// they run concurrently, and sources work in parallel. `finish` turns each result into `T`.
fn over_pairs<T: Send>(
    fleet: &Fleet,
    make: impl Fn(&str, &str, Option<Ipv6Addr>) -> Result<Cmd, String> + Sync,
    finish: impl Fn(&str, &str, Result<(&Cmd, Result<Output, String>), String>) -> T + Sync,
) -> BTreeMap<(String, String), T> {
    let targets: Vec<(String, Option<Ipv6Addr>)> = fleet
        .machines()
        .iter()
        .map(|m| (m.to_string(), overlay_address(fleet, m)))
        .collect();
    let per_source = fleet.each(|from| {
        let planned: Vec<(&String, Result<Cmd, String>)> = targets
            .iter()
            .filter(|(to, _)| to != from)
            .map(|(to, addr)| (to, make(from, to, *addr)))
            .collect();
        let cmds: Vec<Cmd> = planned
            .iter()
            .filter_map(|(_, c)| c.as_ref().ok().cloned())
            .collect();
        let mut outs = fleet.run_many(from, &cmds).into_iter();
        let mut cmds = cmds.iter();
        planned
            .iter()
            .map(|(to, c)| {
                let r = match c {
                    Ok(_) => match (cmds.next(), outs.next()) {
                        (Some(cmd), Some(o)) => Ok((cmd, o.map_err(|e| e.to_string()))),
                        _ => Err("internal: batch result missing".to_string()),
                    },
                    Err(why) => Err(why.clone()),
                };
                (to.to_string(), finish(from, to, r))
            })
            .collect::<Vec<_>>()
    });
    per_source
        .into_iter()
        .flat_map(|(from, v)| v.into_iter().map(move |(to, s)| ((from.clone(), to), s)))
        .collect()
}

/// Bounded pings over every ordered pair: each source pings all its targets at once.
pub fn mesh(fleet: &Fleet) -> BTreeMap<(String, String), PingSeen> {
    over_pairs(
        fleet,
        |_, to, addr| {
            addr.map(|a| ping_cmd(fleet, a))
                .ok_or_else(|| format!("no overlay address for {to} in the clan repo"))
        },
        |_, _, r| match r {
            Err(why) => not_run(why),
            Ok((cmd, Err(e))) => Seen {
                command: cmd.text().into(),
                exit: None,
                excerpt: String::new(),
                value: Err(e),
            },
            Ok((cmd, Ok(o))) => Seen {
                command: cmd.text().into(),
                exit: o.exit,
                excerpt: excerpt(&o.combined(), 300),
                value: Ok(parse_ping(&o.combined())),
            },
        },
    )
}

/// An SSH hop from A to B's overlay address, run by A's own OpenSSH client.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HopSeen {
    /// The hop.
    pub hop: Seen<Hop>,
    /// What `hostname` printed.
    pub hostname: String,
}

/// The hop command: strict, batch, no user known_hosts, certificate checked under `<B>.<domain>`.
///
/// It prefers curve25519 key exchange (`^` keeps OpenSSH's defaults as fallback): the hop carries
/// no secret that needs post-quantum protection, and the default sntrup761 key generation cost
/// 70 ms of client CPU per hop, 84% of all process CPU in a 16-machine lab run (BENCHMARKS.md).
pub fn hop_cmd(fleet: &Fleet, to_machine: &str, to: Ipv6Addr) -> Cmd {
    let connect = fleet.config.ssh.connect_timeout.as_secs().max(1);
    Cmd::new("ssh")
        .arg("-v")
        .args([
            "-o",
            "KexAlgorithms=^curve25519-sha256",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args([
            "-o",
            &format!("HostKeyAlias={}", fleet.principal(to_machine)),
        ])
        .args([
            "-o",
            &format!("ConnectTimeout={connect}"),
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "KbdInteractiveAuthentication=no",
        ])
        .arg(format!("root@{to}"))
        .arg("hostname")
        .timeout(Duration::from_secs(connect + 10))
        .heavy()
}

/// AC2 hops over every ordered pair.
pub fn hops(fleet: &Fleet) -> BTreeMap<(String, String), HopSeen> {
    hops_where(fleet, |_, _| true)
}

/// Hops for the pairs `want` selects; the others are skipped with that said (the monitor skips
/// hops over a path whose pings just failed: they could only time out).
pub fn hops_where(
    fleet: &Fleet,
    want: impl Fn(&str, &str) -> bool + Sync,
) -> BTreeMap<(String, String), HopSeen> {
    let skipped = |why: String| HopSeen {
        hostname: String::new(),
        hop: not_run(why),
    };
    over_pairs(
        fleet,
        |from, to, addr| {
            if !want(from, to) {
                return Err("skipped: the overlay path failed its pings in this round".into());
            }
            addr.map(|a| hop_cmd(fleet, to, a))
                .ok_or_else(|| format!("no overlay address for {to} in the clan repo"))
        },
        |_, _, r| match r {
            Err(why) => skipped(why),
            Ok((cmd, Err(e))) => HopSeen {
                hostname: String::new(),
                hop: Seen {
                    command: cmd.text().into(),
                    exit: None,
                    excerpt: String::new(),
                    value: Err(e),
                },
            },
            Ok((cmd, Ok(o))) => HopSeen {
                hostname: o.stdout.trim().to_string(),
                hop: Seen {
                    command: cmd.text().into(),
                    exit: o.exit,
                    excerpt: excerpt(
                        &o.stderr
                            .lines()
                            .filter(|l| !l.starts_with("debug"))
                            .collect::<Vec<_>>()
                            .join("\n"),
                        300,
                    ),
                    value: Ok(parse_hop(&o.stderr, o.exit)),
                },
            },
        },
    )
}
