//! AC2's faults, made of real OpenSSH outputs: the `*-real-*` fixtures of tests/fixtures/ssh
//! were captured on loopback with the hop's exact options (tests/fixtures/ssh/capture/), and are
//! made to speak of the story fleet here: the capture's fingerprints, CA key and addresses
//! become the story's, nothing else changes.

use std::path::Path;

use regex::Regex;

use super::{pair, replacement, Base, Fault, Pair, With, G, H};
use crate::json::Result;

/// The addresses the capture dialled besides the server's (gcp-vm's story address): routed to
/// a dead link, without a route, and on the link with nobody answering.
const CAPTURE_OTHER_ADDRS: [&str; 3] = [
    "fd8c:3e0a:19d2:5b07:e199:9300:0:9",
    "fd8c:3e0a:19d2:5b07:e199:990e:7f41:c2a9",
    "fd8c:3e0a:19d2:5b07:e199:9300:0:7",
];

/// `Server host certificate: <type> <key fp>, serial N ID "id" CA <type> <ca fp> valid ...`.
fn cert_line(text: &str) -> Result<(String, String)> {
    let re =
        Regex::new(r#"Server host certificate: \S+ (\S+), serial \d+ ID ".*" CA \S+ (\S+) valid"#)?;
    let c = re
        .captures(text)
        .ok_or("no `Server host certificate:` line")?;
    Ok((c[1].to_string(), c[2].to_string()))
}

/// The real outputs, and what in them belongs to the capture rather than to the story.
pub(super) struct Real {
    /// tests/fixtures.
    dir: std::path::PathBuf,
    host_fp: String,
    ca_fp: String,
    ca_b64: String,
    server_ip: String,
}

/// The story's counterparts, read from the healthy cassette.
struct Story {
    ip: [(String, String); 2],
    host_fp: [(String, String); 2],
    ca_fp: String,
    ca_b64: String,
}

impl Story {
    fn get<'a>(list: &'a [(String, String); 2], m: &str) -> &'a str {
        list.iter()
            .find(|(k, _)| k == m)
            .map_or("", |(_, v)| v.as_str())
    }
}

impl Real {
    pub(super) fn load(root: &Path) -> Result<Real> {
        let mut r = Real {
            dir: root.join("tests/fixtures"),
            host_fp: String::new(),
            ca_fp: String::new(),
            ca_b64: String::new(),
            server_ip: String::new(),
        };
        let valid = r.text("ssh-v-real-cert-valid-forever.txt")?;
        (r.host_fp, r.ca_fp) = cert_line(&valid)?;
        r.server_ip = Regex::new(r"Connecting to (\S+) ")?
            .captures(&valid)
            .ok_or("no `Connecting to` line")?[1]
            .to_string();
        let view = r.text("client-view-real-two-files.txt")?;
        r.ca_b64 = view
            .lines()
            .find(|l| l.contains("@cert-authority ssh-ca,*.clan ssh-ed25519 "))
            .and_then(|l| l.split_whitespace().last())
            .ok_or("no clan CA line in the client view fixture")?
            .to_string();
        Ok(r)
    }

    /// A fixture's output (`ssh/<name>` unless a directory is given), without its `# source:`
    /// line.
    fn text(&self, name: &str) -> Result<String> {
        let p = match name.contains('/') {
            true => self.dir.join(name),
            false => self.dir.join("ssh").join(name),
        };
        let t = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(t.lines()
            .skip_while(|l| l.starts_with("# source:"))
            .map(|l| format!("{l}\n"))
            .collect())
    }

    /// A fixture's `ssh -v` stderr as if `to` had been dialled in the story fleet.
    fn hop(&self, s: &Story, name: &str, to: &str) -> Result<String> {
        let mut t = self.text(name)?;
        let ip = Story::get(&s.ip, to);
        for a in CAPTURE_OTHER_ADDRS.iter().chain([&self.server_ip.as_str()]) {
            t = t.replace(a, ip);
        }
        if to == H {
            t = t.replace(G, H);
        }
        Ok(t.replace(&self.host_fp, Story::get(&s.host_fp, to))
            .replace(&self.ca_fp, &s.ca_fp))
    }

