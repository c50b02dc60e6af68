//! Offline pre-flight on real repos: the two eras of a real fleet's public vars
//! (tests/clan-repos, copied from ../shared/clan-repos with their SOURCE.md) and the example repo.
//! The outputs of `clan-coord oracle` and `clan-coord inventory` are pinned with insta.

use std::path::{Path, PathBuf};
use std::process::Command;

use clan_coordination::inventory::Inventory;
use clan_coordination::oracle::lint::{self, Level};
use clan_coordination::oracle::Oracle;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn summary(rel: &str, inventory: Option<&str>, domain: &str) -> lint::Summary {
    let inv = inventory
        .map(|f| Inventory::parse(&std::fs::read_to_string(root().join(f)).unwrap(), f).unwrap());
    let names: Vec<String> = inv
        .as_ref()
        .map(|i| i.machines.keys().cloned().collect())
        .unwrap_or_default();
    let o = Oracle::load(&root().join(rel), &names).unwrap();
    lint::summary(&o, inv.as_ref(), domain, PathBuf::from(rel))
}

fn pin(name: &str, s: &lint::Summary) {
    insta::with_settings!({
        snapshot_path => root().join("snapshots"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_json_snapshot!(name, s);
    });
}

#[test]
fn era_a_flags_the_address_left_on_the_recreated_network() {
    let s = summary("tests/clan-repos/vanixiets-era-a", None, "clan");
    let errors: Vec<_> = s
        .issues
        .iter()
        .filter(|i| i.level == Level::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = errors[0];
    assert_eq!((e.rule, e.machine.as_str()), ("zt.wrong-network", "gcp-vm"));
    assert!(
        e.problem.contains("f1ea9860065066e3"),
        "names the embedded network: {e}"
    );
    assert!(
        e.should.contains("fddb:4344:343b:14b9:399:93aa:d70:7cd"),
        "{e}"
    );
    pin("oracle-vanixiets-era-a", &s);
}

#[test]
fn era_b_is_consistent_under_its_own_domain_and_not_under_another() {
    let s = summary("tests/clan-repos/vanixiets-era-b", None, "zt");
    assert!(s.issues.is_empty(), "{:#?}", s.issues);
    assert_eq!(
        s.machines.iter().filter(|m| m.host_cert.is_some()).count(),
        6
    );
    pin("oracle-vanixiets-era-b", &s);
    let wrong = summary("tests/clan-repos/vanixiets-era-b", None, "clan");
    assert_eq!(
        wrong
            .issues
            .iter()
            .filter(|i| i.rule == "ssh.cert-invalid")
            .count(),
        6
    );
}

#[test]
fn example_repo_with_its_inventory_is_clean() {
    let s = summary(
        "examples/test-clan",
        Some("examples/test-clan/inventory.json"),
        "clan",
    );
    assert!(s.issues.is_empty(), "{:#?}", s.issues);
    pin("oracle-test-clan", &s);
}

#[test]
fn cli_exit_status_follows_errors_and_inventory_output_matches_the_snapshot() {
    let bin = env!("CARGO_BIN_EXE_clan-coord");
    let run = |args: &[&str]| {
        Command::new(bin)
            .args(args)
            .current_dir(root())
            .output()
            .unwrap()
    };
    assert_eq!(
        run(&["oracle", "tests/clan-repos/vanixiets-era-a"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        run(&[
            "oracle",
            "tests/clan-repos/vanixiets-era-b",
            "--domain",
            "zt"
        ])
        .status
        .code(),
        Some(0)
    );
    let out = run(&[
        "oracle",
        "examples/test-clan",
        "--inventory",
        "examples/test-clan/inventory.json",
        "--json",
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["issues"], serde_json::json!([]));
    // `inventory` prints exactly what AC3's snapshot pins.
    let out = run(&["inventory", "examples/test-clan/inventory.json"]);
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let snap =
        std::fs::read_to_string(Path::new(&root()).join("snapshots/instances-test-clan.snap"))
            .unwrap();
    let body = snap.splitn(3, "---").nth(2).unwrap();
    let pinned: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(printed, pinned);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (s, d) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&s).unwrap(), &d).unwrap();
        } else if ft.is_dir() {
            copy_dir(&s, &d);
        } else {
            std::fs::copy(&s, &d).unwrap();
        }
    }
}

/// AC1–AC4 refuse to touch machines when the repo contradicts itself: with an empty cassette any
/// command would fail as "no recording", so only pre-flight findings prove nothing ran.
#[test]
fn criteria_fail_with_the_inconsistency_before_any_ssh() {
    use clan_coordination::env::Settings;
    use clan_coordination::fleet::Fleet;
    use clan_coordination::names::Criterion;
    use clan_coordination::suite::{self, RunOptions};
    let tmp = tempfile::tempdir().unwrap();
    let clan = tmp.path().join("clan");
    copy_dir(&root().join("examples/test-clan"), &clan);
    // The story's field note: gcp-vm's address still on the network before it was recreated.
    std::fs::write(
        clan.join("vars/shared/zerotier-ip-gcp-vm-zerotier-local/ip/value"),
        "fdf1:ea98:6006:5066:e399:930e:7f41:c2a8",
    )
    .unwrap();
    let toml = std::fs::read_to_string(root().join("machines.toml"))
        .unwrap()
        .replace("clan_dir = \"examples/test-clan\"", "clan_dir = \"clan\"")
        .replace(
            "inventory_json = \"examples/test-clan/inventory.json\"",
            "inventory_json = \"clan/inventory.json\"",
        );
    std::fs::write(tmp.path().join("machines.toml"), toml).unwrap();
    let cassette = tmp.path().join("empty.json");
    std::fs::write(&cassette, r#"{"format": 1, "description": "nothing recorded", "machines_file": "machines.toml", "machines": {}}"#).unwrap();
    let fleet = Fleet::open(&Settings::replay(cassette)).unwrap();
    let progress = |l: &str| eprintln!("{l}");
    let opts = RunOptions::verdicts_only(false, &progress);
    for v in suite::run(&fleet, &Criterion::OBSERVED, &opts).unwrap() {
        assert!(!v.passed(), "{v}");
        assert!(
            v.failures().all(|f| f.code == "oracle.inconsistent"),
            "only pre-flight findings: {v}"
        );
        let f = v.failures().next().unwrap();
        assert_eq!(f.machine, "gcp-vm");
        assert!(
            f.seen.contains("f1ea9860065066e3") && f.cause.contains("no machine was contacted"),
            "{f}"
        );
    }
}

/// A copy of the example repo in a temporary directory (`<tmp>/clan`).
fn example_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let clan = tmp.path().join("clan");
    copy_dir(&root().join("examples/test-clan"), &clan);
    (tmp, clan)
}

const FAKE_AGE_KEY: &str =
    "AGE-SECRET-KEY-1QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7LQPZRY9X8GF2TVDW0S3JN54KHCE6";
const GCP_IP: &str = "vars/shared/zerotier-ip-gcp-vm-zerotier-local/ip/value";

fn load_err(clan: &Path) -> String {
    Oracle::load(clan, &[])
        .map(|_| "loaded".to_string())
        .unwrap_or_else(|e| e.to_string())
}

/// Issue 14: a pull request must not make CI print the operator's age key through a `value`
/// symlink (before the fix the IPv6 parse error quoted the key), nor a linked generator folder.
#[test]
fn a_value_resolving_outside_the_repo_is_refused_unread() {
    let (tmp, clan) = example_copy();
    let keys = tmp.path().join("keys.txt");
    std::fs::write(&keys, format!("# created: 2024-01-01\n{FAKE_AGE_KEY}\n")).unwrap();
    std::fs::remove_file(clan.join(GCP_IP)).unwrap();
    std::os::unix::fs::symlink(&keys, clan.join(GCP_IP)).unwrap();
    let e = load_err(&clan);
    assert!(
        e.contains(GCP_IP) && e.contains("outside the repository") && e.contains("keys.txt"),
        "{e}"
    );
    assert!(!e.contains("QPZRY9X8GF2T"), "the key leaked: {e}");

    // A generator folder linked out of the repo leads there too.
    let (tmp, clan) = example_copy();
    let outside = tmp.path().join("elsewhere/ip");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("value"), FAKE_AGE_KEY).unwrap();
    let gen = clan.join("vars/shared/zerotier-ip-gcp-vm-zerotier-local");
    std::fs::remove_dir_all(&gen).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("elsewhere"), &gen).unwrap();
    let e = load_err(&clan);
    assert!(e.contains("outside the repository"), "{e}");
    assert!(!e.contains("QPZRY9X8GF2T"), "the key leaked: {e}");

    // A link that stays inside the repo is fine.
    let (_tmp, clan) = example_copy();
    let inside = clan.join("vars/shared/zerotier-ip-hetzner-vm-zerotier-local/ip/value");
    std::fs::remove_file(clan.join(GCP_IP)).unwrap();
    std::fs::copy(&inside, clan.join("ip-copy")).unwrap();
    std::os::unix::fs::symlink(clan.join("ip-copy"), clan.join(GCP_IP)).unwrap();
    assert_eq!(load_err(&clan), "loaded");
}

