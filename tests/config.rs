//! machines.toml errors name file, line, column, field, problem and fix; unknown fields are rejected.

use std::path::Path;

use clan_coordination::config::parse;

#[path = "config/hostile.rs"]
mod hostile;

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
        e.contains("is neither an IP address") && e.contains("fix:"),
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

/// Every error text of the parser, byte for byte (paths relative to the crate), so a refactor of
/// `src/config/` cannot change what the operator reads.
#[test]
fn every_error_text_is_pinned() {
    let m = "[[machine]]\nname = \"a\"\naddress = \"::1\"\n";
    let cases: Vec<(String, &str)> = vec![
        (
            "[fleet\n".into(),
            "<crate>/machines.toml:1:7: (syntax): invalid table header\nexpected `.`, `]`\n  fix: fix the TOML syntax or the value's type at this place",
        ),
        (
            "[fleet]\nclan_dir = \"examples/test-clan\"\nbogus = 1\n".into(),
            "<crate>/machines.toml:3:1: (unknown field): unknown field `bogus`, expected one of `clan_dir`, `domain`, `overlay`, `inventory_json`, `flake`, `only`\n  fix: remove or rename the field; README.md lists every field of machines.toml",
        ),
        (
            "[fleet]\n".into(),
            "<crate>/machines.toml:1:1: (missing field): missing field `clan_dir`\n  fix: add the field; README.md lists the required fields",
        ),
        (
            String::new(),
            "<crate>/machines.toml:1:1: (missing field): missing field `fleet`\n  fix: add the field; README.md lists the required fields",
        ),
        (
            format!("{HEAD}overlay = \"wireguard\"\n{m}"),
            "<crate>/machines.toml:4:11: (syntax): unknown variant `wireguard`, expected `zerotier` or `yggdrasil`\n  fix: fix the TOML syntax or the value's type at this place",
        ),
        (
            format!("{HEAD}domain = \"Bad_Domain\"\n{m}"),
            "<crate>/machines.toml:4:10: fleet.domain: \"Bad_Domain\" is not a DNS domain: it has the label \"Bad_Domain\" (1 to 63 lowercase letters, digits and '-', not at either end)\n  fix: use clan's meta.domain, e.g. \"clan\" or \"zt\"",
        ),
        (
            format!("[fleet]\nclan_dir = \"nowhere\"\n{m}"),
            "<crate>/machines.toml:2:12: fleet.clan_dir: <crate>/nowhere is not a directory\n  fix: point it at the clan repository root (the directory holding vars/), relative to this file",
        ),
        (
            format!("[fleet]\nclan_dir = \"examples/test-clan\"\ninventory_json = \"no.json\"\n{m}"),
            "<crate>/machines.toml:3:18: fleet.inventory_json: <crate>/no.json does not exist\n  fix: write it with `nix eval --json .#clanInternals.inventoryClass.inventorySerialization > inventory-serialization.json` (not into the flake's inventory.json, which clan-core reads as input)",
        ),
        (
            format!("{HEAD}[ssh]\nauth = \"identity_file\"\n{m}"),
            "<crate>/machines.toml:5:8: ssh.identity_file: auth = \"identity_file\" but no identity_file is given\n  fix: add identity_file = \"path/to/key\"",
        ),
        (
            format!("{HEAD}[ssh]\nauth = \"agent\"\nidentity_file = \"k\"\n{m}"),
            "<crate>/machines.toml:6:17: ssh.identity_file: identity_file is set while auth = \"agent\"\n  fix: drop identity_file, or set auth = \"identity_file\"",
        ),
        (
            format!("{HEAD}[ssh]\nauth = \"password\"\n{m}"),
            "<crate>/machines.toml:5:8: ssh.auth: unknown auth method \"password\"\n  fix: use \"agent\" or \"identity_file\" (passwords are never used)",
        ),
        (
            format!("{HEAD}[ssh]\nuser = \"Root\"\n{m}"),
            "<crate>/machines.toml:5:8: ssh.user: \"Root\" is not a valid name\n  fix: use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 (as clan machine names)",
        ),
        (
            format!("{HEAD}[ssh]\nconnect_timeout_secs = 0\n{m}"),
            "<crate>/machines.toml:5:24: ssh.connect_timeout_secs: 0 is out of range\n  fix: use a value between 1 and 300",
        ),
        (
            format!("{HEAD}[ssh]\ncommand_timeout_secs = 0\n{m}"),
            "<crate>/machines.toml:5:24: ssh.command_timeout_secs: 0 is out of range\n  fix: use a value between 1 and 3600",
        ),
        (
            format!("{HEAD}[ssh]\nnetns = \"a b\"\n{m}"),
            "<crate>/machines.toml:5:9: ssh.netns: \"a b\" is not a valid name\n  fix: use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 (as clan machine names)",
        ),
        (
            format!("{HEAD}[thresholds]\nmax_rtt_ms = 0.0\n{m}"),
            "<crate>/machines.toml:5:14: thresholds.max_rtt_ms: 0 is out of range\n  fix: use a value between 0.1 and 60000",
        ),
        (
            format!("{HEAD}[thresholds]\nping_count = 0\n{m}"),
            "<crate>/machines.toml:5:14: thresholds.ping_count: 0 is out of range\n  fix: use a value between 1 and 100",
        ),
        (
            format!("{HEAD}[thresholds]\nping_interval_secs = 20.0\n{m}"),
            "<crate>/machines.toml:5:22: thresholds.ping_interval_secs: 20 is out of range\n  fix: use a value between 0.002 and 10",
        ),
        (
            format!("{HEAD}[thresholds]\nping_timeout_secs = 61\n{m}"),
            "<crate>/machines.toml:5:21: thresholds.ping_timeout_secs: 61 is out of range\n  fix: use a value between 1 and 60",
        ),
        (
            format!("{HEAD}[thresholds]\nping_interval_secs = 0.05\n{m}user = \"deploy\"\n"),
            "<crate>/machines.toml:5:22: thresholds.ping_interval_secs: 0.05 s is below 0.2 s, which ping allows only to root, and a logs in as \"deploy\"\n  fix: use 0.2 or more, or log in as root",
        ),
        (
            format!("{HEAD}[[machine]]\nname = \"GCP_vm\"\naddress = \"::1\"\n"),
            "<crate>/machines.toml:5:8: machine.name: \"GCP_vm\" is not a valid name\n  fix: use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 (as clan machine names)",
        ),
        (
            format!("{HEAD}{m}{m}"),
            "<crate>/machines.toml:8:8: machine.name: machine \"a\" is listed twice\n  fix: keep one [[machine]] entry per machine",
        ),
        (
            format!("{HEAD}[[machine]]\nname = \"a\"\naddress = \"host_example;id\"\n"),
            "<crate>/machines.toml:6:11: machine.address: \"host_example;id\" is neither an IP address (invalid IP address syntax) nor a host name\n  fix: write an IPv4 or IPv6 literal such as \"203.0.113.10\", or a host name such as \"cinnabar.zt\" (letters, digits, hyphens and dots only)",
        ),
        (
            format!("{HEAD}{m}overlay_address = \"10.0.0.1\"\n"),
            "<crate>/machines.toml:7:19: machine.overlay_address: \"10.0.0.1\" is not an IPv6 address (invalid IPv6 address syntax)\n  fix: give the machine's overlay IPv6 address, or drop the field to read it from the clan repo",
        ),
        (
            format!("{HEAD}{m}user = \"Deploy\"\n"),
            "<crate>/machines.toml:7:8: machine.user: \"Deploy\" is not a valid name\n  fix: use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 (as clan machine names)",
        ),
        (
            HEAD.to_string(),
            "<crate>/machines.toml:1:1: machine: no [[machine]] entries\n  fix: add one [[machine]] table per machine (name, address)",
        ),
        (
            format!("{HEAD}{m}[modules.Bad]\nunits = []\n"),
            "<crate>/machines.toml:7:10: modules.<name>: \"Bad\" is not a valid name\n  fix: use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 (as clan machine names)",
        ),
        (
            format!("{HEAD}{m}[modules.x]\nunits = [\"nounit\"]\n"),
            "<crate>/machines.toml:8:10: modules.units: \"nounit\" is not a systemd unit name: it has no unit type suffix (.service, .socket, .target, .timer, .mount, .automount, .path, .swap, .slice, .scope, .device)\n  fix: write full unit names such as \"my-service.service\", never starting with '-'",
        ),
        (
            format!("{HEAD}{m}[rebuild]\ncommand = \"  \"\n"),
            "<crate>/machines.toml:8:11: rebuild.command: empty command\n  fix: use a program and arguments with {machine}, {flake} and {target} only (no shell)",
        ),
        (
            format!("{HEAD}{m}[rebuild]\ncommand = \"clan {{foo}}\"\n"),
            "<crate>/machines.toml:8:11: rebuild.command: unknown placeholder in \"{foo}\"\n  fix: use a program and arguments with {machine}, {flake} and {target} only (no shell)",
        ),
        (
            format!("{HEAD}{m}[rebuild]\ncommand = \"clan {{machine\"\n"),
            "<crate>/machines.toml:8:11: rebuild.command: unknown placeholder in \"{machine\"\n  fix: use a program and arguments with {machine}, {flake} and {target} only (no shell)",
        ),
        (
            format!("{HEAD}{m}[rebuild]\nparallel = 0\n"),
            "<crate>/machines.toml:8:12: rebuild.parallel: 0 is out of range\n  fix: use 1 to 64",
        ),
        (
            format!("{HEAD}{m}[rebuild]\ntimeout_secs = 0\n"),
            "<crate>/machines.toml:8:16: rebuild.timeout_secs: 0 is out of range\n  fix: use a value between 1 and 86400",
        ),
        (
            format!("{HEAD}{m}[rebuild]\nsettle_secs = 901\n"),
            "<crate>/machines.toml:8:15: rebuild.settle_secs: 901 is out of range\n  fix: use a value between 0 and 900",
        ),
        (
            format!("{HEAD}{m}[rebuild]\nrestart_units = [\"x\"]\n"),
            "<crate>/machines.toml:8:18: rebuild.restart_units: \"x\" is not a systemd unit name: it has no unit type suffix (.service, .socket, .target, .timer, .mount, .automount, .path, .swap, .slice, .scope, .device)\n  fix: write full unit names such as \"yggdrasil.service\", never starting with '-'",
        ),
        (
            format!("{HEAD}{m}[rebuild]\nparallel = 2\n[[rebuild.artefact]]\npath = \"etc/x\"\n"),
            "<crate>/machines.toml:10:8: rebuild.artefact.path: \"etc/x\" is not an absolute path without '..' or spaces\n  fix: write the file's absolute path on the machines",
        ),
        (
            format!("{HEAD}{m}[rebuild]\nartefact = [{{ path = \"/etc/../x\" }}]\n"),
            "<crate>/machines.toml:8:22: rebuild.artefact.path: \"/etc/../x\" is not an absolute path without '..' or spaces\n  fix: write the file's absolute path on the machines",
        ),
        (
            format!("{HEAD}{m}[rebuild]\nartefact = [{{ path = \"/etc/x\", expect_sha256 = \"abc\" }}]\n"),
            "<crate>/machines.toml:8:48: rebuild.artefact.expect_sha256: \"abc\" is not a sha256 hex digest\n  fix: 64 hex digits, as `sha256sum` prints",
        ),
    ];
    let dir = env!("CARGO_MANIFEST_DIR");
    let mut failed = Vec::new();
    for (i, (toml, want)) in cases.iter().enumerate() {
        let got = err(toml).replace(dir, "<crate>");
        if got != *want {
            failed.push(format!("case {i}:\n got: {got:?}\nwant: {want:?}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// Every field of a full machines.toml, as parsed (defaults are covered by the shipped file).
#[test]
fn full_config_values_are_pinned() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("machines.toml");
    let toml = format!(
        "{HEAD}overlay = \"yggdrasil\"\ndomain = \"zt\"\nflake = \"examples/test-clan\"\n\
         [ssh]\nauth = \"identity_file\"\nidentity_file = \"keys/id\"\nuser = \"deploy\"\n\
         connect_timeout_secs = 7\ncommand_timeout_secs = 30\nknown_hosts = \"kh\"\nnetns = \"ws\"\n\
         [thresholds]\nmax_rtt_ms = 150.5\nping_count = 3\nping_interval_secs = 0.5\nping_timeout_secs = 4\n\
         [[machine]]\nname = \"a\"\naddress = \"::1\"\nport = 2222\nuser = \"root\"\noverlay_address = \"fd00::1\"\n\
         [[machine]]\nname = \"b\"\naddress = \"192.0.2.1\"\n\
         [modules.extra]\nunits = [\"x.service\", \"y.timer\"]\n\
         [rebuild]\ncommand = \"nixos-rebuild switch --flake {{flake}}#{{machine}} --target-host {{target}}\"\n\
         parallel = 2\ntimeout_secs = 60\nsettle_secs = 20\nrestart_units = [\"yggdrasil.service\"]\n\
         [[rebuild.artefact]]\npath = \"/etc/x\"\nexpect_sha256 = \"{}\"\n\
         [[rebuild.artefact]]\npath = \"/etc/y\"\n",
        "AB".repeat(32)
    );
    let c = parse(&p, &toml).unwrap();
    let got = format!("{c:?}").replace(env!("CARGO_MANIFEST_DIR"), "<crate>");
    assert_eq!(
        got,
        "FleetConfig { path: \"<crate>/machines.toml\", clan_dir: \"<crate>/examples/test-clan\", domain: Some(\"zt\"), overlay: Yggdrasil, inventory_json: Some(\"<crate>/examples/test-clan/inventory.json\"), flake: Some(\"examples/test-clan\"), ssh: SshSettings { auth: IdentityFile(\"<crate>/keys/id\"), user: \"deploy\", connect_timeout: 7s, command_timeout: 30s, known_hosts: Some(\"<crate>/kh\"), netns: Some(\"ws\") }, thresholds: Thresholds { max_rtt_ms: 150.5, ping_count: 3, ping_interval_secs: 0.5, ping_timeout_secs: 4 }, machines: [MachineConfig { name: \"a\", address: Ip(::1), port: 2222, user: \"root\", overlay_address: Some(fd00::1) }, MachineConfig { name: \"b\", address: Ip(192.0.2.1), port: 22, user: \"deploy\", overlay_address: None }], modules: {\"extra\": ModuleProbe { units: [\"x.service\", \"y.timer\"] }}, rebuild: RebuildConfig { command: [\"nixos-rebuild\", \"switch\", \"--flake\", \"{flake}#{machine}\", \"--target-host\", \"{target}\"], parallel: 2, timeout: 60s, settle: 20s, artefacts: [Artefact { path: \"/etc/x\", expect_sha256: Some(\"abababababababababababababababababababababababababababababababab\") }, Artefact { path: \"/etc/y\", expect_sha256: None }], restart_units: [\"yggdrasil.service\"] }, only: None }"
    );
}

/// Every duration and count of machines.toml is bounded: 0 (libssh2's "no timeout"), values
/// that wrap as u32 milliseconds (536870912 s became 0), the largest TOML integer, NaN and
/// infinities are located errors naming the field, the value and the range; the bounds
/// themselves are accepted.
#[test]
fn every_duration_in_machines_toml_is_bounded() {
    let m = "[[machine]]\nname = \"a\"\naddress = \"::1\"\n";
    // (table, key, rejected values, accepted values, range in the fix)
    type Case<'a> = (&'a str, &'a str, &'a [&'a str], &'a [&'a str], &'a str);
    let cases: [Case; 7] = [
        (
            "ssh",
            "connect_timeout_secs",
            &["0", "301", "536870912", "9223372036854775807"],
            &["1", "300"],
            "1 and 300",
        ),
        (
            "ssh",
            "command_timeout_secs",
            &["0", "3601", "4294968"],
            &["1", "3600"],
            "1 and 3600",
        ),
        (
            "rebuild",
            "timeout_secs",
            &["0", "86401", "536870912"],
            &["1", "86400"],
            "1 and 86400",
        ),
        (
            "thresholds",
            "ping_timeout_secs",
            &["0", "61"],
            &["1", "60"],
            "1 and 60",
        ),
        (
            "thresholds",
            "ping_interval_secs",
            &["0.0", "-1.0", "nan", "inf", "-inf", "1e308"],
            &["0.2", "10.0"],
            "0.002 and 10",
        ),
        (
            "thresholds",
            "max_rtt_ms",
            &["nan", "inf", "-0.0", "1e300"],
            &["0.1", "60000.0"],
            "0.1 and 60000",
        ),
        (
            "thresholds",
            "ping_count",
            &["0", "101"],
            &["1", "100"],
            "1 and 100",
        ),
    ];
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("machines.toml");
    let mut failed = Vec::new();
    for (table, key, bad, good, range) in cases {
        for v in bad {
            let toml = format!("{HEAD}{m}[{table}]\n{key} = {v}\n");
            let want = format!(
                "machines.toml:8:{}: {table}.{key}: {} is out of range\n  fix: use a value between {range}",
                key.len() + 4,
                v.parse::<i64>()
                    .map(|i| i.to_string())
                    .unwrap_or_else(|_| v.parse::<f64>().unwrap().to_string())
            );
            match parse(&p, &toml) {
                Ok(_) => failed.push(format!("{table}.{key} = {v}: accepted")),
                Err(e) if !e.to_string().ends_with(&want) => {
                    failed.push(format!("{table}.{key} = {v}:\n got: {e}\nwant: …{want}"))
                }
                Err(_) => {}
            }
        }
        for v in good {
            if let Err(e) = parse(&p, &format!("{HEAD}{m}[{table}]\n{key} = {v}\n")) {
                failed.push(format!("{table}.{key} = {v}: rejected: {e}"));
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// Unit names reach remote `systemctl` and `journalctl` as arguments: one starting with '-'
/// would be an option there. Every place a unit enters is checked with systemd's grammar.
#[test]
fn unit_names_cannot_be_options() {
    let m = "[[machine]]\nname = \"a\"\naddress = \"::1\"\n";
    let cases = [
        (
            "[modules.x]\nunits = [",
            "modules.units",
            "-H.service",
            ":8:10:",
        ),
        (
            "[modules.x]\nunits = [",
            "modules.units",
            "--host=x.service",
            ":8:10:",
        ),
        (
            "[modules.x]\nunits = [",
            "modules.units",
            ".service",
            ":8:10:",
        ),
        (
            "[rebuild]\nrestart_units = [",
            "rebuild.restart_units",
            "-p.service",
            ":8:18:",
        ),
        (
            "[rebuild]\nrestart_units = [",
            "rebuild.restart_units",
            "a;b.service",
            ":8:18:",
        ),
        (
            "[rebuild]\nrestart_units = [",
            "rebuild.restart_units",
            "a b.service",
            ":8:18:",
        ),
    ];
    let mut failed = Vec::new();
    for (head, field, unit, at) in cases {
        let toml = format!("{HEAD}{m}{head}\"{unit}\"]\n");
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("machines.toml");
        match parse(&p, &toml) {
            Ok(_) => failed.push(format!("{field} {unit:?}: accepted")),
            Err(e) => {
                let e = e.to_string();
                if !(e.contains(&format!(
                    "{at} {field}: {unit:?} is not a systemd unit name"
                )) && e.contains("never starting with '-'"))
                {
                    failed.push(format!("{field} {unit:?}: {e}"));
                }
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// A host name in machines.toml is resolved when a live fleet opens, with the connect timeout,
/// and the run says which address it used; a name that does not resolve leaves that machine
/// unreachable with the resolver's words, never a silent pass.
#[test]
fn host_names_resolve_when_a_live_fleet_opens() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let toml = format!(
        "{HEAD}[ssh]\nconnect_timeout_secs = 2\n\n[[machine]]\nname = \"hetzner-vm\"\naddress = \"localhost\"\nport = 1\n\n[[machine]]\nname = \"gcp-vm\"\naddress = \"nothing.invalid\"\n"
    );
    let cfg = parse(&root.join("machines.toml"), &toml).unwrap();
    let fleet = clan_coordination::fleet::Fleet::live(cfg, None, &root.join("snapshots")).unwrap();
    assert_eq!(fleet.resolved.len(), 1, "{:?}", fleet.resolved);
    let (m, name, ip) = &fleet.resolved[0];
    assert_eq!((m.as_str(), name.as_str()), ("hetzner-vm", "localhost"));
    assert!(ip.is_loopback(), "{ip}");
    let e = fleet
        .run("gcp-vm", &clan_coordination::transport::Cmd::new("true"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nothing.invalid"), "{e}");
}
