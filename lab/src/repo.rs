//! The lab's clan repo (public vars in the 2026 layout, placeholder secrets with recipients,
//! inventory serialization) and the machines.toml that points the harness at it. The harness then
//! reads the lab exactly as it reads a real clan.

use std::path::Path;

use crate::error::LabError;
use crate::files::{io, write};
use crate::state::{LabMachine, LabState};

/// What a secret var file holds in the lab repo: no sops, no secret, only the recipients beside it.
const PLACEHOLDER: &str =
    "{\"placeholder\":\"lab repo: secrets are deployed to the lab machines, never kept here\"}\n";

/// A secret var in the repo: a placeholder and its recipients.
pub(crate) fn secret(dir: &Path, recipients: &[&str]) -> Result<(), LabError> {
    write(&dir.join("secret"), PLACEHOLDER, 0o644)?;
    for r in recipients {
        let link = dir.join("machines").join(r);
        std::fs::create_dir_all(dir.join("machines")).map_err(|e| io(&link, e))?;
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(format!("../../../../../sops/machines/{r}"), &link)
            .map_err(|e| io(&link, e))?;
    }
    Ok(())
}

fn value(dir: &Path, text: &str) -> Result<(), LabError> {
    write(&dir.join("value"), text, 0o644)
}

/// Writes `<dir>/clan` from the lab's keys.
pub fn write_repo(state: &LabState) -> Result<(), LabError> {
    let clan = state.dir.join("clan");
    let _ = std::fs::remove_dir_all(&clan);
    let vars = clan.join("vars");
    let shared = vars.join("shared");
    value(
        &shared.join("openssh-ca/id_ed25519.pub"),
        &state.read("ca/ca.pub")?,
    )?;
    secret(&shared.join("openssh-ca/id_ed25519"), &[])?;
    let names: Vec<&str> = state.machines.iter().map(|m| m.name.as_str()).collect();
    secret(
        &shared.join("user-password-root/user-password-hash"),
        &names,
    )?;
    secret(&shared.join("user-password-root/user-password"), &[])?;
    for m in &state.machines {
        write_machine_vars(state, m, &vars.join("per-machine").join(&m.name))?;
    }
    if let Some(zt) = &state.zerotier {
        crate::zerotier::write_repo_vars(state, zt, &shared)?;
    }
    write(
        &clan.join("lab-config.json"),
        &serde_json::to_string_pretty(&crate::system::default_config()).unwrap_or_default(),
        0o644,
    )?;
    write(
        &clan.join("README.md"),
        "Written by `clan-coord lab up`: the lab fleet's clan repo (public vars and inventory).\n\
         Keys here are lab test keys; secrets are placeholders, deployed only inside the lab.\n",
        0o644,
    )
}

fn write_machine_vars(state: &LabState, m: &LabMachine, dir: &Path) -> Result<(), LabError> {
    let k = |f: &str| state.read(&format!("machines/{}/keys/{f}", m.name));
    value(&dir.join("openssh/ssh.id_ed25519.pub"), &k("host.pub")?)?;
    secret(&dir.join("openssh/ssh.id_ed25519"), &[&m.name])?;
    value(
        &dir.join("openssh-cert/ssh.id_ed25519-cert.pub"),
        &k("host-cert.pub")?,
    )?;
    if state.zerotier.is_none() {
        value(
            &dir.join("yggdrasil/address"),
            &format!("{}\n", m.ygg_address),
        )?;
        value(
            &dir.join("yggdrasil/publicKey"),
            &format!("{}\n", m.ygg_key),
        )?;
        secret(&dir.join("yggdrasil/privateKey"), &[&m.name])?;
    }
    value(
        &dir.join("emergency-access/password-hash"),
        crate::deploy::LAB_ROOT_HASH,
    )?;
    value(&dir.join("state-version/version"), "26.05\n")?;
    Ok(())
}

/// The machines.toml the harness uses for this lab.
pub fn machines_toml(state: &LabState) -> String {
    let d = state.dir.display().to_string();
    machines_toml_with(
        state,
        &format!("{d}/clan"),
        &format!("Use it with COORD_MACHINES={d}/machines.toml"),
    )
}

/// The machines.toml, with the clan repo at `clan_dir` (relative paths resolve against the file).
pub fn machines_toml_with(state: &LabState, clan_dir: &str, note: &str) -> String {
    let d = state.dir.display();
    let flake = if clan_dir.starts_with('/') {
        format!("flake = \"path:{clan_dir}\"   # clan-core evaluates the inventory (nix eval)\n")
    } else {
        // A recording: its cassette answers `nix eval` of `path:clan` with what clan-core
        // evaluated live (and the serialization beside it says the same).
        format!(
            "flake = \"path:{clan_dir}\"   # replayed: the recorded nix eval of the lab's flake\n"
        )
    };
    let mut s = format!(
        "# Written by `clan-coord lab up`: the lab fleet, reached from its workstation namespace.\n\
         # {note}\n\n\
         [fleet]\nclan_dir = \"{clan_dir}\"\n{flake}inventory_json = \"{clan_dir}/{}\"\n\
         overlay = \"{}\"\ndomain = \"{}\"\n\n\
         [ssh]\nauth = \"identity_file\"\nidentity_file = \"{d}/workstation/id_ed25519\"\n\
         user = \"root\"\nnetns = \"{}\"\nconnect_timeout_secs = 5\ncommand_timeout_secs = 20\n\n\
         [thresholds]\nmax_rtt_ms = 200\nping_count = 3\nping_interval_secs = 0.2\nping_timeout_secs = 2\n\n\
         # `clan machines update` stand-in: applies the lab repo's lab-config.json to a machine.\n\
         [rebuild]\ncommand = \"{} lab rebuild --dir {d} {{machine}}\"\nparallel = 4\ntimeout_secs = 120\n\n\
         [[rebuild.artefact]]\npath = \"/run/current-system/etc/nix/nix.conf\"\n",
        crate::flake::SERIALIZATION,
        state.overlay,
        state.domain,
        state.ns_ws(),
        state.relay_exe().display(),
    );
    for m in &state.machines {
        s.push_str(&format!(
            "\n[[machine]]\nname = \"{}\"\naddress = \"{}\"\n",
            m.name, m.mgmt_ip
        ));
    }
    s
}
