//! The verdict corpus: every broken cassette makes exactly its intended criterion fail, with the
//! intended finding code naming the intended machine, while the other criteria still pass; the
//! healthy cassette passes all. Failing findings must say what was seen, expected and why.

use std::path::{Path, PathBuf};

use clan_coordination::checks::{Finding, Outcome, Severity, Verdict};
use clan_coordination::env::Settings;
use clan_coordination::fleet::Fleet;
use rstest::rstest;

#[allow(dead_code)] // the lab half of common is for the lab tests
mod common;
mod skip;

/// The cases of `each_broken_fleet_...` are globbed when this file compiles; depending on the
/// fault table that writes the corpus (`cargo xtask broken`) recompiles it when a fleet is added.
/// tests/generated.rs fails on a broken cassette the table does not write.
const _FAULT_TABLE: &str = include_str!("../xtask/src/broken.rs");

fn verdicts(cassette: &Path) -> (Fleet, Vec<Verdict>) {
    let fleet = Fleet::open(&Settings::replay(cassette.to_path_buf()))
        .unwrap_or_else(|e| panic!("{}: {e}", cassette.display()));
    let v = common::verdicts(&fleet);
    (fleet, v)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cassettes")
}

/// A real run, recorded from the healthy lab (`clan-coord lab check --record tests/cassettes/lab`),
/// replays to the same verdicts: the replay path matches a live one.
#[test]
fn recorded_lab_run_replays_to_all_passing() {
    let (fleet, vs) = verdicts(&root().join("lab/cassette.json"));
    assert_eq!(fleet.machines(), vec!["hetzner-vm", "gcp-vm"]);
    for v in &vs {
        assert!(v.passed(), "{v}");
    }
}

/// The story fleet, the healthy 2-machine ZeroTier lab recorded (real ZeroTier 1.14.1; AC6
/// changes the network MTU and waits until the members fetch it), replays to all six criteria
/// passing, and AC6 saw the setting on every member.
#[test]
fn story_fleet_recording_replays_to_all_passing() {
    let (fleet, vs) = verdicts(&root().join("story-fleet/cassette.json"));
    assert_eq!(fleet.machines(), vec!["hetzner-vm", "gcp-vm"]);
    // The inventory is the recorded `nix eval` of the lab's flake: what clan-core evaluated live.
    assert!(
        fleet.expect.inventory_origin.starts_with("nix ")
            && fleet.expect.inventory_origin.contains("path:clan#"),
        "{}",
        fleet.expect.inventory_origin
    );
    let ran: Vec<String> = vs.iter().map(|v| v.criterion.to_string()).collect();
    assert_eq!(ran, ["AC1", "AC2", "AC3", "AC4", "AC5", "AC6"]);
    for v in &vs {
        assert!(v.passed(), "{v}");
    }
    let ac6 = of(&vs, "AC6");
    let arrived: Vec<&str> = ac6
        .findings
        .iter()
        .filter(|x| x.code == "zt.settings" && x.severity == Severity::Pass)
        .map(|x| x.machine.as_str())
        .collect();
    assert_eq!(arrived, vec!["gcp-vm", "hetzner-vm"], "{ac6}");
    assert!(
        ac6.findings
            .iter()
            .all(|x| x.code != "zt.settings" || x.seen.contains("mtu 2700")),
        "{ac6}"
    );
}

/// A member still holding the old network config after AC6's change: AC6 fails on it with what
/// it holds, what the controller serves, and a cause that agrees with its pings passing.
#[test]
fn a_setting_that_has_not_reached_a_member_fails_ac6_on_that_member() {
    let ac6 = of(&broken("zt-setting-not-arrived"), "AC6");
    let x = ac6
        .failures()
        .find(|x| x.code == "zt.settings-not-arrived")
        .expect("zt.settings-not-arrived");
    assert_eq!(x.machine, "gcp-vm");
    assert!(x.seen.starts_with("mtu 2800"), "{x}");
    assert!(
        x.expected.starts_with("mtu 2700") && x.expected.contains("hetzner-vm serves"),
        "{x}"
    );
    assert!(
        x.cause.contains("about every 60 s") && x.cause.contains("exchange overlay pings"),
        "{x}"
    );
    assert!(
        ac6.notes
            .iter()
            .any(|n| n.contains("had still not reached gcp-vm")),
        "{ac6}"
    );
}