    /// A fixture's `ssh-keygen -L` as gcp-vm would print it of the certificate at `header`.
    fn keygen(&self, s: &Story, name: &str, header: &str) -> Result<String> {
        let t = self.text(name)?;
        let body: String = t.lines().skip(1).map(|l| format!("{l}\n")).collect();
        Ok(format!("{header}\n{body}")
            .replace(&self.host_fp, Story::get(&s.host_fp, G))
            .replace(&self.ca_fp, &s.ca_fp))
    }

    /// The capture's line trusting the other (ECDSA) CA, and the story's clan CA key in place
    /// of the capture's.
    fn other_ca_line(&self, s: &Story) -> Result<String> {
        let view = self.text("client-view-real-two-files.txt")?;
        Ok(view
            .lines()
            .find(|l| l.contains("ecdsa-sha2-nistp256"))
            .ok_or("no ECDSA CA line in the client view fixture")?
            .replace(&self.ca_b64, &s.ca_b64))
    }
}

fn story(b: &Base) -> Result<Story> {
    let ip = |m: &str| -> Result<(String, String)> { Ok((m.to_string(), b.zt_ip(m)?)) };
    // H's hop goes to G: its certificate line is G's.
    let (g_fp, ca_fp) = cert_line(&b.cmd(H, "ssh -v")?.output.stderr)?;
    let (h_fp, _) = cert_line(&b.cmd(G, "ssh -v")?.output.stderr)?;
    let kh = b.stdout(G, "cat /etc/ssh/ssh_known_hosts")?;
    let ca_b64 = kh
        .lines()
        .find(|l| l.starts_with("@cert-authority"))
        .and_then(|l| l.split_whitespace().last())
        .ok_or("no CA line")?
        .to_string();
    Ok(Story {
        ip: [ip(H)?, ip(G)?],
        host_fp: [(H.into(), h_fp), (G.into(), g_fp)],
        ca_fp,
        ca_b64,
    })
}

/// The client view probe of `m` (the `sh -c` script that runs `ssh -G`).
fn view_cmd(b: &Base, m: &str) -> Result<String> {
    Ok(b.find(m, |c| {
        c.starts_with("sh -c") && c.contains("knownhostsfile")
    })
    .ok_or_else(|| format!("{m} ran no client view probe"))?
    .command
    .clone())
}

/// Rewrites of the story's existing AC2 faults and the faults their causes depend on: each
/// hop's stderr is a real output now, and a fault in a known_hosts file shows in every probe
/// that reads it (the client view too).
pub(super) struct Existing {
    /// ssh-foreign-ca: gcp-vm's `ssh-keygen -L` and hetzner-vm's hop.
    pub foreign_ca: Vec<super::Replacement>,
    /// ssh-principal-mismatch: hetzner-vm's hop.
    pub principal_hop: super::Replacement,
    /// ssh-user-key-refused: gcp-vm's hop.
    pub user_key_hop: super::Replacement,
    /// sshd-client-no-ca: gcp-vm's client view and hop.
    pub no_ca: Vec<super::Replacement>,
    /// shared-ca-differs: gcp-vm's client view and hop.
    pub ca_differs: Vec<super::Replacement>,
}

