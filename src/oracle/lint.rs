//! Pre-flight: the clan repo checked against itself, offline, before any machine is touched. The
//! field notes show fleets failing for reasons visible in the repo alone: a controller IP copied
//! wrong, a network recreated while old addresses linger, vars left for machines no longer in the
//! inventory, certificates that do not vouch for their machine.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;
use ssh_key::HashAlg;

use super::zerotier::{rfc4193, split_rfc4193};
use super::Oracle;
use crate::inventory::Inventory;
use crate::transport::hostkey::verify_certificate;

/// How bad an inconsistency is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Worth knowing; does not stop the live tests.
    Warning,
    /// The repo contradicts itself: the live tests refuse to start.
    Error,
}

/// One inconsistency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// Error or warning.
    pub level: Level,
    /// Short rule code.
    pub rule: &'static str,
    /// The machine concerned (or `fleet`).
    pub machine: String,
    /// Files involved, relative to the repo.
    pub files: Vec<String>,
    /// What is wrong.
    pub problem: String,
    /// What the value should be / how to fix.
    pub should: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        write!(
            f,
            "{level} [{}] {}: {}\n    files: {}\n    should: {}",
            self.rule,
            self.machine,
            self.problem,
            self.files.join(", "),
            self.should
        )
    }
}

fn rel(o: &Oracle, p: &std::path::Path) -> String {
    p.strip_prefix(&o.dir).unwrap_or(p).display().to_string()
}

/// Module → the generators a member needs, per clan-core (`reference/clan-core.md`).
fn needs(module: &str, role: &str) -> &'static [&'static str] {
    match (module, role) {
        ("sshd", "server") => &["openssh"],
        ("emergency-access", _) => &["emergency-access"],
        ("yggdrasil", _) => &["yggdrasil"],
        _ => &[],
    }
}

