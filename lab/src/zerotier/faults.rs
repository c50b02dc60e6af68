//! The ZeroTier lab's faults that change clan's vars (the others are unit and link operations in
//! [`crate::fault`]): an identity regenerated without a restart, a network recreated.

use super::{
    gen_identity, gen_ip, gen_network_id, write_machine_files, write_repo_vars, ZtLab, INSTANCE,
};
use crate::error::LabError;
use crate::files::{io, write};
use crate::machine::systemctl;
use crate::state::LabState;

/// `zt-identity-drift`: machine `m`'s identity regenerated with clan's generator, its ip
/// recomputed, both written to the repo's vars and the identity deployed, and the daemon left
/// running (clan machines update does not restart it): it keeps its old identity. The lab's own
/// keys are untouched, so `heal` writes the original vars back.
pub(crate) fn identity_drift(state: &LabState, zt: &ZtLab, m: &str) -> Result<(), LabError> {
    let keys = state.mdir(m).join("keys");
    let drift = keys.join("zerotier-identity-secret.drift");
    gen_identity(zt, &drift)?;
    let ip = gen_ip(
        zt,
        &drift,
        &state.dir.join("clan-network-id"),
        &keys.join("zerotier-ip.drift"),
    )?;
    let shared = state.dir.join("clan/vars/shared");
    write(
        &shared.join(format!("zerotier-ip-{m}-{INSTANCE}/ip/value")),
        &ip,
        0o644,
    )?;
    write(
        &state.mdir(m).join(format!(
            "run/secrets/vars/zerotier-identity-{m}/identity-secret"
        )),
        &std::fs::read_to_string(&drift).map_err(|e| io(&drift, e))?,
        0o600,
    )
}

/// `zt-network-recreated`: a new network id from clan's generator (the controller's identity,
/// a new random suffix), every machine's ip recomputed, the repo's vars moved to it, and the
/// controller redeployed with it (its network JSON, `networks.d`, allow and auto-accept); the
/// peers keep their deployed system and so the old network. The lab's own state keeps the
/// original network, so `heal` puts it back.
pub(crate) fn network_recreated(state: &LabState, zt: &ZtLab) -> Result<(), LabError> {
    let new_file = state.dir.join("clan-network-id.recreated");
    let controller_secret = state
        .mdir(&state.machines[0].name)
        .join("keys/zerotier-identity-secret");
    let mut new_zt = zt.clone();
    new_zt.network_id = gen_network_id(zt, &controller_secret, &new_file)?;
    let mut moved = state.clone();
    for m in &mut moved.machines {
        let k = state.mdir(&m.name).join("keys");
        m.zt_ip = gen_ip(
            zt,
            &k.join("zerotier-identity-secret"),
            &new_file,
            &k.join("zerotier-ip.recreated"),
        )?;
    }
    moved.zerotier = Some(new_zt.clone());
    write_repo_vars(&moved, &new_zt, &state.dir.join("clan/vars/shared"))?;
    let controller = moved.machines[0].name.clone();
    write_machine_files(&moved, &new_zt, &controller)?;
    forget_other_networks(&moved, &new_zt)?;
    let autoaccept = format!("zerotier-autoaccept-{INSTANCE}.service");
    systemctl(state, &controller, "daemon-reload", &[])?;
    systemctl(
        state,
        &controller,
        "restart",
        &["zerotierone.service", &autoaccept],
    )?;
    Ok(())
}

/// Removes, on the controller, the network files of any network but `zt`'s (`networks.d` and
/// `controller.d`); true when there were some.
pub(crate) fn forget_other_networks(state: &LabState, zt: &ZtLab) -> Result<bool, LabError> {
    let home = state.mdir(&state.machines[0].name).join("zerotier-one");
    let mut removed = false;
    for (dir, ext) in [("networks.d", ".conf"), ("controller.d/network", ".json")] {
        let d = home.join(dir);
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(ext) {
                if id != zt.network_id {
                    std::fs::remove_file(e.path()).map_err(|err| io(&e.path(), err))?;
                    removed = true;
                }
            }
        }
    }
    Ok(removed)
}