/// The story fleet with `replace` applied (a cassette written to a temporary directory).
fn story_with(replace: serde_json::Value) -> (tempfile::TempDir, Vec<Verdict>) {
    let dir = tempfile::tempdir().unwrap();
    let c = serde_json::json!({
        "format": 2,
        "description": "the story fleet with one change (a test's)",
        "derive_from": root().join("story-fleet/cassette.json").display().to_string(),
        "replace": replace,
    });
    let path = dir.path().join("story-with.json");
    std::fs::write(&path, c.to_string()).unwrap();
    let (_, vs) = verdicts(&path);
    (dir, vs)
}

/// A healthy root is contacted only every 224 s: its `lastReceive` 200 s behind the node's
/// latest send is normal, not silence. zt-root-silent's change to gcp-vm's peers alone (every
/// root path last heard 250 s before the node's latest send) fails AC1; with 200 s it passes.
#[test]
fn a_root_last_heard_200_s_ago_is_not_silent() {
    let broken: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("broken/zt-root-silent.json")).unwrap(),
    )
    .unwrap();
    let peers = broken["replace"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["machine"] == "gcp-vm" && r["command"] == "zerotier-cli -j peers")
        .expect("zt-root-silent changes gcp-vm's peers")
        .clone();
    let (_d, vs) = story_with(serde_json::json!([peers.clone()]));
    let ac1 = of(&vs, "AC1");
    assert!(ac1.failures().any(|x| x.code == "zt.root-silent"), "{ac1}");
    // Each `"lastReceive": N,` the fault writes, 50 s later.
    let mut later = peers.clone();
    for p in later["stdout_replace"].as_array_mut().unwrap() {
        let to = p[1].as_str().unwrap();
        let n: u64 = to
            .trim_start_matches("\"lastReceive\": ")
            .trim_end_matches(',')
            .parse()
            .unwrap();
        p[1] = format!("\"lastReceive\": {},", n + 50_000).into();
    }
    let (_d, vs) = story_with(serde_json::json!([later]));
    let ac1 = of(&vs, "AC1");
    assert!(ac1.passed(), "{ac1}");
}

/// `peers` unreadable: whether the roots answer is UNCHECKED with the reason, never a pass.
#[test]
fn unreadable_peers_leave_the_roots_unchecked() {
    let (_d, vs) = story_with(
        serde_json::json!([{"machine": "gcp-vm", "command": "zerotier-cli -j peers", "stdout": "[{\"address\": 12}]\n"}]),
    );
    let ac1 = of(&vs, "AC1");
    let f = ac1
        .findings
        .iter()
        .find(|f| f.code == "zt.roots-unseen")
        .unwrap_or_else(|| panic!("{ac1}"));
    assert_eq!(
        (f.severity, f.machine.as_str()),
        (Severity::Unchecked, "gcp-vm"),
        "{ac1}"
    );
    assert!(!ac1.passed(), "{ac1}");
}