/// Checks the repo's vars (and, when given, the inventory) for contradictions.
pub fn lint(o: &Oracle, inventory: Option<&Inventory>, domain: &str) -> Vec<Issue> {
    let mut out = Vec::new();
    let issue =
        |level, rule, machine: &str, files: Vec<String>, problem: String, should: String| Issue {
            level,
            rule,
            machine: machine.to_string(),
            files,
            problem,
            should,
        };
    // ZeroTier: every address is rfc4193(network id, node id) of the fleet's network.
    for net in &o.zerotier_networks {
        let nwid = net.id.value;
        let net_file = rel(o, &net.id.path);
        let mut controller_seen = false;
        for (m, mv) in &o.machines {
            let ip = match &net.instance {
                Some(i) => mv.zerotier_ip.get(&Some(i.clone())),
                None => mv.zerotier_ip.get(&None),
            };
            let Some(ip) = ip else { continue };
            let file = rel(o, &ip.path);
            match split_rfc4193(ip.value) {
                None => out.push(issue(
                    Level::Error,
                    "zt.not-rfc4193",
                    m,
                    vec![file],
                    format!(
                        "{} is not a ZeroTier rfc4193 address (fd‖network‖9993‖node)",
                        ip.value
                    ),
                    "regenerate the machine's zerotier vars".into(),
                )),
                Some((embedded, node)) => {
                    if node == nwid.controller() {
                        controller_seen = true;
                    }
                    if embedded != nwid {
                        out.push(issue(Level::Error, "zt.wrong-network", m, vec![file, net_file.clone()], format!("address {} belongs to network {embedded}, not to the fleet's network {nwid}", ip.value), format!("{} (rfc4193 of {nwid} and node {node}); the network was recreated and this address lingers: regenerate its vars", rfc4193(nwid, node))));
                    }
                }
            }
        }
        // The network id's first 10 hex digits are the controller's node id.
        let controller = nwid.controller();
        let inv_controller: Option<&String> = inventory.and_then(|inv| {
            inv.instances
                .iter()
                .filter(|(n, i)| {
                    i.module.name == "zerotier" && net.instance.as_ref().is_none_or(|x| x == *n)
                })
                .find_map(|(_, i)| i.roles.get("controller").and_then(|r| r.members.first()))
        });
        if let Some(c) = inv_controller {
            let node = o
                .machines
                .get(c)
                .and_then(|mv| mv.zerotier_ip.values().next())
                .and_then(|ip| split_rfc4193(ip.value))
                .map(|(_, n)| n);
            if let Some(n) = node.filter(|n| *n != controller) {
                out.push(issue(Level::Error, "zt.controller-id", c, vec![net_file.clone()], format!("network id {nwid} names controller node {controller}, but the inventory's controller {c} is node {n}"), format!("a network id starting with {n}: the controller's vars were regenerated without the network's")));
            }
        } else if !controller_seen && o.machines.values().any(|mv| !mv.zerotier_ip.is_empty()) {
            out.push(issue(Level::Warning, "zt.controller-unknown", "fleet", vec![net_file.clone()], format!("no machine's address carries node {controller}, the controller named by network id {nwid}"), "the controller's vars should be in the repo".into()));
        }
    }
    // Host certificates: host type, signed by the shared CA, principal <m>.<domain>, own key.
    for (m, mv) in &o.machines {
        let Some(cert) = &mv.host_cert else { continue };
        let cert_file = rel(o, &cert.path);
        let (Some(ca), Some(key)) = (&o.ca, &mv.host_key) else {
            let missing = if o.ca.is_none() {
                "vars/shared/openssh-ca/id_ed25519.pub"
            } else {
                "the machine's openssh/ssh.id_ed25519.pub"
            };
            out.push(issue(
                Level::Error,
                "ssh.cert-unverifiable",
                m,
                vec![cert_file],
                format!("a host certificate exists but {missing} does not"),
                "generate the openssh and openssh-ca vars together (`clan vars generate`)".into(),
            ));
            continue;
        };
        if let Err(e) = verify_certificate(
            m,
            &format!("{m}.{domain}"),
            &cert.value,
            &cert.path,
            &ca.value,
            &key.value,
        ) {
            let why = match e {
                crate::error::TransportError::HostCertificate { reason, .. } => reason,
                other => other.to_string(),
            };
            out.push(issue(
                Level::Error,
                "ssh.cert-invalid",
                m,
                vec![cert_file, rel(o, &ca.path), rel(o, &key.path)],
                format!("host certificate rejected: {why}"),
                format!(
                    "a host certificate signed by {} for principal {m}.{domain} over key {}",
                    ca.value.fingerprint(HashAlg::Sha256),
                    key.value.fingerprint(HashAlg::Sha256)
                ),
            ));
        }
    }
    // Inventory: members have the vars their roles need; vars of machines outside it are stale.
    if let Some(inv) = inventory {
        let members: BTreeSet<&str> = inv.machines.keys().map(String::as_str).collect();
        for (m, mv) in &o.machines {
            if !members.contains(m.as_str()) {
                let dir = o.dir.join("vars/per-machine").join(m);
                out.push(issue(
                    Level::Warning,
                    "vars.orphan",
                    m,
                    vec![rel(o, &dir)],
                    format!(
                        "vars for {m}, which the inventory does not list ({} generators)",
                        mv.generators.len()
                    ),
                    "remove them (`clan vars` for a deleted machine) or add the machine back"
                        .into(),
                ));
            }
        }
        for (iname, inst) in &inv.instances {
            for (rname, role) in &inst.roles {
                for m in &role.members {
                    let has = |g: &str| {
                        o.machines
                            .get(m)
                            .is_some_and(|mv| mv.generators.contains(g))
                    };
                    let mut missing: Vec<String> = needs(&inst.module.name, rname)
                        .iter()
                        .filter(|g| !has(g))
                        .map(|g| g.to_string())
                        .collect();
                    if inst.module.name == "zerotier"
                        && o.machines.get(m).is_none_or(|mv| mv.zerotier_ip.is_empty())
                    {
                        missing.push(format!("zerotier ip of {iname}"));
                    }
                    if inst.module.name == "users" {
                        let user = inv
                            .effective_settings(iname, rname, m)
                            .get("user")
                            .and_then(|u| u.as_str())
                            .unwrap_or(iname)
                            .to_string();
                        let g = format!("user-password-{user}");
                        let shared = o.files.iter().any(|f| {
                            f.generator == g
                                && f.file == "user-password-hash"
                                && (f.recipients.iter().any(|r| r == m) || f.value.is_some())
                        });
                        if !has(&g) && !shared {
                            missing.push(g);
                        }
                    }
                    if !missing.is_empty() {
                        out.push(issue(
                            Level::Error,
                            "vars.missing",
                            m,
                            vec![format!("vars/per-machine/{m}")],
                            format!(
                                "member of {iname}/{rname} (module {}) without vars: {}",
                                inst.module.name,
                                missing.join(", ")
                            ),
                            "run `clan vars generate` for the machine".into(),
                        ));
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| (b.level, &a.machine, a.rule).cmp(&(a.level, &b.machine, b.rule)));
    out
}

/// What the repo says about one machine, for `clan-coord oracle`.
#[derive(Debug, Clone, Serialize)]
pub struct MachineSummary {
    /// Machine.
    pub machine: String,
    /// ZeroTier addresses by instance (`-` = era A single network), with their node ids.
    pub zerotier: Vec<(String, String, String)>,
    /// Yggdrasil address.
    pub yggdrasil: Option<String>,
    /// Host key fingerprint.
    pub host_key: Option<String>,
    /// Certificate: type, principals, signing CA, binds the host key.
    pub host_cert: Option<String>,
    /// Generators present.
    pub generators: Vec<String>,
}

/// The whole repo summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Repo directory as given.
    pub repo: PathBuf,
    /// ZeroTier vars layout.
    pub zerotier_layout: String,
    /// Networks: instance, id, controller node id.
    pub networks: Vec<(String, String, String)>,
    /// Shared CA fingerprint.
    pub ca: Option<String>,
    /// Shared vars: generator/file with recipients.
    pub shared: Vec<(String, Vec<String>)>,
    /// Per machine.
    pub machines: Vec<MachineSummary>,
    /// Inconsistencies.
    pub issues: Vec<Issue>,
}

/// Summarises the repo and lints it.
pub fn summary(
    o: &Oracle,
    inventory: Option<&Inventory>,
    domain: &str,
    shown_dir: PathBuf,
) -> Summary {
    let machines = o
        .machines
        .iter()
        .map(|(m, mv)| MachineSummary {
            machine: m.clone(),
            zerotier: mv
                .zerotier_ip
                .iter()
                .map(|(i, ip)| {
                    let node = split_rfc4193(ip.value)
                        .map(|(_, n)| n.to_string())
                        .unwrap_or_default();
                    (
                        i.clone().unwrap_or_else(|| "-".into()),
                        ip.value.to_string(),
                        node,
                    )
                })
                .collect(),
            yggdrasil: mv.yggdrasil_ip.as_ref().map(|s| s.value.to_string()),
            host_key: mv
                .host_key
                .as_ref()
                .map(|k| k.value.fingerprint(HashAlg::Sha256).to_string()),
            host_cert: mv.host_cert.as_ref().map(|c| {
                let c = &c.value;
                let binds = mv
                    .host_key
                    .as_ref()
                    .is_some_and(|k| c.public_key() == k.value.key_data());
                format!(
                    "{:?} principals {:?} signed by {} binds host key: {binds}",
                    c.cert_type(),
                    c.valid_principals(),
                    c.signature_key().fingerprint(HashAlg::Sha256)
                )
            }),
            generators: mv.generators.iter().cloned().collect(),
        })
        .collect();
    Summary {
        repo: shown_dir,
        zerotier_layout: format!("{:?}", o.zerotier_layout),
        networks: o
            .zerotier_networks
            .iter()
            .map(|n| {
                (
                    n.instance.clone().unwrap_or_else(|| "-".into()),
                    n.id.value.to_string(),
                    n.id.value.controller().to_string(),
                )
            })
            .collect(),
        ca: o.ca_fingerprint(),
        shared: o
            .shared_files()
            .map(|f| (format!("{}/{}", f.generator, f.file), f.recipients.clone()))
            .collect(),
        machines,
        issues: lint(o, inventory, domain),
    }
}

/// The summary as text: per machine, then the shared values, then every inconsistency.
pub fn render(s: &Summary) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "clan repo {} (zerotier layout: {})",
        s.repo.display(),
        s.zerotier_layout
    );
    for (inst, id, ctl) in &s.networks {
        let _ = writeln!(t, "  zerotier network {inst}: {id} (controller node {ctl})");
    }
    let _ = writeln!(t, "  openssh-ca: {}", s.ca.as_deref().unwrap_or("none"));
    for (f, r) in &s.shared {
        let _ = writeln!(t, "  shared {f} -> [{}]", r.join(", "));
    }
    for m in &s.machines {
        let _ = writeln!(t, "{}", m.machine);
        for (inst, ip, node) in &m.zerotier {
            let _ = writeln!(t, "  zerotier {inst}: {ip} (node {node})");
        }
        if let Some(y) = &m.yggdrasil {
            let _ = writeln!(t, "  yggdrasil: {y}");
        }
        let _ = writeln!(t, "  host key: {}", m.host_key.as_deref().unwrap_or("none"));
        let _ = writeln!(
            t,
            "  host cert: {}",
            m.host_cert.as_deref().unwrap_or("none")
        );
        let _ = writeln!(t, "  generators: {}", m.generators.join(", "));
    }
    let errors = s.issues.iter().filter(|i| i.level == Level::Error).count();
    let _ = writeln!(t, "{} inconsistencies ({errors} errors)", s.issues.len());
    for i in &s.issues {
        let _ = writeln!(t, "{i}");
    }
    t
}
