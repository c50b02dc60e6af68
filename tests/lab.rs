//! The lab fleet, live: bring up 2 machines booted by real systemd (real sshd, real yggdrasil,
//! real certificates), pass AC1–AC4, then bring in each real fault, check that the intended criterion
//! fails with the intended cause while the criteria that do not depend on the fault still pass,
//! heal, and pass again. Skips with a visible reason where the lab cannot run (not root, packages
//! missing); CI installs the packages so it runs there.

use std::path::Path;

use clan_coord_lab as lab;
use clan_coordination::checks::Verdict;
use clan_coordination::config;
use clan_coordination::fleet::Fleet;

mod common;
mod skip;

fn verdicts(machines: &Path) -> Vec<Verdict> {
    let cfg = config::load(machines).unwrap();
    let fleet = Fleet::live(cfg, None, Path::new("snapshots")).unwrap();
    // A live fleet has no cassette: AC1–AC4, as before.
    common::verdicts(&fleet)
}

fn all_pass(vs: &[Verdict], when: &str) {
    for v in vs {
        assert!(v.passed(), "{when}: {} should pass\n{v}", v.criterion);
    }
}

/// (fault, machine, criterion that must fail, code it must show naming the machine, criteria
/// that must still pass).
const FAULTS: &[(&str, &str, &str, &str, &[&str])] = &[
    (
        "foreign-cert",
        "gcp-vm",
        "AC2",
        "ssh.foreign-ca",
        &["AC1", "AC3", "AC4"],
    ),
    (
        "user-key-revoked",
        "gcp-vm",
        "AC2",
        "ssh.user-key-refused",
        &["AC1", "AC3", "AC4"],
    ),
    (
        "shared-var-drift",
        "gcp-vm",
        "AC4",
        "shared.secret-differs",
        &["AC1", "AC2"],
    ),
    ("overlay-down", "gcp-vm", "AC1", "probe.failed", &["AC4"]),
    ("overlay-fail", "gcp-vm", "AC3", "ygg.unit", &["AC4"]),
    ("link-down", "gcp-vm", "AC1", "mesh.loss", &["AC3", "AC4"]),
    ("sshd-down", "gcp-vm", "AC2", "ssh.refused", &[]),
    (
        "slow-link",
        "gcp-vm",
        "AC1",
        "mesh.rtt-high",
        &["AC2", "AC3", "AC4"],
    ),
];

#[test_log::test]
fn lab_fleet_passes_fails_on_each_real_fault_and_heals() {
    let t = std::time::Instant::now();
    let Some(l) = common::Lab::start("clabt") else {
        return;
    };
    eprintln!("lab up: {:.2?}", t.elapsed());
    let dir = l.dir();
    // Idempotent: up again over a running lab cleans it first.
    let mf = common::up(dir, "clabt");
    assert_eq!(l.machines, mf);
    let state2 = lab::LabState::load(dir).unwrap().unwrap();
    assert_eq!(state2.machines.len(), 2);
    all_pass(&verdicts(&mf), "healthy lab");

    for (kind, m, crit, code, still) in FAULTS {
        lab::fault(dir, m, kind.parse().unwrap()).unwrap();
        let vs = verdicts(&mf);
        let v = vs.iter().find(|v| v.criterion == *crit).unwrap();
        assert!(!v.passed(), "{kind}: {crit} should fail\n{v}");
        let hit = v
            .failures()
            .find(|x| x.code == *code && (x.machine == *m || x.to.as_deref() == Some(*m)));
        let hit = hit.unwrap_or_else(|| panic!("{kind}: no {code} naming {m}\n{v}"));
        assert!(!hit.cause.is_empty(), "{kind}: no likely cause: {hit}");
        if *kind == "overlay-fail" {
            // A unit that really failed: systemd's Result says how.
            let said = hit.to_string();
            assert!(
                said.contains("ActiveState=failed") && said.contains("Result=exit-code"),
                "{said}"
            );
        }
        for v in vs.iter().filter(|v| still.contains(&v.criterion.id())) {
            assert!(v.passed(), "{kind}: {} should still pass\n{v}", v.criterion);
        }
        eprintln!(
            "fault {kind} on {m}: {crit} fails with {code}: {}",
            hit.cause
        );
        lab::heal(dir, None).unwrap();
        all_pass(&verdicts(&mf), &format!("healed after {kind}"));
    }

    // Sessions opened by the checks above (the harness's and machine-to-machine hops) are
    // still in the machines: down must end them with everything else.
    let lab_netns = common::netns_ids(&state2.namespaces());
    let t = std::time::Instant::now();
    assert!(lab::down(dir).unwrap());
    eprintln!("lab down: {:.2?}", t.elapsed());
    // Down twice is fine; nothing of the lab is left.
    assert!(!lab::down(dir).unwrap());
    common::assert_nothing_left(&state2, &lab_netns);
}