#[test]
fn broken_corpus_has_at_least_12_fleets() {
    let files: Vec<PathBuf> = std::fs::read_dir(root().join("broken"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert!(
        files.len() >= 12,
        "the corpus needs at least 12 broken fleets, found {}",
        files.len()
    );
}

/// One case per broken fleet, named after its file.
#[rstest]
fn each_broken_fleet_fails_exactly_its_criterion_with_its_cause(
    #[base_dir = "tests/cassettes/broken"]
    #[files("*.json")]
    f: PathBuf,
) {
    let (fleet, vs) = verdicts(&f);
    let expect = fleet
        .cassette
        .as_ref()
        .and_then(|c| c.cassette.expect.clone())
        .unwrap_or_else(|| panic!("{} has no expect block", f.display()));
    for v in &vs {
        if v.criterion == expect.criterion {
            assert!(
                !v.passed(),
                "{}: {} should fail\n{v}",
                f.display(),
                v.criterion
            );
            // The fault's finding fails, or (where the fault hides what was to be checked)
            // stays UNCHECKED and keeps the criterion from passing.
            let hit = shown(v, expect.code.as_str()).find(|x| {
                x.machine == expect.machine || x.to.as_deref() == Some(expect.machine.as_str())
            });
            let hit = hit.unwrap_or_else(|| {
                panic!(
                    "{}: no failing or unchecked finding {} naming {}\n{v}",
                    f.display(),
                    expect.code,
                    expect.machine
                )
            });
            assert!(
                !hit.seen.is_empty() && !hit.expected.is_empty(),
                "{}: finding lacks seen/expected: {hit}",
                f.display()
            );
            assert!(
                hit.severity == Severity::Unchecked || !hit.cause.is_empty(),
                "{}: failing finding lacks a cause: {hit}",
                f.display()
            );
            for x in v.failures() {
                assert!(
                    !x.cause.is_empty(),
                    "{}: failing finding without a likely cause: {x}",
                    f.display()
                );
            }
        } else if let Some(also) = expect.also.iter().find(|a| v.criterion == a.criterion) {
            assert!(
                !v.passed() && shown(v, also.code.as_str()).next().is_some(),
                "{}: {} should also fail or stay unchecked with {}\n{v}",
                f.display(),
                v.criterion,
                also.code
            );
        } else {
            assert!(
                v.passed(),
                "{}: {} should still pass\n{v}",
                f.display(),
                v.criterion
            );
        }
    }
}

/// Findings with `code` that keep a verdict from passing: failing, or UNCHECKED.
fn shown<'a>(v: &'a Verdict, code: &'a str) -> impl Iterator<Item = &'a Finding> + 'a {
    v.findings.iter().filter(move |x| {
        x.code == code && matches!(x.severity, Severity::Fail | Severity::Unchecked)
    })
}

#[test]
fn missing_recording_names_machine_and_command() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("empty.json");
    std::fs::write(
        &c,
        format!(
            r#"{{"format":1,"machines_file":"{}/machines.toml","machines":{{}}}}"#,
            env!("CARGO_MANIFEST_DIR")
        ),
    )
    .unwrap();
    let (_, vs) = verdicts(&c);
    let text = vs[0].to_string();
    assert!(!vs[0].passed());
    assert!(
        text.contains("has no recording of `zerotier-cli -j info`"),
        "{text}"
    );
}

/// A slow path and one slow echo both fail AC1's RTT check, with different likely causes.
#[test]
fn one_slow_echo_is_told_from_a_slow_path() {
    let cause = |name: &str| {
        let (_, vs) = verdicts(&root().join("broken").join(name));
        let ac1 = vs.iter().find(|v| v.criterion == "AC1").unwrap();
        let f = ac1.failures().find(|x| x.code == "mesh.rtt-high").unwrap();
        (f.seen.clone(), f.cause.clone())
    };
    let (seen, why) = cause("mesh-one-slow-echo.json");
    assert!(seen.contains("echoes 0.3, 264.0, 0.1"), "{seen}");
    assert!(
        why.starts_with("one slow echo (icmp_seq=2, 264.0 ms; the other 2 at most 0.3 ms)"),
        "{why}"
    );
    let (_, why) = cause("mesh-rtt-250.json");
    assert!(why.starts_with("slow path"), "{why}");
}

/// The verdicts of one broken fleet.
fn broken(name: &str) -> Vec<Verdict> {
    verdicts(&root().join("broken").join(format!("{name}.json"))).1
}

fn of(vs: &[Verdict], criterion: &str) -> Verdict {
    vs.iter()
        .find(|v| v.criterion == criterion)
        .cloned()
        .unwrap_or_else(|| panic!("no {criterion}"))
}

/// A criterion with nothing checked, or with only information, is not a pass.
#[test]
fn zero_checks_is_not_a_pass() {
    use clan_coordination::names::Criterion;
    let empty = Verdict::new(Criterion::Ac2, vec![], vec![]);
    assert_eq!(empty.outcome(), Outcome::Incomplete);
    assert!(!empty.passed());
    assert!(
        empty.to_string().contains("INCOMPLETE (no check was made"),
        "{empty}"
    );
    let info = Verdict::new(
        Criterion::Ac4,
        vec![Finding::new(Severity::Info, "x.info", "m", "something")],
        vec![],
    );
    assert!(!info.passed());
    let unchecked = Verdict::new(
        Criterion::Ac3,
        vec![
            Finding::new(Severity::Pass, "x.ok", "m", "one"),
            Finding::unchecked("x.unseen", "m", "two", "not observed"),
        ],
        vec![],
    );
    assert_eq!(unchecked.outcome(), Outcome::Incomplete);
    assert!(unchecked.to_string().contains("m: two"), "{unchecked}");
}

