//! Deploying a machine's system, the lab's `clan machines update`: the private files a machine
//! gets from the lab's keys (deployed vars, sshd and yggdrasil configuration, root's shadow), its
//! closure in the lab store, numbered generations, and `rebuild`, which switches a machine to
//! its newly evaluated configuration.

use std::path::{Path, PathBuf};

use crate::error::LabError;
use crate::files::{io, mkdir, write};
use crate::state::{LabMachine, LabState, StateLock};
use crate::{binds, machine, sshd, system};

/// root's password hash in the lab (of the lab-only test password `lab-only-test-password`):
/// the users-root var deployed to every machine and the shadow field it must match.
pub const LAB_ROOT_HASH: &str =
    "$6$clanlabtestsalt$H9/pb5UJDuJDg6PwI3fTb.PdTwwzbBbVuLtKZS7w2W1Rdyyoq2YYW6Nr8GHq7Jun8JXo.DOG7Spyi2qpq99Z2/";

/// The system machine `m` should run per the lab repo.
pub(crate) fn current_system(state: &LabState, m: &LabMachine) -> Result<system::System, LabError> {
    let cfg = system::read_config(state)?;
    system::evaluate(state, &cfg, m).map_err(LabError::Invalid)
}

/// (Re)writes a machine's private files from the lab's keys: what `lab heal` restores.
pub(crate) fn write_machine_files(state: &LabState, m: &LabMachine) -> Result<(), LabError> {
    let md = state.mdir(&m.name);
    let keys = md.join("keys");
    let k = |f: &str| std::fs::read_to_string(keys.join(f)).map_err(|e| io(&keys.join(f), e));
    let run_dir = md.join("run");
    let etc = md.join("etc-ssh");
    for d in [
        &run_dir,
        &etc,
        &md.join("root/.ssh"),
        &md.join("log"),
        &md.join("etc-yggdrasil"),
    ] {
        mkdir(d)?;
    }
    for d in ["secrets/vars/shared", "secrets-for-users"] {
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
    // sshd: host key from vars, the certificate where NixOS has a public var (a store path),
    // the CA line as clan's client role writes it.
    let cert = write_store_file(
        state,
        &m.name,
        &cert_store_suffix(&m.name),
        &k("host-cert.pub")?,
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
        host_cert: Some(PathBuf::from(cert)),
        authorized_keys: "/etc/ssh/authorized_keys.d/%u".into(),
        pid_file: PathBuf::from("/run/sshd.pid"),
        use_pam: true,
    };
    write(&etc.join("sshd_config"), &cfg.render(), 0o644)?;
    // root's own key (clan's generateRootKey) for machine-to-machine SSH.
    write(&md.join("root/.ssh/id_ed25519"), &k("root")?, 0o600)?;
    write(&md.join("root/.ssh/id_ed25519.pub"), &k("root.pub")?, 0o644)?;
    // root's shadow hash is the users-root var: the machine's activation sets it at boot.
    // yggdrasil: listen on the underlay, peer with every other machine (clan builds peers from
    // the other machines' exported hosts), admin socket where NixOS puts it, no multicast.
    let sys = current_system(state, m)?;
    let mut conf = ygg.clone();
    conf["Listen"] = serde_json::json!([format!("tcp://{}:{}", m.underlay_ip, sys.port)]);
    conf["Peers"] = serde_json::json!(sys.peers);
    conf["AdminListen"] = serde_json::json!("unix:///run/yggdrasil/yggdrasil.sock");
    conf["IfName"] = serde_json::json!("ygg0");
    conf["MulticastInterfaces"] = serde_json::json!([]);
    if state.zerotier.is_some() {
        return Ok(()); // the ZeroTier lab runs no yggdrasil
    }
    write(
        &md.join("etc-yggdrasil/yggdrasil.conf"),
        &serde_json::to_string_pretty(&conf).unwrap_or_default(),
        0o600,
    )
}

/// A public var's store name, as clan names it: `per-machine-<m>-<generator>_<file>`.
pub(crate) fn cert_store_suffix(m: &str) -> String {
    format!("per-machine-{m}-openssh-cert_ssh.id_ed25519-cert.pub")
}

/// 32 characters of sha256 over `parts`, in Nix's base32 alphabet's look (no e, o, u, t).
fn store_hash<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
        h.update([0]);
    }
    hex::encode(h.finalize())
        .chars()
        .map(|c| if c == 'e' { 'z' } else { c })
        .take(32)
        .collect()
}

/// Writes one file into machine `m`'s lab store, named by its content as Nix names a file
/// added to the store; returns the path as the machine sees it (`/nix/store/<hash>-<suffix>`).
pub(crate) fn write_store_file(
    state: &LabState,
    m: &str,
    suffix: &str,
    content: &str,
) -> Result<String, LabError> {
    let name = format!(
        "{}-{suffix}",
        store_hash([suffix.as_bytes(), content.as_bytes()])
    );
    write(&state.mdir(m).join("nix/store").join(&name), content, 0o644)?;
    Ok(format!("/nix/store/{name}"))
}

/// The host certificate machine `m`'s sshd is configured with (its `HostCertificate` line), as
/// a path on the host.
pub(crate) fn served_cert_file(state: &LabState, m: &str) -> Result<PathBuf, LabError> {
    let cfg = state.mdir(m).join("etc-ssh/sshd_config");
    let text = std::fs::read_to_string(&cfg).map_err(|e| io(&cfg, e))?;
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("HostCertificate "))
        .ok_or_else(|| LabError::Invalid(format!("{}: no HostCertificate line", cfg.display())))?;
    let rel = path
        .trim()
        .strip_prefix("/nix/store/")
        .filter(|r| !r.is_empty() && !r.contains('/'))
        .ok_or_else(|| {
            LabError::Invalid(format!(
                "{}: HostCertificate {path} is not a store file",
                cfg.display()
            ))
        })?;
    Ok(state.mdir(m).join("nix/store").join(rel))
}

