//! The clan inventory serialization (`Inventory::parse`, JSON from `nix eval` or a file in the
//! clan repo), then what AC3 asks of it: roles per machine, effective settings per member, the
//! snapshot value. Also `unwrap_settings`/`deep_merge` on the raw document. Properties: no
//! panic; accepted machine names are valid names; errors carry no secret.
#![no_main]

use clan_coordination::inventory::{deep_merge, snapshot_name, unwrap_settings, Inventory};
use clan_coordination::names::MachineName;
use clan_coordination_fuzz::{quiet, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let json = text(data);
    match Inventory::parse(&json, "fuzz") {
        Ok(inv) => {
            for m in inv.machines.keys() {
                assert!(MachineName::new(m).is_ok(), "{m:?}");
                let _ = inv.roles_of(m);
            }
            for (iname, inst) in &inv.instances {
                let _ = inv.instances_of(&inst.module.name).count();
                for (rname, role) in &inst.roles {
                    for member in &role.members {
                        let _ = inv.effective_settings(iname, rname, member);
                    }
                }
            }
            let _ = snapshot_name(&inv);
            let _ = serde_json::to_string(&inv.snapshot_value()).expect("snapshot serialises");
        }
        Err(e) => quiet("inventory", &e.to_string(), data),
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&json) {
        let u = unwrap_settings(&v);
        let _ = deep_merge(u, v);
    }
});
