//! One machine's status (AC1–AC4 read it): the overlay's, the units', sshd's and the deployed
//! vars', each kept as [`Seen`] with its command.

use std::collections::BTreeMap;

use crate::expectations::Expectations;
use crate::overlay::OverlayStatus;
use crate::plan::{host_cert_cmd, units_of_interest, Probe, Step};
use crate::probe::hashes::{parse_file_hashes, parse_user_hashes, UserHashes};
use crate::probe::ssh::{
    parse_cert_authorities, parse_keygen_l, parse_sshd_t, CertAuthority, KeygenCertificate,
};
use crate::probe::systemd::{parse_show, UnitState};
use crate::probe::{excerpt, ProbeError};
use crate::seen::Seen;
use crate::transport::{Cmd, Output};

/// Everything observed on one machine, shared by AC1, AC3 and AC4.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MachineStatus {
    /// The overlay daemon's own status.
    pub overlay: OverlayStatus,
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

fn pe(e: ProbeError) -> String {
    e.to_string()
}

/// Reads the status steps' answers; `follow_up` runs the one command that depends on an answer
/// (the host certificate sshd names).
pub(super) fn read(
    exp: &Expectations,
    answers: Vec<(&Step, Result<Output, String>)>,
    follow_up: impl Fn(&Cmd) -> Result<Output, String>,
) -> MachineStatus {
    let mut overlay = Vec::new();
    let mut units = None;
    let mut sshd = None;
    let mut cas = None;
    let mut kernel = None;
    let mut secrets = None;
    let mut users = BTreeMap::new();
    let mut shared = BTreeMap::new();
    for (step, r) in answers {
        let c = &step.cmd;
        match &step.probe {
            Probe::Overlay(_) => overlay.push((c.clone(), r)),
            Probe::Units => units = Some(units_seen(exp, c, r)),
            Probe::Sshd => sshd = Some(Seen::of(c, r, |o| parse_sshd_t(&o.stdout).map_err(pe))),
            Probe::CertAuthorities => {
                cas = Some(Seen::of(c, r, |o| {
                    if o.success() {
                        parse_cert_authorities(&o.stdout).map_err(pe)
                    } else {
                        Ok(Vec::new())
                    }
                }))
            }
            Probe::KernelParams => {
                kernel = Some(Seen::of(c, r, |o| {
                    if o.success() {
                        Ok(o.stdout.trim().to_string())
                    } else {
                        Err(format!(
                            "cannot read kernel-params: {}",
                            excerpt(&o.stderr, 120)
                        ))
                    }
                }))
            }
            Probe::SecretsVars => {
                secrets = Some(Seen::of(c, r, |o| {
                    Ok(o.stdout.lines().map(String::from).collect::<Vec<_>>())
                }))
            }
            Probe::User(u) => {
                users.insert(
                    u.clone(),
                    Seen::of(c, r, |o| parse_user_hashes(&o.stdout, &o.stderr, o.exit)),
                );
            }
            Probe::Shared(rel) => {
                shared.insert(
                    rel.clone(),
                    Seen::of(c, r, |o| parse_file_hashes(&o.stdout)),
                );
            }
            Probe::Ping(_) | Probe::Hop(_) | Probe::ClientView | Probe::SystemState => {}
        }
    }
    let sshd = sshd.unwrap_or_else(|| Seen::not_run("internal: no sshd -T probe".into()));
    let host_cert = sshd
        .ok()
        .and_then(|m| m.get("hostcertificate"))
        .and_then(|v| v.first())
        .and_then(|path| host_cert_cmd(path))
        .map(|cmd| {
            Seen::of(&cmd, follow_up(&cmd), |o| {
                parse_keygen_l(&o.stdout).map_err(pe)
            })
        });

    MachineStatus {
        overlay: exp.config.overlay.read_status(overlay),
        units: or_missing(units, "systemctl show"),
        sshd,
        host_cert,
        cert_authorities: or_missing(cas, "known_hosts"),
        kernel_params: or_missing(kernel, "kernel-params"),
        secrets_vars: or_missing(secrets, "secrets"),
        users,
        shared,
    }
}

/// A status probe the plan should always hold; said, not assumed, if it is missing.
fn or_missing<T>(s: Option<Seen<T>>, what: &str) -> Seen<T> {
    s.unwrap_or_else(|| Seen::not_run(format!("internal: the plan has no {what} probe")))
}

/// `systemctl show` prints one block per unit, in the order asked.
fn units_seen(
    exp: &Expectations,
    cmd: &Cmd,
    r: Result<Output, String>,
) -> Seen<BTreeMap<String, UnitState>> {
    let names = units_of_interest(exp);
    Seen::of(cmd, r, |o| {
        let states = parse_show(&o.stdout).map_err(pe)?;
        if states.len() != names.len() {
            return Err(format!(
                "systemctl show printed {} blocks for {} units",
                states.len(),
                names.len()
            ));
        }
        Ok(names.iter().cloned().zip(states).collect())
    })
}