/// A tampered lab.json naming a process outside the lab (here a `sleep` in the host's own
/// namespace) as a machine must not make `lab down` kill it.
#[test]
fn lab_down_does_not_kill_a_process_outside_the_lab() {
    if !lab::is_root() {
        eprintln!("SKIPPED lab_down_does_not_kill_a_process_outside_the_lab: not root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let mut outsider = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pid = outsider.id();
    let machine = |i: usize, n: &str| {
        serde_json::json!({"name": n, "index": i, "mgmt_ip": format!("198.18.100.{}", 10 + i),
            "underlay_ip": format!("198.18.101.{}", 10 + i), "ygg_address": "200::1", "ygg_key": "ab"})
    };
    let tampered = serde_json::json!({"dir": dir, "prefix": "clabx", "domain": "clan",
        "mgmt_net": "198.18.100.0", "underlay_net": "198.18.101.0",
        "machines": [machine(0, "hetzner-vm"), machine(1, "gcp-vm")],
        "pids": {"hetzner-vm/machine": pid}});
    std::fs::write(dir.join("lab.json"), tampered.to_string()).unwrap();
    // The machine's namespace exists, as in a running lab; the outsider is not in it.
    let ns = "clabx-hetzner-vm";
    let ip = |a: &[&str]| std::process::Command::new("ip").args(a).status().unwrap();
    if Path::new("/run/netns").join(ns).exists() {
        ip(&["netns", "del", ns]);
    }
    assert!(ip(&["netns", "add", ns]).success());
    let mut notices = Vec::new();
    let was = lab::down_with(&dir, &mut |n| notices.push(n.to_string()));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let still = outsider.try_wait().unwrap().is_none();
    let _ = outsider.kill();
    let _ = outsider.wait();
    assert!(
        still,
        "lab down killed pid {pid}, a process outside the lab"
    );
    assert!(was.unwrap(), "the (tampered) lab was there");
    let why = format!(
        "not signalling pid {pid} (tracked as hetzner-vm/machine): it is not in the lab namespace {ns}"
    );
    assert!(
        notices.iter().any(|n| n.contains(&why)),
        "lab down did not say why: {notices:?}"
    );
    assert!(
        !Path::new("/run/netns").join(ns).exists(),
        "{ns} left behind"
    );
}

/// A bind holds the directory it was made on: when the lab's directory is replaced (removed and
/// made again), the machine keeps seeing the old one; when a bind is taken away, it sees its root
/// file system's path. `lab status` must say which, and `lab heal` must bind it again (it reboots
/// the machine, as a real machine picks up a new mount).
#[test_log::test]
fn lab_status_reports_a_directory_no_longer_bound_and_heal_binds_it_again() {
    let Some(l) = common::Lab::start("clabs") else {
        return;
    };
    let dir = l.dir();
    assert!(!lab::status(dir).unwrap().contains("no longer bound"));
    let src = std::fs::canonicalize(dir)
        .unwrap()
        .join("machines/gcp-vm/etc-ssh");
    let old = src.with_extension("old");
    std::fs::rename(&src, &old).unwrap();
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(&old)
        .arg(&src)
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::write(src.join("marker"), "new directory\n").unwrap();
    let status = lab::status(dir).unwrap();
    let want = format!(
        "lab machine gcp-vm: /etc/ssh no longer bound to {}",
        src.display()
    );
    assert!(
        status.contains(&want),
        "status does not report it:\n{status}"
    );
    assert!(!status.contains("hetzner-vm: /etc/ssh"), "{status}");
    assert!(
        status.contains("the lab's directory was replaced"),
        "{status}"
    );
    lab::heal(dir, None).unwrap();
    let status = lab::status(dir).unwrap();
    assert!(
        !status.contains("no longer bound"),
        "heal did not bind it again:\n{status}"
    );
    let state = lab::LabState::load(dir).unwrap().unwrap();
    let marker = state
        .exec_in("gcp-vm", &["cat", "/etc/ssh/marker"])
        .unwrap();
    assert_eq!(marker, "new directory\n");

    // A bind taken away inside the machine: it sees its root file system's /etc/ssh.
    let ok = std::process::Command::new("nsenter")
        .args([
            "-t",
            &state.init("gcp-vm").unwrap().to_string(),
            "-m",
            "--",
            "umount",
            "/etc/ssh",
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = lab::status(dir).unwrap();
    assert!(
        status.contains(&want) && status.contains("the bind is gone"),
        "{status}"
    );
    lab::heal(dir, Some("gcp-vm")).unwrap();
    let status = lab::status(dir).unwrap();
    assert!(
        !status.contains("no longer bound"),
        "heal did not bind it again:\n{status}"
    );
    // The rebooted machine's activation set root's hash from its deployed var, as AC3 reads it.
    let state = lab::LabState::load(dir).unwrap().unwrap();
    let shadow = state
        .exec_in("gcp-vm", &["getent", "shadow", "root"])
        .unwrap();
    assert!(shadow.contains(lab::LAB_ROOT_HASH), "{shadow}");
}

/// bench/bench.sh makes one lab directory per lab (private test keys inside): none may be left
/// behind, whether the benchmark finishes or fails. Run against a stand-in clan-coord.
#[test]
fn bench_sh_leaves_no_lab_directory_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let stub = tmp.path().join("clan-coord");
    std::fs::write(
        &stub,
        r#"#!/bin/sh
# stand-in clan-coord for bench.sh: a lab up writes a key, `check` fails when asked to
echo "$*" >> "$STUB_LOG"
case "$1" in
  lab) dir=$(echo "$*" | sed -n 's/.*--dir \([^ ]*\).*/\1/p')
       if [ "$2" = up ]; then
         mkdir -p "$dir/ca" "$dir/workstation"
         echo "ssh-ed25519 AAAAtest ca" > "$dir/ca/ca.pub"
         echo "PRIVATE TEST KEY" > "$dir/workstation/id_ed25519"
         printf '{"dir":"%s","domain":"clan","machines":[]}' "$dir" > "$dir/lab.json"
       fi ;;
  plan) echo '{}' ;;
  check) [ "$STUB_FAIL" = 1 ] && exit 1 ;;
esac
exit 0
"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    for fail in ["0", "1"] {
        let labs = tmp.path().join(format!("labs-{fail}"));
        std::fs::create_dir_all(&labs).unwrap();
        let log = tmp.path().join(format!("calls-{fail}"));
        let out = std::process::Command::new("bash")
            .args(["bench/bench.sh", "1"])
            .env("COMPARE", "")
            .env("SCALE", "2")
            .env("BENCH_BIN", &stub)
            .env("BENCH_OUT", tmp.path().join("out"))
            .env("TMPDIR", &labs)
            .env("STUB_LOG", &log)
            .env("STUB_FAIL", fail)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.success(), fail == "0", "bench.sh: {said}");
        let calls = std::fs::read_to_string(&log).unwrap();
        assert!(
            calls.contains("lab up") && calls.contains("lab down"),
            "{calls}"
        );
        let left: Vec<_> = std::fs::read_dir(&labs)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(
            left.is_empty(),
            "bench.sh (check failing: {fail}) left {left:?}"
        );
    }
}