/// report.json keeps its fields and adds `result` (pass, fail, incomplete) and, on dependents,
/// `depends_on`.
#[test]
fn report_json_says_the_result_and_what_a_finding_depends_on() {
    let vs = broken("machine-unreachable");
    let dir = tempfile::tempdir().unwrap();
    for v in &vs {
        clan_coordination::report::record(dir.path(), "replay", v).unwrap();
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    let ac1 = &json["verdicts"][0];
    assert_eq!(ac1["criterion"], "AC1");
    assert_eq!(ac1["result"], "fail");
    let findings = ac1["findings"].as_array().unwrap();
    assert!(findings.iter().all(|f| f["severity"].is_string()
        && f["code"].is_string()
        && f["machine"].is_string()
        && f["seen"].is_string()));
    assert!(findings
        .iter()
        .any(|f| f["depends_on"] == "gcp-vm: the harness cannot reach it (connection refused)"));
}

/// One machine the harness cannot reach: each criterion names it once, as a failure quoting the
/// transport's words with a cause read from them, and marks gcp-vm's own checks UNCHECKED.
#[test]
fn one_unreachable_machine_is_named_once_and_its_checks_depend_on_it() {
    let vs = broken("machine-unreachable");
    for v in &vs {
        let roots: Vec<&Finding> = v
            .failures()
            .filter(|x| x.code == "machine.unreachable")
            .collect();
        assert_eq!(roots.len(), 1, "{v}");
        let r = roots[0];
        assert_eq!(r.machine, "gcp-vm");
        assert!(r.seen.contains("Connection refused (os error 111)"), "{r}");
        assert!(r.cause.contains("refused the TCP connection"), "{r}");
        assert_ne!(r.seen, r.cause);
        // Nothing observed on gcp-vm fails on its own: it depends on the root.
        for x in v
            .findings
            .iter()
            .filter(|x| x.machine == "gcp-vm" && x.code != r.code)
        {
            assert!(
                x.severity == Severity::Unchecked
                    && x.depends_on.as_deref()
                        == Some("gcp-vm: the harness cannot reach it (connection refused)")
                    || x.command.is_empty(),
                "{v}"
            );
        }
        let n = v.unchecked().count();
        assert!(n > 0, "{v}");
        let table = clan_coordination::report::summary(&[v]);
        assert!(
            table
                .lines()
                .nth(1)
                .unwrap()
                .trim_end()
                .ends_with(&format!(" {n}")),
            "{table}"
        );
    }
    // What hetzner-vm saw of gcp-vm is evidence of its own, and agrees with the root.
    let ac2 = of(&vs, "AC2");
    let hop = ac2
        .failures()
        .find(|x| x.code == "ssh.refused")
        .expect("refused hop");
    assert_eq!(
        (hop.machine.as_str(), hop.to.as_deref()),
        ("hetzner-vm", Some("gcp-vm"))
    );
}

/// Root's authorized keys emptied on gcp-vm: AC2 fails the refused key, and the CA line and
/// host certificate it never read are UNCHECKED dependents (`known-hosts-unread`,
/// `served-unread`), not the failures `no-ca-line`/`no-host-cert` they were before.
#[test]
fn emptied_root_keys_fail_the_key_and_leave_what_was_never_read_unchecked() {
    let ac2 = of(&broken("root-keys-emptied"), "AC2");
    let codes: Vec<&str> = ac2.failures().map(|x| x.code).collect();
    assert_eq!(
        codes,
        vec!["machine.unreachable", "ssh.user-key-refused"],
        "{ac2}"
    );
    for code in ["ssh.known-hosts-unread", "ssh.served-unread"] {
        let x = ac2.findings.iter().find(|x| x.code == code).expect(code);
        assert_eq!(x.severity, Severity::Unchecked, "{x}");
        assert_eq!(
            x.depends_on.as_deref(),
            Some("gcp-vm: the harness cannot reach it (authentication refused)")
        );
    }
    let root = ac2.failures().next().unwrap();
    assert!(root.cause.contains("authorized_keys"), "{root}");
}

/// `"online": false` with the TCP fallback active is OFFLINE, a failure, not a TUNNELED warning.
#[test]
fn an_offline_node_fails_even_with_its_tcp_fallback_active() {
    let ac1 = of(&broken("zt-offline-tunneled"), "AC1");
    let x = ac1
        .failures()
        .find(|x| x.code == "zt.offline")
        .expect("zt.offline");
    assert!(x.seen.contains("\"tcpFallbackActive\": true"), "{x}");
    assert!(
        !ac1.findings.iter().any(|x| x.code == "zt.tunneled"),
        "{ac1}"
    );
    // Its pings passed in the same run: the cause does not say the host has no network.
    assert!(
        x.cause.contains("passed in this run") && !x.cause.contains("no network"),
        "{x}"
    );
}

/// zerotier-cli failing on gcp-vm: AC1 names it once (the networks depend on it), AC3's
/// membership and AC4's network id are UNCHECKED with the command, exit and its words.
#[test]
fn a_failing_zerotier_cli_leaves_membership_and_network_id_unchecked() {
    let vs = broken("zt-cli-no-token");
    let ac1 = of(&vs, "AC1");
    assert_eq!(ac1.failures().count(), 1, "{ac1}");
    assert_eq!(
        ac1.unchecked()
            .next()
            .and_then(|x| x.depends_on.clone())
            .as_deref(),
        Some("gcp-vm: `zerotier-cli -j info` (exit 1)")
    );
    for (c, code) in [("AC3", "zt.member"), ("AC4", "shared.network-id")] {
        let v = of(&vs, c);
        assert_eq!(v.outcome(), Outcome::Incomplete, "{v}");
        let x = v.unchecked().find(|x| x.code == code).expect(code);
        assert_eq!(x.command, "zerotier-cli -j listnetworks");
        assert_eq!(x.exit, Some(1));
        assert!(x.seen.contains("missing authentication token"), "{x}");
        assert!(v.to_string().contains("INCOMPLETE"), "{v}");
    }
}

/// A machines.toml that leaves out an inventory machine passes no criterion: each says which
/// checks of gcp-vm it could not make.
#[test]
fn a_machines_toml_omitting_an_inventory_machine_does_not_pass() {
    for v in broken("machines-toml-omits-gcp") {
        assert!(!v.passed(), "{v}");
        let x = v
            .unchecked()
            .find(|x| x.code == "fleet.not-configured")
            .expect("unchecked");
        assert!(x.seen.starts_with("not in machines.toml"), "{x}");
        assert!(
            x.machine == "gcp-vm" || x.to.as_deref() == Some("gcp-vm"),
            "{x}"
        );
    }
}

/// `[fleet] only` narrows the fleet on purpose: every verdict says so, gcp-vm is not reported
/// missing, and what one machine can show passes (AC2 needs a pair: it checks nothing, so it
/// is incomplete, not passed).
#[test]
fn fleet_only_checks_the_subset_and_every_verdict_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    let toml = dir.path().join("machines.toml");
    // The story fleet's machines.toml with hetzner-vm only, its paths made absolute.
    let story = std::fs::read_to_string(root().join("story-fleet/machines.toml")).unwrap();
    let gcp = "\n[[machine]]\nname = \"gcp-vm\"\naddress = \"198.18.100.11\"\n";
    assert!(story.contains(gcp), "{story}");
    let clan = format!("{crate_dir}/tests/cassettes/story-fleet/clan");
    std::fs::write(
        &toml,
        story
            .replace(gcp, "")
            .replace("clan_dir = \"clan\"", &format!("clan_dir = \"{clan}\""))
            .replace(
                "inventory_json = \"clan/",
                &format!("inventory_json = \"{clan}/"),
            )
            .replace("[fleet]\n", "[fleet]\nonly = [\"hetzner-vm\"]\n"),
    )
    .unwrap();
    let mut settings = Settings::replay(root().join("story-fleet/cassette.json"));
    settings.machines = Some(toml.clone());
    let fleet = Fleet::open(&settings).unwrap();
    for v in common::verdicts(&fleet) {
        assert_eq!(
            v.notes.first().map(String::as_str),
            Some("checked only hetzner-vm of the inventory's gcp-vm, hetzner-vm: [fleet] only"),
            "{v}"
        );
        assert!(v.to_string().contains("[fleet] only"));
        assert!(
            !v.findings.iter().any(|x| x.code == "fleet.not-configured"),
            "{v}"
        );
        match v.criterion.to_string().as_str() {
            "AC2" => assert_eq!(v.outcome(), Outcome::Incomplete, "{v}"),
            _ => assert!(v.passed(), "{v}"),
        }
    }
    // A machine outside `only`, or an `only` naming no inventory machine, is refused.
    let text = std::fs::read_to_string(&toml).unwrap();
    let with_gcp = text.clone() + "\n[[machine]]\nname = \"gcp-vm\"\naddress = \"198.18.100.11\"\n";
    let err = clan_coordination::config::parse(&toml, &with_gcp).unwrap_err();
    assert!(err.to_string().contains("not in [fleet] only"), "{err}");
    std::fs::write(
        &toml,
        text.replace("[\"hetzner-vm\"]", "[\"hetzner-vm\", \"aws-vm\"]"),
    )
    .unwrap();
    let err = Fleet::open(&settings)
        .err()
        .expect("aws-vm is no inventory machine");
    assert!(err.to_string().contains("\"aws-vm\""), "{err}");
}

