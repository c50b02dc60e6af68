//! AC3: service instances deployed as the inventory says. The resolved instances are compared with
//! the pinned snapshot; then, per (instance, role, machine), module-aware probes look for the
//! role's markers on members (and their absence on non-members where observable). Modules with no
//! known probe are reported as unchecked, never silently passed.

use serde_json::Value;

use super::{probe_failed, probe_unchecked, Finding, Severity, Verdict};
use crate::expectations::Expectations;
use crate::inventory::snapshot_name;
use crate::names::Criterion;
use crate::observe::{MachineStatus, Observations};
use crate::overlay::{yggdrasil, zerotier};
use crate::probe::hashes::EMPTY_SHA256;

fn members(v: &Value, inst: &str, role: &str) -> Vec<String> {
    v.get(inst)
        .and_then(|i| i.get("roles"))
        .and_then(|r| r.get(role))
        .and_then(|r| r.get("members"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| m.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn compare_snapshot(exp: &Expectations, pinned: Option<&Value>, f: &mut Vec<Finding>) {
    let name = snapshot_name(&exp.inventory);
    let current = exp.inventory.snapshot_value();
    let Some(pinned) = pinned else {
        f.push(
            Finding::new(
                Severity::Warn,
                "inventory.unpinned",
                "workstation",
                "inventory snapshot",
            )
            .seen(format!("no snapshots/{name}.snap"))
            .expected("a reviewed snapshot")
            .cause("first run: review and accept it with `cargo insta review`"),
        );
        return;
    };
    if *pinned == current {
        f.push(
            Finding::new(
                Severity::Pass,
                "inventory.pinned",
                "workstation",
                "inventory instances",
            )
            .seen(format!("matches snapshots/{name}.snap"))
            .expected("unchanged"),
        );
        return;
    }
    let empty = serde_json::Map::new();
    let (p, c) = (
        pinned.as_object().unwrap_or(&empty),
        current.as_object().unwrap_or(&empty),
    );
    let mut any = false;
    for inst in p
        .keys()
        .chain(c.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (pi, ci) = (p.get(inst), c.get(inst));
        if pi == ci {
            continue;
        }
        any = true;
        let roles: std::collections::BTreeSet<String> = [pi, ci]
            .iter()
            .flatten()
            .filter_map(|i| i.get("roles"))
            .filter_map(Value::as_object)
            .flat_map(|r| r.keys().cloned())
            .collect();
        let mut described = false;
        for role in roles {
            let (pm, cm) = (members(pinned, inst, &role), members(&current, inst, &role));
            if pm == cm {
                continue;
            }
            described = true;
            let changed: Vec<&String> = pm
                .iter()
                .filter(|m| !cm.contains(m))
                .chain(cm.iter().filter(|m| !pm.contains(m)))
                .collect();
            let machine = changed
                .first()
                .map_or("workstation".to_string(), |m| m.to_string());
            f.push(Finding::new(Severity::Fail, "inventory.changed", &machine, format!("instance {inst} role {role} members")).command(&exp.inventory_origin).seen(format!("{cm:?}")).expected(format!("{pm:?} (snapshots/{name}.snap)")).cause("the inventory changed since the snapshot was reviewed: if intended, run `cargo insta review`; otherwise fix the inventory"));
        }
        if !described {
            f.push(Finding::new(Severity::Fail, "inventory.changed", "workstation", format!("instance {inst}")).command(&exp.inventory_origin).seen(ci.map_or("absent".into(), |v| v.to_string())).expected(pi.map_or("absent".into(), |v| v.to_string())).cause("the inventory changed since the snapshot was reviewed: if intended, run `cargo insta review`"));
        }
    }
    if !any {
        f.push(
            Finding::new(
                Severity::Fail,
                "inventory.changed",
                "workstation",
                "inventory instances",
            )
            .seen("differs")
            .expected(format!("snapshots/{name}.snap"))
            .cause("run `cargo insta review`"),
        );
    }
}

impl Finding {
    fn command(mut self, c: &str) -> Finding {
        self.command = c.to_string();
        self
    }
}

fn unit_check(
    f: &mut Vec<Finding>,
    st: &MachineStatus,
    m: &str,
    unit: &str,
    code: &'static str,
    role: &str,
) {
    match st.units.ok().and_then(|u| u.get(unit)) {
        None => f.push(probe_failed(
            m,
            &format!("{unit} ({role})"),
            &st.units,
            "unit state",
        )),
        Some(u) if u.loaded() && u.active() => f.push(
            Finding::new(Severity::Pass, code, m, format!("{unit} ({role})"))
                .seen("active")
                .expected("active"),
        ),
        Some(u) => {
            // systemd says how the unit ended: a failed unit's last run failed (its Result and
            // exit status say how); an inactive one with Result=success was stopped or never
            // started.
            let failed = u.get("ActiveState") == "failed";
            let how = if failed {
                format!(
                    "{unit} failed on {m} (Result={}, ExecMainStatus={}): its process exited with \
                     an error or was killed, and systemd gave up restarting it",
                    u.get("Result"),
                    u.get("ExecMainStatus")
                )
            } else if u.loaded() {
                format!(
                    "{unit} is {} on {m} without having failed (Result={}): it was stopped or \
                     never started",
                    u.get("ActiveState"),
                    u.get("Result")
                )
            } else {
                format!(
                    "{unit} is not installed on {m} (LoadState={})",
                    u.get("LoadState")
                )
            };
            f.push(
                Finding::new(Severity::Fail, code, m, format!("{unit} ({role})"))
                    .evidence(&st.units)
                    .seen(format!(
                        "LoadState={} ActiveState={} SubState={} Result={}",
                        u.get("LoadState"),
                        u.get("ActiveState"),
                        u.get("SubState"),
                        u.get("Result")
                    ))
                    .expected("loaded and active")
                    .cause(format!(
                        "{how}; it should run on every member of {role}: see `journalctl -u {unit}`"
                    )),
            )
        }
    }
}

/// A zerotier instance member has joined the instance's network; UNCHECKED with the command's
/// own words when `listnetworks` failed, or when the repo names no network.
fn zt_member(
    exp: &Expectations,
    st: &MachineStatus,
    m: &str,
    iname: &str,
    label: &str,
    f: &mut Vec<Finding>,
) {
    let subject = format!("joined network of {label}");
    let Some(nets) = st.overlay.zerotier().map(|z| &z.networks) else {
        return;
    };
    let Some(net) = exp.oracle.zerotier_network(iname) else {
        f.push(
            Finding::unchecked(
                "zt.member",
                m,
                subject,
                format!(
                    "the clan repo has no network id for {iname} (AC1 fails it: oracle.missing)"
                ),
            )
            .expected("a network id to look for"),
        );
        return;
    };
    let want = net.id.value;
    match nets.ok() {
        None => f.push(probe_unchecked("zt.member", m, subject, nets, format!("network {want} listed"))),
        Some(list) if list.iter().any(|n| n.id == want) => f.push(
            Finding::new(Severity::Pass, "zt.member", m, subject)
                .seen(want.to_string())
                .expected(want.to_string()),
        ),
        Some(list) => f.push(
            Finding::new(Severity::Fail, "zt.member", m, subject)
                .evidence(nets)
                .seen(format!("joined: [{}]", list.iter().map(|n| format!("{} {}", n.id, n.status)).collect::<Vec<_>>().join(", ")))
                .expected(format!("network {want} listed"))
                .cause(format!("{m} is a member of {label} but has not joined its network {want}: it runs another network id (a recreated network?) or zerotierone was not configured")),
        ),
    }
}

/// The sshd client role's `@cert-authority` line for `*.<domain>` names the repo's CA.
fn client_ca(
    exp: &Expectations,
    st: &MachineStatus,
    cas: &[crate::probe::ssh::CertAuthority],
    m: &str,
    principal: &str,
    label: &str,
    repo_ca: Option<&str>,
) -> Finding {
    let subject = format!("@cert-authority ({label})");
    let line = cas.iter().find(|c| c.matches(principal));
    match (line, repo_ca) {
        (Some(l), Some(fp)) if l.fingerprint == fp => Finding::new(Severity::Pass, "sshd.client-ca", m, subject).seen(l.fingerprint.clone()).expected(fp.to_string()),
        (Some(l), None) => Finding::new(Severity::Pass, "sshd.client-ca", m, subject).seen(l.fingerprint.clone()).expected("a CA line (repo has no openssh-ca to compare)"),
        (Some(l), Some(fp)) => Finding::new(Severity::Fail, "sshd.client-no-ca", m, subject)
            .evidence(&st.cert_authorities)
            .seen(format!("@cert-authority for {principal} names CA {}", l.fingerprint))
            .expected(format!("{fp} (vars/shared/openssh-ca)"))
            .cause(format!("{m} trusts another CA for *.{} than the clan's shared openssh-ca: its known_hosts comes from an older or foreign configuration; redeploy {m}", exp.domain)),
        (None, fp) => Finding::new(Severity::Fail, "sshd.client-no-ca", m, subject)
            .evidence(&st.cert_authorities)
            .seen(format!("no @cert-authority line matching {principal} (the file holds {} @cert-authority line(s))", cas.len()))
            .expected(fp.map_or("an @cert-authority line".to_string(), |f| format!("@cert-authority *.{} with {f}", exp.domain)))
            .cause(format!("{m} holds the sshd client role ({label}) but its known_hosts has no CA line for *.{}: the deployed configuration predates the role or the line was removed; redeploy {m}", exp.domain)),
    }
}

/// Why sshd serves no HostCertificate, from what the repo holds.
fn no_cert_cause(exp: &Expectations, m: &str) -> String {
    match exp.oracle.machines.get(m).and_then(|v| v.host_cert.as_ref()) {
        Some(cert) => format!("the repo holds a host certificate for {m} ({}) but the running sshd does not serve it: the deployed configuration predates the certificate or turns certificates off; redeploy {m}", cert.path.strip_prefix(&exp.config.clan_dir).unwrap_or(&cert.path).display()),
        None => "certificates are off and the repo has none for this machine: clan-core before 2026-02-17 without searchDomains, or certificate.enable = false".to_string(),
    }
}

/// Judges AC3.
pub fn evaluate(exp: &Expectations, obs: &Observations) -> Verdict {
    let status = &obs.status;
    let mut f = Vec::new();
    let mut notes = Vec::new();
    compare_snapshot(exp, exp.pinned_instances.as_ref(), &mut f);
    let in_fleet = exp.machines();
    let ca_fp = exp.oracle.ca_fingerprint();
    for (iname, inst) in &exp.inventory.instances {
        let module = inst.module.name.as_str();
        for (rname, role) in &inst.roles {
            let label = format!("{iname}/{rname}");
            for m in role
                .members
                .iter()
                .filter(|m| in_fleet.contains(&m.as_str()))
            {
                let Some(st) = status.get(m) else {
                    f.push(
                        Finding::unchecked(
                            "role.unseen",
                            m,
                            label.clone(),
                            "the machine's status was not observed in this run",
                        )
                        .expected(format!("the markers of {module}'s {rname} role")),
                    );
                    continue;
                };
                match (module, rname.as_str()) {
                    ("zerotier", _) => {
                        unit_check(&mut f, st, m, zerotier::UNIT, "zt.unit", &label);
                        zt_member(exp, st, m, iname, &label, &mut f);
                    }
                    ("yggdrasil", _) => {
                        unit_check(&mut f, st, m, yggdrasil::UNIT, "ygg.unit", &label);
                        if let Some(me) = st.overlay.yggdrasil().map(|y| &y.me) {
                            match me.ok() {
                                Some(s) => f.push(
                                    Finding::new(
                                        Severity::Pass,
                                        "ygg.member",
                                        m,
                                        format!("yggdrasil node of {label}"),
                                    )
                                    .seen(s.address.to_string())
                                    .expected("the daemon answers"),
                                ),
                                None => f.push(probe_failed(
                                    m,
                                    &format!("yggdrasil node of {label}"),
                                    me,
                                    "yggdrasilctl answers getSelf",
                                )),
                            }
                        }
                    }
                    ("sshd", "server") => {
                        unit_check(&mut f, st, m, "sshd.service", "sshd.unit", &label);
                        match st.sshd.ok() {
                            None => {
                                f.push(probe_failed(m, "sshd -T", &st.sshd, "sshd configuration"))
                            }
                            Some(cfg) => {
                                if cfg.get("hostcertificate").is_some_and(|v| !v.is_empty()) {
                                    f.push(
                                        Finding::new(
                                            Severity::Pass,
                                            "sshd.cert",
                                            m,
                                            "HostCertificate configured",
                                        )
                                        .seen(cfg["hostcertificate"].join(" "))
                                        .expected("set"),
                                    );
                                } else {
                                    f.push(
                                        Finding::new(
                                            Severity::Fail,
                                            "sshd.no-cert",
                                            m,
                                            format!("HostCertificate ({label})"),
                                        )
                                        .evidence(&st.sshd)
                                        .seen("no hostcertificate in sshd -T")
                                        .expected("HostCertificate set to the openssh-cert var")
                                        .cause(no_cert_cause(exp, m)),
                                    );
                                }
                                if cfg
                                    .get("passwordauthentication")
                                    .and_then(|v| v.first())
                                    .is_some_and(|v| v == "yes")
                                {
                                    f.push(Finding::new(Severity::Fail, "sshd.password-auth", m, "PasswordAuthentication").evidence(&st.sshd).seen("yes").expected("no").cause("the clan sshd server role turns passwords off: configuration drift"));
                                }
                            }
                        }
                    }
                    ("sshd", "client") => {
                        let principal = exp.principal(m);
                        match st.cert_authorities.ok() {
                            None => f.push(probe_failed(
                                m,
                                "/etc/ssh/ssh_known_hosts",
                                &st.cert_authorities,
                                "@cert-authority line",
                            )),
                            Some(cas) => {
                                f.push(client_ca(
                                    exp,
                                    st,
                                    cas,
                                    m,
                                    &principal,
                                    &label,
                                    ca_fp.as_deref(),
                                ));
                            }
                        }
                    }
                    ("emergency-access", _) => {
                        match st.kernel_params.ok() {
                            Some(p) if p.split_whitespace().any(|w| w == "root=fstab") => f.push(Finding::new(Severity::Pass, "ea.initrd", m, "systemd-initrd in use").seen("root=fstab").expected("root=fstab")),
                            Some(p) => f.push(Finding::new(Severity::Fail, "ea.no-systemd-initrd", m, format!("systemd initrd ({label})")).evidence(&st.kernel_params).seen(crate::redact::excerpt(p, 120)).expected("root=fstab in /run/current-system/kernel-params").cause("boot.initrd.systemd.enable is off, so boot.initrd.systemd.emergencyAccess has no effect")),
                            None => f.push(probe_failed(m, "kernel-params", &st.kernel_params, "root=fstab")),
                        }
                        if exp
                            .oracle
                            .machines
                            .get(m)
                            .is_some_and(|v| v.emergency_password_hash)
                        {
                            f.push(
                                Finding::new(
                                    Severity::Pass,
                                    "ea.hash-var",
                                    m,
                                    "emergency-access/password-hash var",
                                )
                                .seen("present")
                                .expected("present"),
                            );
                        } else {
                            f.push(
                                Finding::new(
                                    Severity::Fail,
                                    "ea.no-hash-var",
                                    m,
                                    format!("emergency-access var ({label})"),
                                )
                                .seen("missing")
                                .expected(format!(
                                    "vars/per-machine/{m}/emergency-access/password-hash/value"
                                ))
                                .cause("vars not generated: run `clan vars generate`"),
                            );
                        }
                        if let Some(u) = st
                            .units
                            .ok()
                            .and_then(|u| u.get("emergency-access.service"))
                        {
                            f.push(Finding::new(Severity::Info, "ea.no-unit", m, "emergency-access.service").seen(format!("LoadState={}", u.get("LoadState"))).expected("not-found: the module sets boot.initrd.systemd.emergencyAccess and has no unit (the story's `systemctl status emergency-access` proves nothing)"));
                        }
                    }
                    ("users", _) => {
                        let s = exp.inventory.effective_settings(iname, rname, m);
                        let user = s.get("user").and_then(Value::as_str).unwrap_or(iname);
                        match st.users.get(user) {
                            None => f.push(Finding::unchecked("users.unprobed", m, format!("user {user} ({label})"), format!("no probe ran: {user:?} is not a name the harness puts in a command")).expected("hash comparison")),
                            Some(seen) => match seen.ok() {
                                None => f.push(probe_failed(m, &format!("password hash of {user}"), seen, "sha256 of shadow field and hash file")),
                                Some(h) if h.shadow == EMPTY_SHA256 => f.push(Finding::new(Severity::Fail, "users.no-password", m, format!("{user}'s password ({label})")).evidence(seen).seen("no password hash in shadow").expected("the user-password hash").cause("users.users.<u>.hashedPasswordFile was not applied")),
                                Some(h) => match &h.file {
                                    None => f.push(Finding::new(Severity::Fail, "users.hash-missing", m, format!("deployed user-password-{user} hash ({label})")).evidence(seen).seen("no hash file under /run/secrets-for-users").expected("the deployed user-password-hash").cause("secrets not uploaded (`clan vars upload`) or sops-nix failed at boot")),
                                    Some((path, fh)) if fh != &h.shadow => f.push(Finding::new(Severity::Fail, "users.hash-mismatch", m, format!("{user}'s shadow hash vs {path} ({label})")).evidence(seen).seen(format!("sha256 shadow {}…, file {}…", &h.shadow[..12.min(h.shadow.len())], &fh[..12.min(fh.len())])).expected("equal sha256").cause(format!("{user}'s password was changed on the machine, or the new var was deployed without re-activating users (mutableUsers = false should prevent drift)"))),
                                    Some((path, _)) => f.push(Finding::new(Severity::Pass, "users.hash", m, format!("{user}'s shadow hash equals {path}")).seen("equal sha256").expected("equal sha256")),
                                },
                            },
                        }
                    }
                    (other, _) => match exp.config.modules.get(other) {
                        Some(p) if !p.units.is_empty() => {
                            for u in &p.units {
                                unit_check(&mut f, st, m, u, "module.unit", &label);
                            }
                        }
                        _ => f.push(
                            Finding::new(
                                Severity::Unchecked,
                                "module.unchecked",
                                m,
                                format!("{label} (module {other})"),
                            )
                            .seen("no built-in probe and none in machines.toml")
                            .expected(format!(
                                "add [modules.{other}] units = [...] to machines.toml"
                            )),
                        ),
                    },
                }
            }
        }
    }
    // Non-members should show none of a role's markers where that is observable.
    for m in &in_fleet {
        let Some(st) = status.get(*m) else { continue };
        let holds = |module: &str, role: Option<&str>| {
            exp.inventory.instances_of(module).any(|(_, i)| {
                i.roles
                    .iter()
                    .any(|(r, rr)| role.is_none_or(|x| x == r) && rr.members.iter().any(|x| x == m))
            })
        };
        if !holds("zerotier", None) && exp.inventory.instances_of("zerotier").next().is_some() {
            if let Some(u) = st.units.ok().and_then(|u| u.get("zerotierone.service")) {
                if u.active() {
                    f.push(
                        Finding::new(
                            Severity::Warn,
                            "role.leak",
                            m,
                            "zerotierone.service on a non-member",
                        )
                        .seen("active")
                        .expected("not running: the machine holds no zerotier role")
                        .cause("a stale configuration or a manual install"),
                    );
                }
            }
        }
        for (iname, _) in exp.inventory.instances_of("zerotier") {
            let unit = exp.oracle.autoaccept_unit(iname);
            let is_controller = exp
                .inventory
                .instances
                .get(iname)
                .and_then(|i| i.roles.get("controller"))
                .is_some_and(|r| r.members.iter().any(|x| x == m));
            if !is_controller
                && st
                    .units
                    .ok()
                    .and_then(|u| u.get(&unit))
                    .is_some_and(|u| u.loaded())
            {
                f.push(Finding::new(Severity::Fail, "role.leak", m, format!("{unit} on a non-controller")).evidence(&st.units).seen("loaded").expected("not-found").cause("the machine acts as a ZeroTier controller although the inventory names another"));
            }
        }
        if !holds("sshd", Some("server"))
            && exp.inventory.instances_of("sshd").next().is_some()
            && st
                .sshd
                .ok()
                .is_some_and(|c| c.contains_key("hostcertificate"))
        {
            notes.push(format!(
                "{m}: serves a host certificate without the sshd server role"
            ));
        }
    }
    let unchecked = f.iter().filter(|x| x.code == "module.unchecked").count();
    if unchecked > 0 {
        notes.push(format!("{unchecked} role assignment(s) UNCHECKED: no probe known; they are not counted as passed"));
    }
    Verdict::new(Criterion::Ac3, f, notes)
}
