//! The observation plan: from the expectations and the criteria asked for, which commands run on
//! which machine (and which rebuilds on the workstation). `clan-coord plan` prints exactly this;
//! observe runs it, one batch per machine. Every remote command is built here, from
//! code literals and validated values only.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::time::Duration;

use crate::expectations::Expectations;
use crate::names::Criterion;
use crate::overlay;
use crate::transport::Cmd;

/// What one planned command is for: observe reads each answer by this key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The overlay's n-th status command.
    Overlay(usize),
    /// `systemctl show` of the units of interest.
    Units,
    /// `sshd -T`.
    Sshd,
    /// `@cert-authority` lines of /etc/ssh/ssh_known_hosts.
    CertAuthorities,
    /// /run/current-system/kernel-params.
    KernelParams,
    /// Entries of /run/secrets/vars.
    SecretsVars,
    /// Password hash probe of a managed user.
    User(String),
    /// Hash probe of a deployed shared secret (`<generator>/<file>`).
    Shared(String),
    /// Bounded ping to this machine's overlay address.
    Ping(String),
    /// SSH hop to this machine over the overlay.
    Hop(String),
    /// The machine as an SSH client: its clock and the `@cert-authority` lines of every
    /// known_hosts file `ssh -G` says the hop reads (AC2).
    ClientView,
    /// System generation, current system, artefact hashes, watched units (AC5/AC6).
    SystemState,
}

impl Probe {
    /// Part of the machine's status (AC1–AC4 read it).
    pub fn is_status(&self) -> bool {
        !matches!(
            self,
            Probe::Ping(_) | Probe::Hop(_) | Probe::ClientView | Probe::SystemState
        )
    }
}

/// One planned command.
#[derive(Debug, Clone)]
pub struct Step {
    /// What it is for.
    pub probe: Probe,
    /// The command.
    pub cmd: Cmd,
}

/// What a set of criteria needs observed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Per-machine status probes (AC1–AC4).
    pub status: bool,
    /// Pings over every ordered pair (AC1).
    pub pings: bool,
    /// SSH hops over every ordered pair (AC2).
    pub hops: bool,
    /// Rebuilds with the system state before and after (AC5, AC6).
    pub rebuild: bool,
}

impl Needs {
    /// What `criteria` need; AC6 also needs what AC1–AC3 need, observed again after its rebuild.
    pub fn of(criteria: &[Criterion]) -> Needs {
        let has = |c| criteria.contains(&c);
        Needs {
            status: criteria.iter().any(|c| {
                matches!(
                    c,
                    Criterion::Ac1 | Criterion::Ac2 | Criterion::Ac3 | Criterion::Ac4
                )
            }),
            pings: has(Criterion::Ac1),
            hops: has(Criterion::Ac2),
            rebuild: has(Criterion::Ac5) || has(Criterion::Ac6),
        }
    }
}

/// The plan: per machine, its commands; on the workstation, the rebuilds.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// What it was made for.
    pub needs: Needs,
    /// Machine → steps, in the order they are listed (observe sends pings first).
    pub machines: BTreeMap<String, Vec<Step>>,
    /// Machine → its rebuild command, run on the workstation.
    pub rebuilds: BTreeMap<String, Cmd>,
    /// The system-state probe runs before and after the rebuilds.
    pub system_state: Option<Cmd>,
}

