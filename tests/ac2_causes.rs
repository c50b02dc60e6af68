//! AC2's causes follow the evidence of each broken fleet: the certificate the hop was shown
//! (CA, window, known_hosts line), what the client trusts in every file it reads, the served
//! certificate against the repo, and how a connection failed. Each case names the words its
//! cause must say, and the words of a wrong cause it must not say (tests/verdicts.rs checks the
//! codes).

use std::path::PathBuf;

use clan_coordination::checks::{self, Finding, Verdict};
use clan_coordination::env::Settings;
use clan_coordination::fleet::Fleet;
use clan_coordination::names::Criterion;
use clan_coordination::suite::observe_read_only;
use rstest::rstest;

fn ac2(name: &str) -> Verdict {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cassettes")
        .join(name);
    let fleet = Fleet::open(&Settings::replay(path.clone()))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // AC1 observed too: a hop's cause reads the ping over the same pair.
    let obs = observe_read_only(&fleet, &[Criterion::Ac1, Criterion::Ac2]);
    checks::evaluate(Criterion::Ac2, &fleet.expect, &obs)
}

fn failure<'a>(v: &'a Verdict, code: &str, place: &str) -> &'a Finding {
    v.failures()
        .find(|f| f.code == code && f.place() == place)
        .unwrap_or_else(|| panic!("no {code} at {place}\n{v}"))
}

#[rstest]
#[case::expired_says_when("broken/ssh-cert-expired.json", "ssh.cert-expired", "hetzner-vm → gcp-vm",
    &["expired on 2026-01-01T00:00:00", "hetzner-vm's clock read 2026-11-30T04:15:13", "serial 7", "vars", "valid forever"],
    &["Certificate invalid: expired", "valid from 2025-01-01T00:00:00 to 2026-01-01T00:00:00"],
    &["missing", "no @cert-authority line", "not signed by"])]
#[case::served_expired_on_own_clock("broken/ssh-cert-expired.json", "ssh.cert-expired", "gcp-vm",
    &["expired on 2026-01-01T00:00:00", "gcp-vm's clock read 2026-11-30T04:15:13"], &["Valid: from 2025-01-01T00:00:00"], &[])]
#[case::not_yet_valid("broken/ssh-cert-not-yet-valid.json", "ssh.cert-not-yet-valid", "hetzner-vm → gcp-vm",
    &["valid only from 2099-01-01T00:00:00", "clock"], &["Certificate invalid: not yet valid"], &["expired"])]
#[case::accepted_other_ca("broken/ssh-accepted-other-ca.json", "ssh.accepted-foreign-ca", "hetzner-vm → gcp-vm",
    &["ecdsa-sha2-nistp256 SHA256:eX4AaGQroNZNMm3nWZnIt621DYgSqRxV/47oOu4QB6g", "/etc/ssh/ssh_known_hosts2:1", "not the clan's openssh-ca ssh-ed25519 SHA256:suN8VUJ4gb5R2ma/HNuFFyQdWDqe9162xrhSi7DPFPo"],
    &["Found CA key in /etc/ssh/ssh_known_hosts2:1"], &[])]
#[case::served_foreign_ca("broken/ssh-foreign-ca.json", "ssh.foreign-ca", "gcp-vm",
    &["signed by ECDSA SHA256:eX4AaGQroNZNMm3nWZnIt621DYgSqRxV/47oOu4QB6g", "not by the clan's openssh-ca"], &["Signing CA: ECDSA"], &[])]
#[case::hop_to_foreign_ca_blames_the_server("broken/ssh-foreign-ca.json", "ssh.no-matching-ca", "hetzner-vm → gcp-vm",
    &["gcp-vm's certificate is signed by ecdsa-sha2-nistp256", "that hetzner-vm trusts", "/etc/ssh/ssh_known_hosts:1"],
    &["No matching CA found", "CA ecdsa-sha2-nistp256"], &["missing"])]
#[case::ca_differs_blames_the_client("broken/shared-ca-differs.json", "ssh.client-other-ca", "gcp-vm → hetzner-vm",
    &["gcp-vm trusts for hetzner-vm.clan only another CA", "redeploy gcp-vm"],
    &["ssh-ed25519 SHA256:EVU8tbvNrweaFASzXV2eaEM7o9QY5IDxs4Ym6v3C/8o at /etc/ssh/ssh_known_hosts:1"], &["hetzner-vm's certificate was signed"])]
#[case::ca_differs_hop("broken/shared-ca-differs.json", "ssh.no-matching-ca", "gcp-vm → hetzner-vm",
    &["gcp-vm trusts for hetzner-vm.clan only ssh-ed25519 SHA256:EVU8tbvNrweaFASzXV2eaEM7o9QY5IDxs4Ym6v3C/8o at /etc/ssh/ssh_known_hosts:1", "that signed hetzner-vm's certificate"],
    &["No matching CA found"], &["regenerate openssh-cert"])]
#[case::no_ca_line_with_client_role("broken/sshd-client-no-ca.json", "ssh.no-ca-line", "gcp-vm → hetzner-vm",
    &["gcp-vm holds the sshd client role (sshd-clan/client)", "redeploy gcp-vm"], &["/etc/ssh/ssh_known_hosts (0 CA lines)"], &["lacks the sshd client role"])]