#[test]
fn an_oversized_value_is_refused_with_the_cap() {
    let (_tmp, clan) = example_copy();
    let big = "f".repeat(clan_coordination::oracle::MAX_VALUE_BYTES as usize + 1);
    std::fs::write(clan.join(GCP_IP), big).unwrap();
    let e = load_err(&clan);
    assert!(
        e.contains(GCP_IP) && e.contains("larger than 65536 bytes"),
        "{e}"
    );
}

/// Parse errors say the file, what was expected, the length and a hash prefix: never the text.
#[test]
fn a_value_that_does_not_parse_is_not_quoted() {
    for (file, expected) in [
        (GCP_IP, "expected an IPv6 address"),
        (
            "vars/shared/zerotier-network-zerotier-local/network-id/value",
            "expected a ZeroTier network id",
        ),
        (
            "vars/shared/openssh-ca/id_ed25519.pub/value",
            "expected an OpenSSH public key",
        ),
    ] {
        let (_tmp, clan) = example_copy();
        std::fs::write(clan.join(file), format!("{FAKE_AGE_KEY}\n")).unwrap();
        let e = load_err(&clan);
        let size = format!("{} bytes, sha256 ", FAKE_AGE_KEY.len());
        assert!(
            e.contains(file) && e.contains(expected) && e.contains(&size),
            "{e}"
        );
        assert!(!e.contains("QPZRY9X8GF2T"), "the value leaked: {e}");
    }
}