impl Plan {
    /// The plan for `needs` over every machine of the fleet.
    pub fn new(exp: &Expectations, needs: Needs) -> Plan {
        let mut plan = Plan {
            needs,
            ..Plan::default()
        };
        let targets: Vec<(&str, Option<Ipv6Addr>)> = exp
            .machines()
            .into_iter()
            .map(|m| (m, overlay::expected_address(exp, m)))
            .collect();
        for m in exp.machines() {
            let mut steps = Vec::new();
            if needs.status {
                steps.extend(status_steps(exp, m));
            }
            for (to, addr) in targets.iter().filter(|(t, _)| *t != m) {
                if let (true, Some(a)) = (needs.pings, addr) {
                    steps.push(Step {
                        probe: Probe::Ping(to.to_string()),
                        cmd: ping_cmd(exp, *a),
                    });
                }
            }
            let mut first_hop = None;
            for (to, addr) in targets.iter().filter(|(t, _)| *t != m) {
                if let (true, Some(a)) = (needs.hops, addr) {
                    first_hop.get_or_insert((*to, *a));
                    steps.push(Step {
                        probe: Probe::Hop(to.to_string()),
                        cmd: hop_cmd(exp, to, *a),
                    });
                }
            }
            if let Some((to, a)) = first_hop {
                steps.push(Step {
                    probe: Probe::ClientView,
                    cmd: client_view_cmd(exp, to, a),
                });
            }
            if needs.rebuild {
                plan.rebuilds.insert(m.to_string(), rebuild_cmd(exp, m));
            }
            plan.machines.insert(m.to_string(), steps);
        }
        if needs.rebuild {
            plan.system_state = Some(state_cmd(exp));
        }
        plan
    }

    /// The commands of one machine, as text, in plan order.
    pub fn commands(&self, machine: &str) -> Vec<String> {
        self.machines
            .get(machine)
            .map(|s| s.iter().map(|s| s.cmd.text().to_string()).collect())
            .unwrap_or_default()
    }

    /// The plan as an operator reads it: per machine its commands, the follow-up that depends on
    /// an answer, and the rebuilds on the workstation.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (m, steps) in &self.machines {
            s.push_str(&format!("{m}:\n"));
            for st in steps {
                s.push_str(&format!("  {}\n", st.cmd.text()));
            }
            if steps.iter().any(|st| st.probe == Probe::Sshd) {
                s.push_str("  then: ssh-keygen -L -f <the HostCertificate that sshd -T names>\n");
            }
            if let Some(c) = &self.system_state {
                s.push_str(&format!("  before and after the rebuild: {}\n", c.text()));
            }
        }
        if !self.rebuilds.is_empty() {
            s.push_str("workstation:\n");
            for (m, c) in &self.rebuilds {
                s.push_str(&format!("  rebuild {m}: {}\n", c.text()));
            }
        }
        s
    }
}

/// The status probes of one machine (AC1–AC4 read them).
fn status_steps(exp: &Expectations, machine: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = exp
        .config
        .overlay
        .status_cmds()
        .into_iter()
        .enumerate()
        .map(|(i, cmd)| Step {
            probe: Probe::Overlay(i),
            cmd,
        })
        .collect();
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
    let mut step = |probe, cmd| steps.push(Step { probe, cmd });
    step(Probe::Units, show.args(units_of_interest(exp)));
    step(Probe::Sshd, Cmd::new("sshd").arg("-T"));
    step(
        Probe::CertAuthorities,
        Cmd::new("cat").arg("/etc/ssh/ssh_known_hosts"),
    );
    step(
        Probe::KernelParams,
        Cmd::new("cat").arg("/run/current-system/kernel-params"),
    );
    step(
        Probe::SecretsVars,
        Cmd::new("ls").args(["-1", "/run/secrets/vars"]),
    );
    for (user, _share) in exp.managed_users(machine) {
        let gen = format!("user-password-{user}");
        let paths = [
            format!("/run/secrets-for-users/vars/per-machine/{machine}/{gen}/user-password-hash"),
            format!("/run/secrets-for-users/vars/shared/{gen}/user-password-hash"),
            format!("/run/secrets-for-users/vars/{gen}/user-password-hash"),
        ];
        step(
            Probe::User(user.clone()),
            Cmd::sh(USER_HASH_SCRIPT).arg(&user).args(&paths),
        );
    }
    for f in exp
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
        step(Probe::Shared(rel), Cmd::sh(FILE_HASH_SCRIPT).args(&paths));
    }
    steps
}

/// The follow-up of `sshd -T`: the served host certificate, read where sshd says it is (only an
/// absolute path without `..`).
pub fn host_cert_cmd(path: &str) -> Option<Cmd> {
    (path.starts_with('/') && !path.contains(".."))
        .then(|| Cmd::new("ssh-keygen").args(["-L", "-f"]).arg(path))
}