/// See [`Existing`]; `ca_line` is gcp-vm's healthy CA line, `other_b64` the CA key the
/// shared-ca-differs fault puts in its place.
pub(super) fn existing(b: &Base, real: &Real, ca_line: &str, other_b64: &str) -> Result<Existing> {
    let s = story(b)?;
    let keygen_header = b
        .stdout(G, "ssh-keygen -L")?
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let failed = |m: &str, stderr: String| -> Result<super::Replacement> {
        Ok(b.r(m, "ssh -v")?.exit(255).stdout("").stderr(stderr))
    };
    let view = |pairs: Vec<Pair>| -> Result<super::Replacement> {
        Ok(replacement(G, &view_cmd(b, G)?).stdout_replace(pairs))
    };
    // gcp-vm trusts a CA that did not sign hetzner-vm's certificate: the capture's refusal of a
    // certificate from an untrusted CA, with the CA hetzner-vm's certificate really has.
    let refused_h = real
        .hop(&s, "ssh-v-real-cert-other-ca-refused.txt", H)?
        .replace(&ecdsa_ca(real)?, &format!("ssh-ed25519 {}", s.ca_fp));
    Ok(Existing {
        foreign_ca: vec![
            b.r(G, "ssh-keygen -L")?.stdout(real.keygen(
                &s,
                "ssh-keygen-L-real-cert-other-ca.txt",
                &keygen_header,
            )?),
            failed(H, real.hop(&s, "ssh-v-real-cert-other-ca-refused.txt", G)?)?,
        ],
        principal_hop: failed(H, real.hop(&s, "ssh-v-real-cert-wrong-principal.txt", G)?)?,
        user_key_hop: failed(G, real.hop(&s, "ssh-v-real-user-key-refused.txt", H)?)?,
        no_ca: vec![
            view(vec![pair(format!("1:{ca_line}\n"), "")])?,
            failed(G, real.hop(&s, "ssh-v-real-no-ca-line.txt", H)?)?,
        ],
        ca_differs: vec![
            view(vec![pair(s.ca_b64.clone(), other_b64)])?,
            failed(G, refused_h)?,
        ],
    })
}

/// `ecdsa-sha2-nistp256 SHA256:...`, the other CA of the capture as ssh -v names it.
fn ecdsa_ca(real: &Real) -> Result<String> {
    let t = real.text("ssh-v-real-cert-other-ca-refused.txt")?;
    let c = Regex::new(r"CA (ecdsa-sha2-nistp256 \S+) valid")?
        .captures(&t)
        .ok_or("no ECDSA CA in the other-CA fixture")?;
    Ok(c[1].to_string())
}

