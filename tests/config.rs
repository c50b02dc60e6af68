//! machines.toml errors name file, line, column, field, problem and fix; unknown fields are rejected.

use std::path::Path;

use clan_coordination::config::parse;

fn err(toml: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("machines.toml");
    parse(&p, toml).expect_err("should be rejected").to_string()
}

const HEAD: &str = "[fleet]\nclan_dir = \"examples/test-clan\"\ninventory_json = \"examples/test-clan/inventory.json\"\n";

#[test]
fn shipped_machines_toml_is_valid() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("machines.toml");
    let c = clan_coordination::config::load(&p).unwrap();
    assert_eq!(
        c.machines
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["hetzner-vm", "gcp-vm"]
    );
    assert_eq!(c.thresholds.max_rtt_ms, 200.0);
}

#[test]
fn bad_address_is_located_with_a_fix() {
    let e = err(&format!(
        "{HEAD}[[machine]]\nname = \"gcp-vm\"\naddress = \"198.51.100.300\"\n"
    ));
    assert!(e.contains("machines.toml:6:11: machine.address"), "{e}");
    assert!(
        e.contains("is not an IP address") && e.contains("fix:"),
        "{e}"
    );
}

#[test]
fn unknown_field_is_rejected() {
    let e = err(&format!(
        "{HEAD}[[machine]]\nname = \"gcp-vm\"\nadress = \"198.51.100.20\"\n"
    ));
    assert!(
        e.contains(":6:1:") && e.contains("unknown field `adress`"),
        "{e}"
    );
}

#[test]
fn bad_name_and_duplicate() {
    let e = err(&format!(
        "{HEAD}[[machine]]\nname = \"GCP_vm\"\naddress = \"198.51.100.20\"\n"
    ));
    assert!(
        e.contains("machine.name") && e.contains("not a valid name"),
        "{e}"
    );
    let e = err(&format!("{HEAD}[[machine]]\nname = \"a\"\naddress = \"::1\"\n[[machine]]\nname = \"a\"\naddress = \"::2\"\n"));
    assert!(e.contains("listed twice"), "{e}");
}

#[test]
fn missing_clan_dir_and_bad_threshold() {
    let e = err("[fleet]\nclan_dir = \"nowhere\"\n[[machine]]\nname = \"a\"\naddress = \"::1\"\n");
    assert!(
        e.contains(":2:12: fleet.clan_dir") && e.contains("not a directory"),
        "{e}"
    );
    let e = err(&format!(
        "{HEAD}[thresholds]\nping_count = 0\n[[machine]]\nname = \"a\"\naddress = \"::1\"\n"
    ));
    assert!(
        e.contains("thresholds.ping_count") && e.contains("out of range"),
        "{e}"
    );
    let e = err(&format!(
        "{HEAD}[ssh]\nauth = \"password\"\n[[machine]]\nname = \"a\"\naddress = \"::1\"\n"
    ));
    assert!(e.contains("unknown auth method"), "{e}");
}

#[test]
fn live_run_refuses_the_example_documentation_addresses() {
    // The shipped machines.toml is an example (RFC 5737 addresses): a live run built from it
    // must fail before any packet leaves, naming the machine and the fix.
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("machines.toml");
    let c = clan_coordination::config::load(&p).unwrap();
    let e = clan_coordination::fleet::Fleet::live(c, None, Path::new("snapshots"))
        .err()
        .expect("documentation addresses are refused")
        .to_string();
    assert!(
        e.contains("hetzner-vm: address 203.0.113.10 is a documentation address")
            && e.contains("fix:"),
        "{e}"
    );
}

#[test]
fn short_ping_interval_needs_root() {
    let machine = "[[machine]]\nname = \"a\"\naddress = \"::1\"\n";
    let short = "[thresholds]\nping_interval_secs = 0.05\n";
    let e = err(&format!("{HEAD}{short}{machine}user = \"deploy\"\n"));
    assert!(
        e.contains(":5:22: thresholds.ping_interval_secs")
            && e.contains("a logs in as \"deploy\"")
            && e.contains("fix: use 0.2 or more, or log in as root"),
        "{e}"
    );
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("machines.toml");
    let ok = clan_coordination::config::parse(&p, &format!("{HEAD}{short}{machine}")).unwrap();
    assert_eq!(
        ok.thresholds.ping_interval_secs, 0.05,
        "root may use short intervals"
    );
}