/// Causes follow from the evidence and agree with the rest of the run (issue 13's re-read of
/// the AC1, AC3 and AC4 fleets); "seen" quotes the output, never the cause.
#[test]
fn causes_follow_from_what_the_run_saw() {
    let cause = |fleet: &str, c: &str, code: &str| {
        let v = of(&broken(fleet), c);
        let x = v
            .failures()
            .find(|x| x.code == code)
            .unwrap_or_else(|| panic!("{fleet}: {code}\n{v}"))
            .clone();
        (x.seen, x.cause)
    };
    let (_, why) = cause("mesh-loss-one-direction", "AC1", "mesh.loss");
    assert!(why.starts_with("gcp-vm answers the other way"), "{why}");
    let (seen, why) = cause("mesh-no-route", "AC1", "mesh.no-route");
    assert_eq!(seen, "ping: connect: Network is unreachable");
    assert!(
        why.contains("gcp-vm's own kernel") && why.contains("not a fault of hetzner-vm"),
        "{why}"
    );
    let (_, why) = cause(
        "zt-requesting-configuration",
        "AC1",
        "zt.requesting-configuration",
    );
    assert!(
        why.contains("does not answer this member") && !why.contains("controller down"),
        "{why}"
    );
    let (_, why) = cause("zt-autoaccept-missing", "AC1", "zt.autoaccept-missing");
    assert!(!why.contains("not the controller"), "{why}");
    let (_, why) = cause("zt-address-mismatch", "AC1", "zt.address-mismatch");
    assert!(why.contains("embeds network a4e35ecb9ae66e31"), "{why}");
    let (seen, why) = cause("sshd-client-no-ca", "AC3", "sshd.client-no-ca");
    assert!(seen.starts_with("no @cert-authority line"), "{seen}");
    assert!(why.contains("holds the sshd client role"), "{why}");
    let (seen, why) = cause("shared-ca-differs", "AC3", "sshd.client-no-ca");
    assert!(
        seen.contains("names CA") && why.contains("trusts another CA"),
        "{why}"
    );
    let (_, why) = cause("ygg-no-peers", "AC1", "ygg.no-peers");
    assert!(
        why.contains("passed in this run") && !why.contains("daemons down"),
        "{why}"
    );
    let (seen, _) = cause("zt-network-recreated", "AC3", "zt.member");
    assert_eq!(seen, "joined: [a4e35ecb9ae66e31 OK]");
    let (seen, why) = cause("zt-cli-no-token", "AC1", "probe.failed");
    assert!(
        seen.starts_with("zerotier-cli: missing authentication token"),
        "{seen}"
    );
    assert!(!why.contains("output starts"), "{why}");
    // No failing finding of AC1, AC3 or AC4 in the corpus says the same thing twice.
    for f in std::fs::read_dir(root().join("broken")).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_none_or(|x| x != "json") {
            continue;
        }
        for v in verdicts(&f).1 {
            if ["AC1", "AC3", "AC4"].contains(&v.criterion.to_string().as_str()) {
                for x in v.failures() {
                    assert_ne!(x.seen, x.cause, "{}: {x}", f.display());
                }
            }
        }
    }
}