/// AC2's new faults, each a real output in the story fleet.
#[rustfmt::skip]
pub(super) fn faults(b: &Base, real: &Real) -> Result<Vec<Fault>> {
    let s = story(b)?;
    let header = b.stdout(G, "ssh-keygen -L")?.lines().next().unwrap_or_default().to_string();
    let keygen = |name: &str| -> Result<super::Replacement> { Ok(b.r(G, "ssh-keygen -L")?.stdout(real.keygen(&s, name, &header)?)) };
    let hop_h = |name: &str, exit: i32| -> Result<super::Replacement> {
        let r = b.r(H, "ssh -v")?.exit(exit).stderr(real.hop(&s, name, G)?);
        Ok(if exit == 0 { r } else { r.stdout("") })
    };
    let hop_g = |name: &str| -> Result<super::Replacement> { Ok(b.r(G, "ssh -v")?.exit(255).stdout("").stderr(real.hop(&s, name, H)?)) };
    let h_view = view_cmd(b, H)?;
    let ping_g_unreachable = b.r(G, "ping -6")?.exit(2).stdout("").stderr("ping: connect: Network is unreachable\n");
    let h_ip = Story::get(&s.ip, H).to_string();
    // iputils' words for it (tests/fixtures/ping/iputils-ipv6-neighbour-unanswered-real.txt),
    // with the echo count the recorded ping asked for.
    let neighbour = b.loss(G, &h_ip)?;
    let sshd = b.stdout(G, "sshd -T")?;
    let gcp_addr = b.address(G)?;
    let listen: Vec<Pair> = sshd.lines().filter(|l| l.starts_with("listenaddress ")).enumerate()
        .map(|(i, l)| pair(format!("{l}\n"), if i == 0 { format!("listenaddress {gcp_addr}:22\n") } else { String::new() })).collect();
    Ok(vec![
        Fault { name: "ssh-cert-expired", description: "gcp-vm serves a host certificate signed by hand with -V 20250101:20260101 (serial 7), expired at the run (real ssh -v and ssh-keygen -L of such a certificate)",
            criterion: "AC2", code: "ssh.cert-expired", machine: G, also: &[("AC6", "ssh.cert-expired")],
            replace: vec![keygen("ssh-keygen-L-real-cert-expired.txt")?, hop_h("ssh-v-real-cert-expired.txt", 255)?] },
        Fault { name: "ssh-cert-not-yet-valid", description: "gcp-vm serves a host certificate valid only from 2099-01-01 (real ssh -v and ssh-keygen -L of such a certificate)",
            criterion: "AC2", code: "ssh.cert-not-yet-valid", machine: G, also: &[("AC6", "ssh.cert-not-yet-valid")],
            replace: vec![keygen("ssh-keygen-L-real-cert-not-yet-valid.txt")?, hop_h("ssh-v-real-cert-not-yet-valid.txt", 255)?] },
        Fault { name: "ssh-accepted-other-ca", description: "hetzner-vm also trusts an ECDSA CA for *.clan (/etc/ssh/ssh_known_hosts2) and gcp-vm serves a certificate from it: the hop succeeds (real outputs)",
            criterion: "AC2", code: "ssh.accepted-foreign-ca", machine: G, also: &[("AC6", "ssh.accepted-foreign-ca")],
            replace: vec![
                keygen("ssh-keygen-L-real-cert-other-ca.txt")?,
                hop_h("ssh-v-real-cert-other-ca-accepted.txt", 0)?,
                // Debian's ssh reads ssh_known_hosts2 too; the healthy run found it absent.
                replacement(H, &h_view).stdout_replace(vec![
                    pair("\nabsent /etc/ssh/ssh_known_hosts2\n", format!("\nfile /etc/ssh/ssh_known_hosts2\n{}\n", real.other_ca_line(&s)?)),
                ]),
            ] },
        Fault { name: "ssh-cert-not-repo", description: "gcp-vm serves a certificate re-signed by hand (serial 3, valid 2026-01-01 to 2099-01-01) instead of the one in its vars; the hop accepts it (real outputs)",
            criterion: "AC2", code: "ssh.cert-not-repo", machine: G, also: &[("AC6", "ssh.cert-not-repo")],
            replace: vec![keygen("ssh-keygen-L-real-cert-window.txt")?, hop_h("ssh-v-real-cert-valid-window.txt", 0)?] },
        Fault { name: "ssh-banner-timeout", description: "gcp-vm's port 22 accepts TCP and never sends an SSH banner (hung sshd; real ssh -v against such a socket)",
            criterion: "AC2", code: "ssh.banner-timeout", machine: G, also: &[("AC6", "ssh.banner-timeout")],
            replace: vec![hop_h("ssh-v-real-banner-timeout.txt", 255)?] },
        Fault { name: "ssh-connect-timeout", description: "tcp/22 to gcp-vm's overlay address is dropped (a firewall) while pings pass (real ssh -v of a connect timeout)",
            criterion: "AC2", code: "ssh.timeout", machine: G, also: &[("AC6", "ssh.timeout")],
            replace: vec![hop_h("ssh-v-real-connect-timeout.txt", 255)?] },
        Fault { name: "ssh-refused-listen", description: "gcp-vm's sshd listens on its management IPv4 address only, so its overlay address refuses port 22 (real ssh -v of a refusal)",
            criterion: "AC2", code: "ssh.refused", machine: G, also: &[("AC6", "ssh.refused")],
            replace: vec![b.r(G, "sshd -T")?.stdout_replace(listen), hop_h("ssh-v-real-connection-refused.txt", 255)?] },
        Fault { name: "ssh-network-unreachable", description: "gcp-vm has lost its route into the overlay network: its own kernel refuses to send (real ssh -v and ping output)",
            criterion: "AC2", code: "ssh.no-route", machine: G, also: &[("AC1", "mesh.no-route"), ("AC6", "ssh.no-route")],
            replace: vec![hop_g("ssh-v-real-network-unreachable.txt")?, ping_g_unreachable] },
        Fault { name: "ssh-host-unreachable", description: "hetzner-vm's overlay address is on gcp-vm's link but nothing answers neighbour discovery for it (real ssh -v; the ping's total loss as iputils prints it)",
            criterion: "AC2", code: "ssh.host-unreachable", machine: G, also: &[("AC1", "mesh.loss"), ("AC6", "ssh.host-unreachable")],
            replace: vec![hop_g("ssh-v-real-no-route-to-host.txt")?, b.r(G, "ping -6")?.exit(1).stdout(neighbour)] },
    ])
}
