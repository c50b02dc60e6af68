//! Walks every real-output fixture in tests/fixtures (copied from ../shared/fixtures with their
//! `# source:` lines) through its parser: each parses to the right value or is rejected with a
//! clear error, and nothing panics.

use std::path::{Path, PathBuf};

use clan_coordination::probe::{clan, journal, nixos, ping, ssh, systemd, yggdrasil, zerotier};

/// The command output without the fixture's leading `# source:` line(s).
fn body(p: &Path) -> String {
    let t = std::fs::read_to_string(p).unwrap();
    t.lines()
        .skip_while(|l| l.starts_with("# source:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Dispatches a fixture to its parser; returns Ok(debug of value) or Err(message).
fn parse(dir: &str, name: &str, text: &str) -> Result<String, String> {
    let d = |r: Result<String, String>| r;
    match dir {
        "zerotier" if name.starts_with("info") => d(zerotier::parse_info(text)
            .map(|v| format!("{v:?}"))
            .map_err(|e| e.to_string())),
        "zerotier" if name.contains("listnetworks") => d(zerotier::parse_listnetworks(text)
            .map(|v| format!("{v:?}"))
            .map_err(|e| e.to_string())),
        "zerotier" if name.contains("peers") => d(zerotier::parse_peers(text)
            .map(|v| format!("{v:?}"))
            .map_err(|e| e.to_string())),
        "zerotier" if name.starts_with("controller-member-files") => {
            d(zerotier::parse_member_files(text)
                .map(|v| format!("{v:?}"))
                .map_err(|e| e.to_string()))
        }
        "zerotier" if name.starts_with("controller-network-files") => {
            d(zerotier::parse_network_files(text)
                .map(|v| format!("{v:?}"))
                .map_err(|e| e.to_string()))
        }
        "zerotier" if name.contains("members-list") => d(zerotier::parse_members(text)
            .map(|v| format!("{v:?}"))
            .map_err(|e| e.to_string())),
        "zerotier" => zerotier::parse_cli_error(text)
            .map(|e| format!("{e:?}"))
            .ok_or_else(|| format!("not an error shape: {text}")),
        "yggdrasil" if name.starts_with("getpeers") => d(yggdrasil::parse_peers(text)
            .map(|v| format!("{v:?}"))
            .map_err(|e| e.to_string())),
        "yggdrasil" => d(yggdrasil::parse_self(text)
            .map(|v| format!("{v:?}"))
            .map_err(|e| e.to_string())),
        "ping" => d(ping::parse_ping(text)
            .map(|v| format!("{v:?}"))
            .map_err(|e| e.to_string())),
        "ssh" if name.starts_with("ssh-keygen-L") => d(ssh::parse_keygen_l(text)
            .map(|v| format!("{v:?}"))
            .map_err(|e| e.to_string())),
        "ssh" if name.starts_with("client-view") => d(ssh::parse_client_view(text)
            .map(|v| format!("{v:?}"))
            .map_err(|e| e.to_string())),
        "ssh" => Ok(format!("{:?}", ssh::parse_hop(text, Some(255)))),
        "systemd" if name.starts_with("show") => d(systemd::parse_show(text)
            .map(|v| format!("{v:?}"))
            .map_err(|e| e.to_string())),
        "systemd" if name.starts_with("journalctl-json") => {
            let lines = journal::parse(text);
            if lines.iter().any(|l| matches!(l, journal::Line::Other(_))) {
                return Err(format!("not every line is an entry: {lines:?}"));
            }
            Ok(lines
                .iter()
                .map(journal::Line::text)
                .collect::<Vec<_>>()
                .join("\n"))
        }
        "systemd" if name.starts_with("is-active") => text
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                systemd::parse_is_active(f[0], f[1].parse().unwrap())
                    .map(|v| format!("{v:?}"))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(";")),
        "systemd" => d(systemd::parse_status(text)
            .map(|v| format!("{v:?}"))
            .map_err(|e| e.to_string())),
        "nixos" if name.starts_with("list-generations") => d(nixos::parse_generations(text)
            .map(|v| format!("{v:?}"))
            .map_err(|e| e.to_string())),
        "nixos" if name.starts_with("nixos-version") => {
            d(nixos::parse_nixos_version(text).map_err(|e| e.to_string()))
        }
        "nixos" if name.contains("system-profile") => d(nixos::parse_profile_link(text)
            .map(|v| v.to_string())
            .map_err(|e| e.to_string())),
        "nixos" => d(nixos::parse_system_paths(text)
            .map(|v| format!("{v:?}"))
            .map_err(|e| e.to_string())),
        "clan" if name.starts_with("machines-list") => d(clan::parse_machines_list(text)
            .map(|v| v.join(","))
            .map_err(|e| e.to_string())),
        "clan" if name.starts_with("vars-layout") => text
            .lines()
            .map(|l| {
                l.split_whitespace()
                    .find(|w| w.starts_with("vars/"))
                    .map_or(Err(format!("no path in {l}")), |p| {
                        clan::parse_var_path(p)
                            .map(|v| format!("{v:?}"))
                            .map_err(|e| e.to_string())
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(";")),
        "clan" => d(clan::parse_vars_list(text)
            .map(|v| format!("{v:?}"))
            .map_err(|e| e.to_string())),
        _ => Err(format!("no parser for {dir}/{name}")),
    }
}

/// Fixtures that must be rejected (truncated or redacted quotes), with a word of the reason.
const REJECTED: &[(&str, &str)] = &[
    ("yggdrasil/no-socket.txt", "daemon is not running"),
    (
        "zerotier/listnetworks-requesting-configuration-macos.txt",
        "16 hex digits",
    ),
    (
        "ping/iputils-ipv4-dest-net-unreachable.txt",
        "Destination Net Unreachable",
    ),
    (
        "ping/iputils-ipv6-new-header-format.txt",
        "no statistics block",
    ),
    ("ping/iputils-ipv6-reject-route.txt", "Reject route"),
    (
        "ping/iputils-error-connect-network-unreachable.txt",
        "network is unreachable",
    ),
    (
        "ping/iputils-error-name-or-service-not-known.txt",
        "does not resolve",
    ),
    (
        "ping/iputils-error-address-family-not-supported.txt",
        "address family",
    ),
    ("ping/iputils-error-unknown-host-legacy.txt", "unknown host"),
    (
        "ping/story-1.9-observed-latency-note.txt",
        "no statistics block",
    ),
    ("zerotier/join-ok.txt", "not an error shape"),
    // one line elides the file ("identity-secret/..."), so the path is rejected as incomplete
    (
        "clan/vars-layout-evolution.txt",
        "expected vars/per-machine",
    ),
    (
        "zerotier/zerotier-members-allow-ok-reconstructed.txt",
        "not an error shape",
    ),
    (
        "zerotier/zerotier-members-allow-ok-1.14.1-lab.txt",
        "not an error shape",
    ),
];

/// Key values that must come out of specific fixtures.
const VALUES: &[(&str, &str)] = &[
    ("systemd/journalctl-json-zerotier-killed-lab.txt", "2026-11-30T03:15:23+00:00 gcp-vm systemd[1]: zerotierone.service: Main process exited, code=killed, status=9/KILL"),
    ("yggdrasil/getself.txt", "address: 203:e8e9:e79:a8ca:5949:3a80:5418:831f"),
    ("yggdrasil/getpeers-one.txt", "remote: \"tcp://198.18.250.2:59690\""),
    ("yggdrasil/getpeers-none.txt", "[]"),
    ("zerotier/info-online-1.14.2-clan-controller.txt", "address: NodeId(1039022972934), version: \"1.14.2\", status: Online"),
    ("zerotier/info-tunneled-1.10.2.txt", "status: Tunneled"),
    // abridged quote without the address column: accepted, with no addresses
    ("zerotier/listnetworks-ok-clan-controller-abridged.txt", "status: \"OK\", kind: \"PRIVATE\", device: \"ztshwmqbxf\", assigned: []"),
    ("zerotier/info-json-offline-1.4.6.txt", "status: Offline"),
    ("zerotier/listnetworks-access-denied-reconstructed.txt", "status: \"ACCESS_DENIED\""),
    ("zerotier/listnetworks-json-ok-clan-reconstructed.txt", "fddb:4344:343b:14b9:399:93db:4344:343b, 88"),
    ("zerotier/listnetworks-port-error-windows-1.2.2.txt", "status: \"PORT_ERROR\""),
    ("zerotier/peers-tunneled-relay-1.10.2.txt", "path: Tunneled"),
    // Real ZeroTier 1.14.1 on the lab (private planet whose only root is the controller).
    ("zerotier/info-json-online-1.14.1-lab-controller.txt", "version: \"1.14.1\", status: Online"),
    ("zerotier/listnetworks-json-ok-1.14.1-lab-peer.txt", "status: \"OK\", kind: \"PRIVATE\""),
    ("zerotier/listnetworks-json-ok-1.14.1-lab-peer.txt", "fd5f:5f0c:dcd4:2398:2b99:934f:235:2627, 88"),
    ("zerotier/peers-private-planet-1.14.1-lab.txt", "role: \"PLANET\", path: Direct"),
    ("zerotier/peers-json-private-planet-1.14.1-lab.txt", "role: \"PLANET\", path: Direct"),
    ("zerotier/zerotier-members-list-1.14.1-lab.txt", "authorized: true"),
    ("zerotier/controller-member-files-1.14.1-lab-deauthorized.txt", "authorized: false"),
    ("zerotier/controller-network-files-1.14.1-lab.txt", "revision: Some(1), settings: NetSettings { mtu: 2800, broadcast: true, private: true }"),
    ("zerotier/listnetworks-json-ok-1.14.1-lab-peer.txt", "settings: Some(NetSettings { mtu: 2800, broadcast: true, private: true })"),
    ("zerotier/peers-direct-and-relay-1.8.6.txt", "path: Relay"),
    ("zerotier/error-service-not-running-connection-failed-reconstructed.txt", "ServiceNotRunning"),
    ("zerotier/error-401-unauthorized.txt", "Unauthorized"),
    ("zerotier/error-service-stopped-1.14.1-lab.txt", "ServiceNotRunning"),
    ("zerotier/listnetworks-json-access-denied-1.14.1-lab.txt", "status: \"ACCESS_DENIED\""),
    ("zerotier/listnetworks-json-not-found-1.14.1-lab.txt", "status: \"NOT_FOUND\""),
    ("zerotier/listnetworks-json-ok-controller-down-1.14.1-lab.txt", "status: \"OK\""),
    // The root silent for 170 s: ZeroTier's flags say active; lastReceive 160-170 s behind lastSend.
    ("zerotier/peers-json-root-silent-170s-1.14.1-lab.txt", "role: \"PLANET\", path: Silent"),
    ("zerotier/error-connection-failed-legacy-0-code.txt", "ServiceNotRunning"),
    ("ping/iputils-ipv6-partial-loss-15pct-old-header.txt", "transmitted: 20, received: 17, errors: 0, duplicates: 0, loss_percent: 15.0"),
    ("ping/iputils-ipv4-100pct-loss-O.txt", "received: 0, errors: 0, duplicates: 0, loss_percent: 100.0, rtt: None"),
    ("ping/iputils-ipv4-destination-host-unreachable.txt", "errors: 3"),
    ("ping/iputils-ipv4-duplicates.txt", "duplicates: 19"),
    ("ping/busybox-ipv6-and-errors-reconstructed.txt", "received: 0, errors: 0, duplicates: 0, loss_percent: 100.0"),
    ("ping/macos-ping6-success.txt", "mdev: Some(0.034)"),
    ("ping/macos-ping-ipv4-unreachable-timeouts.txt", "loss_percent: 100.0"),
    ("ping/busybox-ipv4-success.txt", "avg: 1.637, max: 1.637, mdev: None"),
    ("ssh/ssh-v-clan-cert-accepted-reconstructed.txt", "class: CertificateVerified"),
    ("ssh/ssh-v-cert-not-matching-ip-fallback-reconstructed.txt", "class: PlainKeyFallbackRefused"),
    ("ssh/cert-invalid-not-listed-principal.txt", "class: PrincipalMismatch"),
    ("ssh/permission-denied-publickey-modern-reconstructed.txt", "class: UserKeyRefused"),
    ("ssh/connection-timed-out-macos.txt", "class: Timeout"),
    ("ssh/connection-refused.txt", "class: ConnectionRefused"),
    ("ssh/host-key-changed.txt", "class: HostKeyChanged"),
    // Real OpenSSH 9.2 outputs (tests/fixtures/ssh/capture/): the class, and the certificate
    // with its CA, serial, window, known_hosts line and the name it was checked under.
    ("ssh/ssh-v-real-cert-valid-forever.txt", "class: CertificateVerified, certificate: Some(AcceptedCert { key_type: \"ssh-ed25519-cert-v01@openssh.com\", fingerprint: \"SHA256:Y32r0B6nz9WnH4NE8NWGcZq5aLtIlBuQ2d/AcuRm1wk\", serial: 0, id: \"gcp-vm\", ca_type: \"ssh-ed25519\", ca_fingerprint: \"SHA256:JaDePwQvPJRsB5JEO8EV7Z98uvYMdczrluCkwwz92og\", validity: Validity { from: None, to: None }, known_hosts: Some(FileLine { file: \"/etc/ssh/ssh_known_hosts\", line: 1 }), principal_name: Some(\"gcp-vm.clan\") })"),
    ("ssh/ssh-v-real-cert-valid-window.txt", "serial: 3, id: \"gcp-vm\", ca_type: \"ssh-ed25519\", ca_fingerprint: \"SHA256:JaDePwQvPJRsB5JEO8EV7Z98uvYMdczrluCkwwz92og\", validity: Validity { from: Some(LocalTime(\"2026-01-01T00:00:00\")), to: Some(LocalTime(\"2099-01-01T00:00:00\")) }"),
    ("ssh/ssh-v-real-cert-expired.txt", "class: CertificateExpired"),
    ("ssh/ssh-v-real-cert-not-yet-valid.txt", "class: CertificateNotYetValid"),
    ("ssh/ssh-v-real-cert-other-ca-accepted.txt", "class: CertificateVerified, certificate: Some(AcceptedCert { key_type: \"ssh-ed25519-cert-v01@openssh.com\", fingerprint: \"SHA256:Y32r0B6nz9WnH4NE8NWGcZq5aLtIlBuQ2d/AcuRm1wk\", serial: 0, id: \"gcp-vm\", ca_type: \"ecdsa-sha2-nistp256\", ca_fingerprint: \"SHA256:eX4AaGQroNZNMm3nWZnIt621DYgSqRxV/47oOu4QB6g\", validity: Validity { from: None, to: None }, known_hosts: Some(FileLine { file: \"/etc/ssh/ssh_known_hosts2\", line: 1 })"),
    ("ssh/ssh-v-real-cert-other-ca-refused.txt", "class: PlainKeyFallbackRefused"),
    ("ssh/ssh-v-real-cert-wrong-principal.txt", "class: PrincipalMismatch"),
    ("ssh/ssh-v-real-no-ca-line.txt", "class: PlainKeyFallbackRefused"),
    ("ssh/ssh-v-real-user-key-refused.txt", "offered_keys: [\"/root/.ssh/id_ed25519 ED25519 SHA256:UvGDzYVDkJr7iTiv3SEjiliWHWsrMjZUInzVhYM/D6U\"]"),
    ("ssh/ssh-v-real-connection-refused.txt", "class: ConnectionRefused"),
    ("ssh/ssh-v-real-banner-timeout.txt", "class: BannerTimeout"),
    ("ssh/ssh-v-real-connect-timeout.txt", "class: Timeout"),
    ("ssh/ssh-v-real-network-unreachable.txt", "class: NoRoute"),
    ("ssh/ssh-v-real-no-route-to-host.txt", "class: HostUnreachable"),
    ("ssh/ssh-keygen-L-real-cert-expired.txt", "serial: 7, valid: \"from 2025-01-01T00:00:00 to 2026-01-01T00:00:00\", validity: Validity { from: Some(LocalTime(\"2025-01-01T00:00:00\")), to: Some(LocalTime(\"2026-01-01T00:00:00\")) }"),
    ("ssh/ssh-keygen-L-real-cert-other-ca.txt", "signing_ca: \"SHA256:eX4AaGQroNZNMm3nWZnIt621DYgSqRxV/47oOu4QB6g\", signing_ca_type: \"ECDSA\""),
    ("ssh/client-view-real-two-files.txt", "KnownHostsFile { path: \"/etc/ssh/ssh_known_hosts2\", state: Read { authorities: [(1, CertAuthority { patterns: [\"*.clan\"], fingerprint: \"SHA256:eX4AaGQroNZNMm3nWZnIt621DYgSqRxV/47oOu4QB6g\", key_type: \"ecdsa-sha2-nistp256\" })] } }"),
    ("ping/iputils-ipv6-neighbour-unanswered-real.txt", "transmitted: 5, received: 0, errors: 0, duplicates: 0, loss_percent: 100.0"),
    ("ssh/ssh-keygen-L-host-cert-multi-principals.txt", "principals: [\"3660d7c9-d218-4871-beed-f4d460601528.example.com\", \"node.example.com\", \"node\"]"),
    ("ssh/ssh-keygen-L-host-cert-no-principals.txt", "signing_ca: \"SHA256:E+G5mMAZ/TlXh3eVb8Sy8B3cCPCXYnJT3huha3naYzc\""),
    ("systemd/show-missing-unit-reconstructed.txt", "\"LoadState\": \"not-found\""),
    ("systemd/status-unit-not-found-emergency-access-reconstructed.txt", "NotFound { unit: \"emergency-access.service\" }"),
    ("systemd/status-failed.txt", "active: \"failed (Result: exit-code)\""),
    ("nixos/list-generations-legacy-bash.txt", "number: 3, date: \"2025-08-14 18:32:19\", nixos_version: \"25.11.20250814.c0302e0\", current: true"),
    ("nixos/list-generations-ng.txt", "number: 55"),
    ("nixos/readlink-system-profile.txt", "72"),
    ("nixos/readlink-run-current-system.txt", "host: \"Think14GRyzen\""),
    ("clan/vars-list-docs-intro.txt", "generator: \"user-password-root\", file: \"user-password-hash\", value: None, secret: true"),
    ("clan/machines-list-test-clan-reconstructed.txt", "blackphos,cinnabar,electrum,gcp-vm,test-darwin"),
];

fn all_fixtures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for d in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")).unwrap()
    {
        let d = d.unwrap().path();
        // hostile/ holds machines.toml files, not probe outputs (tests/config/hostile.rs).
        if d.is_dir() && !d.ends_with("hostile") {
            // Subdirectories hold how fixtures were made (ssh/capture/), not outputs.
            for f in std::fs::read_dir(&d).unwrap() {
                let f = f.unwrap().path();
                if f.is_file() {
                    v.push(f);
                }
            }
        }
    }
    v.sort();
    v
}

#[test]
fn every_fixture_parses_or_is_rejected_clearly() {
    let files = all_fixtures();
    assert!(files.len() >= 80, "fixtures missing: {}", files.len());
    for p in &files {
        let dir = p.parent().unwrap().file_name().unwrap().to_str().unwrap();
        let name = p.file_name().unwrap().to_str().unwrap();
        let key = format!("{dir}/{name}");
        let text = body(p);
        assert!(
            std::fs::read_to_string(p).unwrap().starts_with("# source:"),
            "{key} lost its source line"
        );
        let r = std::panic::catch_unwind(|| parse(dir, name, &text))
            .unwrap_or_else(|_| panic!("{key}: parser panicked"));
        match REJECTED.iter().find(|(k, _)| *k == key) {
            Some((_, why)) => {
                let e = r.expect_err(&format!("{key} should be rejected"));
                assert!(
                    e.to_lowercase().contains(&why.to_lowercase()),
                    "{key}: error {e:?} should mention {why:?}"
                );
            }
            None => {
                let v = r.unwrap_or_else(|e| panic!("{key}: {e}"));
                if let Some((_, want)) = VALUES.iter().find(|(k, _)| *k == key) {
                    assert!(v.contains(want), "{key}: {v}\n  should contain {want}");
                }
            }
        }
    }
}

#[test]
fn no_parser_panics_on_garbage() {
    let inputs = [
        "",
        "\n\n",
        "200",
        "200 listnetworks",
        "200 listnetworks a b c d e f g h",
        "{",
        "[{]",
        "Type:",
        "        Principals:",
        "ping: ",
        "x=y=z",
        "\u{0}\u{ffff}",
        "200 info zz 1 ONLINE",
        "--- a ping statistics ---\n9999999999999 packets transmitted, 1 received, 0% packet loss",
    ];
    for i in inputs {
        let _ = zerotier::parse_info(i);
        let _ = zerotier::parse_listnetworks(i);
        let _ = zerotier::parse_peers(i);
        let _ = zerotier::parse_members(i);
        let _ = ping::parse_ping(i);
        let _ = ssh::parse_keygen_l(i);
        let _ = ssh::parse_sshd_t(i);
        let _ = ssh::parse_cert_authorities(i);
        let _ = ssh::parse_hop(i, None);
        let _ = ssh::parse_client_view(i);
        let _ = systemd::parse_show(i);
        let _ = systemd::parse_status(i);
        let _ = nixos::parse_generations(i);
        let _ = nixos::parse_nixos_version(i);
        let _ = nixos::parse_profile_link(i);
        let _ = nixos::parse_system_paths(i);
        let _ = clan::parse_vars_list(i);
        let _ = clan::parse_var_path(i);
        let _ = yggdrasil::parse_self(i);
        let _ = yggdrasil::parse_peers(i);
        let _ = journal::parse(i);
    }
}

#[test]
fn ping_echoes_in_order_without_duplicates() {
    let parse = |f: &str| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(f);
        ping::parse_ping(&body(&p)).unwrap()
    };
    // iputils counts from 1, macOS from 0, BusyBox says `seq=`.
    let p = parse("ping/iputils-ipv6-literal-success-2020.txt");
    assert_eq!(p.echoes, [(1, 0.025), (2, 0.034)]);
    assert_eq!(parse("ping/macos-ping6-success.txt").echoes[0], (0, 0.071));
    assert_eq!(parse("ping/busybox-ipv4-success.txt").echoes, [(0, 1.637)]);
    // 3 of 20 lost: 17 echoes.
    let l = parse("ping/iputils-ipv6-partial-loss-15pct-old-header.txt");
    assert_eq!(l.echoes.len(), 17);
    // Duplicates (a broadcast ping's other hosts, 380 ms) are not echoes of their own.
    let d = parse("ping/iputils-ipv4-duplicates.txt");
    assert!(!d.echoes.iter().any(|e| e.1 > 300.0), "{:?}", d.echoes);
}

/// A hostile `@cert-authority` line from a machine's ssh_known_hosts: the old recursive glob
/// matcher backtracked exponentially on it (AC2 hung until killed) or overflowed the stack.
#[test]
fn hostile_cert_authority_patterns_are_reported_and_never_hang() {
    const CA: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnz3gueTi0vO58B5TDXPonU03Q00E4Hpo4W0gTOH3dy";
    // Within the caps, worst case for backtracking: parsed, matched quickly, not matching.
    let star_a = format!("{}b", "*a".repeat(ssh::MAX_PATTERN_LEN / 2));
    let cas = ssh::parse_cert_authorities(&format!("@cert-authority {star_a} {CA}\n")).unwrap();
    assert!(!cas[0].matches(&"a".repeat(ssh::MAX_NAME_LEN)));
    assert!(!ssh::pattern_matches(
        &star_a,
        &"a".repeat(ssh::MAX_NAME_LEN)
    ));
    // Over the caps (10 000 `*a` pairs; 1 MB of stars): a clear error naming the cap, no match.
    for hostile in [
        format!("{}b", "*a".repeat(10_000)),
        "*".repeat(1 << 20),
        vec!["*.clan"; 20_000].join(","),
    ] {
        let err = ssh::parse_cert_authorities(&format!("@cert-authority {hostile} {CA}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("over the cap"), "{err}");
        assert!(
            err.len() < 600,
            "the line is excerpted, not echoed: {}",
            err.len()
        );
        assert!(!ssh::pattern_matches(&hostile, "gcp-vm.clan"));
    }
    // ssh's list semantics: a negated pattern excludes whatever else matches; names are
    // compared case-insensitively.
    let cas =
        ssh::parse_cert_authorities(&format!("@cert-authority *.clan,!bad.clan {CA}\n")).unwrap();
    assert!(cas[0].matches("GCP-VM.Clan"));
    assert!(!cas[0].matches("bad.clan"));
    assert!(!cas[0].matches("gcp-vm.zt"));
}