/// clan's own view of the addresses (`clan.exports`, shape as clan-core evaluates it on the lab's
/// flake) against the vars: agreeing passes, an export naming another address is an error that
/// names the machine, both addresses and the var file.
#[test]
fn exported_addresses_are_cross_checked_with_the_vars() {
    use clan_coordination::oracle::exports::{cross_check, parse};
    use clan_coordination::oracle::Oracle;
    let dir = root().join("tests/cassettes/story-fleet/clan");
    let names = vec!["hetzner-vm".to_string(), "gcp-vm".to_string()];
    let o = Oracle::load(&dir, &names).unwrap();
    let var = |m: &str| {
        std::fs::read_to_string(dir.join(format!("vars/shared/zerotier-ip-{m}-zerotier/ip/value")))
            .unwrap()
            .trim()
            .to_string()
    };
    let exports = |gcp: &str| {
        serde_json::json!({
            "clan-core/zerotier:zerotier::": {"networking": {"module": "clan_lib.network.zerotier", "priority": 900}, "peer": null},
            "clan-core/zerotier:zerotier::gcp-vm": {"networking": null, "peer": {"SSHOptions": [], "hosts": [{"plain": gcp}], "name": "peer", "port": 22, "user": null}},
            "clan-core/zerotier:zerotier::hetzner-vm": {"networking": null, "peer": {"SSHOptions": [], "hosts": [{"plain": var("hetzner-vm")}], "name": "peer", "port": 22, "user": null}},
        })
    };
    assert!(cross_check(&o, &parse(&exports(&var("gcp-vm")))).is_empty());
    let issues = cross_check(&o, &parse(&exports("fd00::1")));
    assert_eq!(issues.len(), 1, "{issues:?}");
    let i = &issues[0];
    assert_eq!((i.machine.as_str(), i.rule), ("gcp-vm", "exports.address"));
    assert!(
        i.problem.contains("fd00::1") && i.problem.contains(&var("gcp-vm")),
        "{i}"
    );
    assert!(i.files[0].contains("zerotier-ip-gcp-vm-zerotier"), "{i}");
}