/// Units whose state the checks read on every machine.
pub fn units_of_interest(exp: &Expectations) -> Vec<String> {
    let mut units = vec![
        overlay::OverlayKind::Zerotier.unit().to_string(),
        "sshd.service".to_string(),
        "emergency-access.service".to_string(),
    ];
    for (iname, _) in exp.inventory.instances_of("zerotier") {
        units.push(exp.oracle.autoaccept_unit(iname));
    }
    if exp.config.overlay == overlay::OverlayKind::Yggdrasil
        || exp.inventory.instances_of("yggdrasil").next().is_some()
    {
        units.push(overlay::OverlayKind::Yggdrasil.unit().to_string());
    }
    for probe in exp.config.modules.values() {
        units.extend(probe.units.iter().cloned());
    }
    units.sort();
    units.dedup();
    units
}

/// Units watched for AC6: configured ones, else the overlay daemon.
pub fn watched_units(exp: &Expectations) -> Vec<String> {
    if !exp.config.rebuild.restart_units.is_empty() {
        return exp.config.rebuild.restart_units.clone();
    }
    vec![exp.config.overlay.unit().to_string()]
}

/// The ping command for a pair.
pub fn ping_cmd(exp: &Expectations, to: Ipv6Addr) -> Cmd {
    let t = &exp.config.thresholds;
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

/// The hop's `-o` options: strict, batch, no user known_hosts, certificate checked under
/// `<B>.<domain>`.
///
/// It prefers curve25519 key exchange (`^` keeps OpenSSH's defaults as fallback): the hop carries
/// no secret that needs post-quantum protection, and the default sntrup761 key generation cost
/// 70 ms of client CPU per hop, 84% of all process CPU in a 16-machine lab run (BENCHMARKS.md).
fn hop_options(exp: &Expectations, to_machine: &str) -> Vec<String> {
    let connect = exp.config.ssh.connect_timeout.as_secs().max(1);
    [
        "KexAlgorithms=^curve25519-sha256".to_string(),
        "BatchMode=yes".into(),
        "StrictHostKeyChecking=yes".into(),
        "UserKnownHostsFile=/dev/null".into(),
        format!("HostKeyAlias={}", exp.principal(to_machine)),
        format!("ConnectTimeout={connect}"),
        "PasswordAuthentication=no".into(),
        "KbdInteractiveAuthentication=no".into(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_string(), o])
    .collect()
}

/// The hop command: `ssh -v` with [`hop_options`], running `hostname` on B. `-v` prints what
/// AC2 reads: the certificate shown (type, serial, ID, CA, validity), the known_hosts line of
/// the CA, the name checked, and why a check failed.
pub fn hop_cmd(exp: &Expectations, to_machine: &str, to: Ipv6Addr) -> Cmd {
    let connect = exp.config.ssh.connect_timeout.as_secs().max(1);
    Cmd::new("ssh")
        .arg("-v")
        .args(hop_options(exp, to_machine))
        .arg(format!("root@{to}"))
        .arg("hostname")
        .timeout(Duration::from_secs(connect + 10))
        .heavy()
}

/// The client view command: [`CLIENT_VIEW_SCRIPT`] with the hop options for the machine's
/// first peer. `ssh -G` resolves the configuration as the hop would (Match and Host blocks that
/// single out one peer's address are read for that first peer only).
pub fn client_view_cmd(exp: &Expectations, to_machine: &str, to: Ipv6Addr) -> Cmd {
    Cmd::sh(CLIENT_VIEW_SCRIPT)
        .args(hop_options(exp, to_machine))
        .arg(format!("root@{to}"))
}

/// The system-state command (AC5/AC6): artefact hashes, then the watched units.
pub fn state_cmd(exp: &Expectations) -> Cmd {
    Cmd::sh(STATE_SCRIPT)
        .args(exp.config.rebuild.artefacts.iter().map(|a| a.path.as_str()))
        .arg("--units")
        .args(watched_units(exp))
}

/// The rebuild command for one machine, placeholders filled with validated values.
pub fn rebuild_cmd(exp: &Expectations, machine: &str) -> Cmd {
    let target = exp
        .config
        .machine(machine)
        .map(|m| format!("{}@{}", m.user, m.address))
        .unwrap_or_default();
    let flake = exp
        .config
        .flake
        .clone()
        .unwrap_or_else(|| exp.config.clan_dir.display().to_string());
    let words: Vec<String> = exp
        .config
        .rebuild
        .command
        .iter()
        .map(|w| {
            w.replace("{machine}", machine)
                .replace("{target}", &target)
                .replace("{flake}", &flake)
        })
        .collect();
    Cmd::argv(&words).timeout(exp.config.rebuild.timeout)
}

/// The machine's clock (Unix seconds and local time, the time OpenSSH prints validity in), the
/// known_hosts files `ssh -G` names for the hop, and each file's `@cert-authority` lines with
/// their numbers (parsed by `probe::ssh::client`).
const CLIENT_VIEW_SCRIPT: &str = r#"printf 'now %s %s\n' "$(date +%s)" "$(date +%Y-%m-%dT%H:%M:%S)"; cfg=$(ssh -G "$@") || exit $?; printf '%s\n' "$cfg" | grep -E '^(global|user)knownhostsfile '; for f in $(printf '%s\n' "$cfg" | sed -n 's/^\(global\|user\)knownhostsfile //p'); do case $f in "~/"*) f="$HOME/${f#"~/"}";; esac; if [ -r "$f" ]; then printf 'file %s\n' "$f"; grep -n '@cert-authority' "$f"; elif [ -e "$f" ]; then printf 'unreadable %s\n' "$f"; else printf 'absent %s\n' "$f"; fi; done; true"#;

/// A user's shadow hash and deployed hash file, as sha256 (parsed by `probe::hashes`).
const USER_HASH_SCRIPT: &str = r#"u="$1"; shift; printf 'shadow '; getent shadow "$u" | cut -d: -f2 | tr -d '\n' | sha256sum | cut -d' ' -f1; for f in "$@"; do if [ -e "$f" ]; then printf 'file %s ' "$f"; tr -d '\n' < "$f" | sha256sum | cut -d' ' -f1; fi; done"#;
/// sha256 of each deployed file among the paths given (parsed by `probe::hashes`).
const FILE_HASH_SCRIPT: &str = r#"for f in "$@"; do if [ -e "$f" ]; then printf '%s ' "$f"; sha256sum < "$f" | cut -d' ' -f1; fi; done; true"#;

/// Generation, current system, switch time, clock, artefact hashes and watched units' age and
/// definition (parsed by `probe::nixos::parse_state`).
const STATE_SCRIPT: &str = r#"printf 'profile %s\n' "$(readlink /nix/var/nix/profiles/system 2>/dev/null || echo -)"
printf 'profile-path %s\n' "$(readlink -f /nix/var/nix/profiles/system 2>/dev/null || echo -)"
printf 'current %s\n' "$(readlink -f /run/current-system 2>/dev/null || echo -)"
printf 'switched %s\n' "$(stat -c %.3Y /run/current-system 2>/dev/null || echo 0)"
printf 'now %s\n' "$(date +%s.%N)"
units=0
for a in "$@"; do
  if [ "$a" = "--units" ]; then units=1; continue; fi
  if [ $units = 0 ]; then
    if [ -e "$a" ]; then printf 'file %s %s\n' "$a" "$(sha256sum < "$a" | cut -d' ' -f1)"; else printf 'file %s -\n' "$a"; fi
  else
    props=$(systemctl show -p MainPID -p ExecMainStartTimestampMonotonic "$a" 2>/dev/null)
    pid=$(printf '%s\n' "$props" | sed -n 's/^MainPID=//p')
    mono=$(printf '%s\n' "$props" | sed -n 's/^ExecMainStartTimestampMonotonic=//p')
    age=-
    if [ -n "$pid" ] && [ "$pid" != 0 ] && [ -n "$mono" ] && [ "$mono" != 0 ]; then
      age=$(awk -v m="$mono" '{printf "%.2f", $1 - m / 1000000}' /proc/uptime)
    fi
    def=$(sha256sum < "/run/current-system/etc/systemd/system/$a" 2>/dev/null | cut -d' ' -f1)
    printf 'unit %s %s %s %s\n' "$a" "${pid:-0}" "$age" "${def:--}"
  fi
done"#;
