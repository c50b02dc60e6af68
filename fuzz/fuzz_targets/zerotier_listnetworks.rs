//! `zerotier-cli listnetworks` (text and `-j`). Property: no panic; each network id round-trips
//! through its text form, and through the rfc4193 address with its controller's node id.
#![no_main]

use clan_coordination::probe::zerotier::parse_listnetworks;
use clan_coordination::probe::zerotier_ids::{rfc4193, split_rfc4193, NetworkId};
use clan_coordination_fuzz::{quiet, serializes, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_listnetworks(&text(data)) {
        Ok(nets) => {
            for n in &nets {
                let again: NetworkId = n.id.to_string().parse().expect("network id round trip");
                assert_eq!(again, n.id);
                let node = n.id.controller();
                assert_eq!(split_rfc4193(rfc4193(n.id, node)), Some((n.id, node)));
            }
            serializes("networks", &nets);
        }
        Err(e) => quiet("listnetworks", &e.to_string(), data),
    }
});