#[case::cert_not_repo("broken/ssh-cert-not-repo.json", "ssh.cert-not-repo", "gcp-vm",
    &["other than its vars"], &["serial 3 (vars: 0)", "valid from 2026-01-01T00:00:00 to 2099-01-01T00:00:00 (vars: forever)"], &[])]
#[case::banner_timeout_is_not_silence("broken/ssh-banner-timeout.json", "ssh.banner-timeout", "hetzner-vm → gcp-vm",
    &["connected, but no SSH banner came within 5 s", "sshd.service on gcp-vm: active/running"],
    &["Connection established", "Connection timed out during banner exchange"], &["no TCP answer"])]
#[case::timeout_with_pings_passing("broken/ssh-connect-timeout.json", "ssh.timeout", "hetzner-vm → gcp-vm",
    &["no answer within ConnectTimeout=5 s", "pings to gcp-vm got 3 of 3 replies", "firewall"], &["Connection timed out"], &["overlay path hetzner-vm → gcp-vm is down"])]
#[case::refused_names_listen_address("broken/ssh-refused-listen.json", "ssh.refused", "hetzner-vm → gcp-vm",
    &["listens only on 198.18.100.11:22 (sshd -T)"], &["Connection refused"], &["sshd is not running"])]
#[case::unreachable_is_local("broken/ssh-network-unreachable.json", "ssh.no-route", "gcp-vm → hetzner-vm",
    &["gcp-vm itself has no route", "hetzner-vm is not at fault"], &["Network is unreachable"], &["overlay down"])]
#[case::no_route_to_host("broken/ssh-host-unreachable.json", "ssh.host-unreachable", "gcp-vm → hetzner-vm",
    &["nothing answered for the address", "got 0 of 3 replies"], &["No route to host"], &["itself has no route"])]
#[case::user_key_names_the_key("broken/ssh-user-key-refused.json", "ssh.user-key-refused", "gcp-vm → hetzner-vm",
    &["refused every key gcp-vm offered (/root/.ssh/id_ed25519 ED25519 SHA256:"], &["Permission denied (publickey)"], &[])]
fn cause_follows_the_evidence(
    #[case] fleet: &str,
    #[case] code: &str,
    #[case] place: &str,
    #[case] cause_says: &[&str],
    #[case] seen_quotes: &[&str],
    #[case] cause_never: &[&str],
) {
    let v = ac2(fleet);
    let f = failure(&v, code, place);
    for w in cause_says {
        assert!(f.cause.contains(w), "{fleet}: cause lacks {w:?}\n{f}");
    }
    for w in seen_quotes {
        assert!(
            f.seen.contains(w),
            "{fleet}: seen does not quote {w:?}\n{f}"
        );
    }
    for w in cause_never {
        assert!(!f.cause.contains(w), "{fleet}: cause says {w:?}\n{f}");
    }
}

/// The healthy fleets: every hop verified a clan-signed certificate, every client trusts the
/// clan's CA, every served certificate is its vars' one.
#[rstest]
#[case("story-fleet/cassette.json")]
#[case("lab/cassette.json")]
fn healthy_fleet_passes_every_ac2_rule(#[case] fleet: &str) {
    let v = ac2(fleet);
    assert!(v.passed(), "{v}");
    for code in ["ssh.cert-verified", "ssh.client-ca", "ssh.served-cert"] {
        assert!(
            v.findings.iter().any(|f| f.code == code),
            "no {code} pass\n{v}"
        );
    }
    assert!(
        !v.findings
            .iter()
            .any(|f| f.severity != checks::Severity::Pass),
        "{v}"
    );
}

/// A probe that never answered is not a missing certificate: when `sshd -T` fails on gcp-vm
/// (as it does without root: `no hostkeys available`), AC2 says the served certificate was not
/// read (UNCHECKED, with sshd's own words) instead of blaming gcp-vm's configuration.
#[test]
fn unanswered_sshd_t_leaves_the_served_certificate_unchecked() {
    let dir = tempfile::tempdir().unwrap();
    let story =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cassettes/story-fleet/cassette.json");
    let c = dir.path().join("sshd-t-fails.json");
    let text = serde_json::json!({
        "format": 1,
        "derive_from": story,
        "replace": [{"machine": "gcp-vm", "command": "sshd -T", "exit": 255, "stdout": "",
                     "stderr": "sshd: no hostkeys available -- exiting.\n"}],
    });
    std::fs::write(&c, text.to_string()).unwrap();
    let v = ac2(c.to_str().unwrap());
    assert!(
        !v.failures().any(|f| f.code == "ssh.no-host-cert"),
        "a probe that did not answer is blamed on the configuration\n{v}"
    );
    let u = v
        .findings
        .iter()
        .find(|f| f.code == "ssh.served-unread" && f.machine == "gcp-vm")
        .unwrap_or_else(|| panic!("no UNCHECKED served certificate\n{v}"));
    assert_eq!(u.severity, checks::Severity::Unchecked);
    assert!(u.seen.contains("no hostkeys available"), "{u}");
}