/// Points machine `m`'s sshd at another certificate (a redeploy with another cert var).
pub(crate) fn set_served_cert(state: &LabState, m: &str, content: &str) -> Result<(), LabError> {
    let cert = write_store_file(state, m, &cert_store_suffix(m), content)?;
    let cfg = state.mdir(m).join("etc-ssh/sshd_config");
    let text = std::fs::read_to_string(&cfg).map_err(|e| io(&cfg, e))?;
    let new: String = text
        .lines()
        .map(|l| {
            if l.starts_with("HostCertificate ") {
                format!("HostCertificate {cert}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    write(&cfg, &new, 0o644)
}

/// Writes machine `m`'s evaluated system into its lab store; returns the store path as the
/// machine sees it. The name is the hash of the content: same configuration, same closure.
pub(crate) fn write_closure(
    state: &LabState,
    m: &LabMachine,
    sys: &system::System,
) -> Result<String, LabError> {
    let mut files = system::closure(m, sys, state.zerotier.is_none());
    if let Some(zt) = &state.zerotier {
        files.extend(crate::zerotier::closure_files(
            state, zt, &m.name, sys.zt_mtu,
        ));
    }
    let hash = store_hash(files.iter().flat_map(|(p, c)| [p.as_bytes(), c.as_bytes()]));
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

/// Registers `path` as generation `n` (the system profile) and, when the machine runs,
/// activates it there, as `switch-to-configuration` does: the machine's activation unit points
/// `/run/current-system` at it. A machine that is not up yet activates it when it boots.
pub(crate) fn switch_to(state: &LabState, m: &str, n: u32, path: &str) -> Result<(), LabError> {
    let md = state.mdir(m);
    let profiles = md.join("nix/var/nix/profiles");
    mkdir(&profiles)?;
    relink(&profiles.join(format!("system-{n}-link")), path)?;
    relink(&profiles.join("system"), &format!("system-{n}-link"))?;
    if state.init(m).is_ok() {
        machine::systemctl(state, m, "restart", &["clan-lab-activation.service"])?;
    }
    Ok(())
}

fn relink(link: &Path, target: &str) -> Result<(), LabError> {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link).map_err(|e| io(link, e))
}
/// `lab rebuild <machine>`: the lab's `clan machines update`. Evaluates the lab repo's
/// configuration for the machine, builds its closure, registers a new numbered generation and
/// switches to it when the closure changed, rewrites the deployed files, and restarts yggdrasil
/// when its settings changed, unless the machine's `restart_on_switch` is false (mirroring clan
/// leaving running services alone). Says what it does through `log`, line by line as it happens,
/// so that a deploy log keeps what ran before a failure.
pub fn rebuild(dir: &Path, m: &str, log: &mut dyn FnMut(&str)) -> Result<(), LabError> {
    let _lock = StateLock::take(dir)?;
    let state = LabState::require(dir)?;
    let mach = state.machine(m)?.clone();
    let md = state.mdir(m);
    // The machine must still show what the lab deploys, or the rebuild proves nothing.
    binds::require_bound(&state)?;
    log(&format!(
        "evaluating the configuration of {m} ({})",
        state.dir.join("clan/lab-config.json").display()
    ));
    let cfg = system::read_config(&state)?;
    let sys = system::evaluate(&state, &cfg, &mach).map_err(|e| LabError::Tool {
        tool: format!("lab rebuild {m}"),
        reason: e,
    })?;
    let path = write_closure(&state, &mach, &sys)?;
    log(&format!("built {path}"));
    let current = state
        .exec_in(m, &["readlink", "-f", "/run/current-system"])
        .map(|p| p.trim().to_string())
        .unwrap_or_default();
    let in_lab = |store_path: &str| md.join(store_path.trim_start_matches('/'));
    // As NixOS's switch does: the overlay unit is restarted when its definition changed.
    let unit = if state.zerotier.is_some() {
        "zerotierone.service"
    } else {
        "yggdrasil.service"
    };
    let definition = |store_path: &str| {
        std::fs::read_to_string(in_lab(store_path).join("etc/systemd/system").join(unit))
            .unwrap_or_default()
    };
    let (old_def, new_def) = (definition(&current), definition(&path));
    if current == path {
        log(&format!(
            "{m}: the system closure did not change; generation {} stays active",
            last_generation(&state, m)
        ));
        return Ok(());
    }
    let n = last_generation(&state, m) + 1;
    write_machine_files(&state, &mach)?;
    switch_to(&state, m, n, &path)?;
    log(&format!("{m}: switched to generation {n}"));
    if let Some(zt) = &state.zerotier {
        crate::zerotier::write_machine_files(&state, zt, m)?;
    }
    if old_def != new_def {
        if sys.restart_on_switch {
            log(&format!("{m}: restarting {unit} (its definition changed)"));
            if state.zerotier.is_some() {
                machine::systemctl(&state, m, "daemon-reload", &[])?;
                machine::systemctl(&state, m, "restart", &[unit])?;
            } else {
                machine::restart_overlay(&state, m)?;
            }
        } else {
            log(&format!(
                "{m}: {unit} changed but was not restarted (restart_on_switch = false)"
            ));
        }
    }
    Ok(())
}
