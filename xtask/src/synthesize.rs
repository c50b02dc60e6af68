//! `tests/cassettes/story-fleet.json`: the story's healthy fleet (examples/test-clan).
//!
//! No NixOS fleet exists where this project is built, so this cassette is made, not recorded: the
//! command list comes from `clan-coord plan --json` (exactly what the checks run), the values from
//! the example clan repo, and every output's shape from the real-output corpus in tests/fixtures/
//! (zerotier-cli -j, iputils ping, ssh -v, systemctl show, sshd -T, ssh-keygen -L). Fingerprints
//! and `ssh-keygen -L` output come from the local `ssh-keygen`. Cassettes recorded from real sshd
//! and daemons come from the lab (COORD_RECORD).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use clan_coordination::transport::cassette::{Entry, FORMAT};
use clan_coordination::transport::Output;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::json::{self, Result};

/// The cassette, relative to the crate root.
pub const OUTPUT: &str = "tests/cassettes/story-fleet.json";

const DESCRIPTION: &str = "The story's healthy fleet (examples/test-clan: hetzner-vm ZeroTier controller, gcp-vm peer). SYNTHESISED by `cargo xtask synthesize` from the example repo and real output shapes; not a recording.";

const MACHINES: [&str; 2] = ["hetzner-vm", "gcp-vm"];

/// The story's moment (ZeroTier's `clock` says the same), as `date +%s` and, in UTC,
/// `date +%Y-%m-%dT%H:%M:%S` print it.
const NOW: u64 = 1_790_000_000;
const NOW_LOCAL: &str = "2026-09-21T14:13:20";

/// What `clan-coord plan --json` prints: per machine, the commands the checks run.
pub type Plan = BTreeMap<String, Vec<String>>;

/// Runs `clan-coord plan --json` through cargo, from the crate root `root`.
pub fn plan(root: &Path) -> Result<Plan> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["run", "-q", "--bin", "clan-coord", "--", "plan", "--json"])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("clan-coord plan --json: {}", out.status).into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The story fleet's values, read from the example clan repo.
struct Story {
    vars: PathBuf,
    nwid: String,
    ca: String,
    ip: BTreeMap<&'static str, String>,
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The first 32 hex digits of `sha(s)` with a..f mapped to `to`, as a Nix store hash.
fn store_hash(s: &str, to: &str) -> String {
    let to: Vec<char> = to.chars().collect();
    sha(s)[..32]
        .chars()
        .map(|c| match c {
            'a'..='f' => to[(c as u8 - b'a') as usize],
            _ => c,
        })
        .collect()
}

fn cert_store(m: &str) -> String {
    format!(
        "/nix/store/{}-per-machine-{m}-openssh-cert_ssh.id_ed25519-cert.pub",
        store_hash(m, "ghijkl")
    )
}

fn system(m: &str) -> String {
    format!(
        "/nix/store/{}-nixos-system-{m}-26.05.20260801.1a2b3c4",
        store_hash(&format!("sys{m}"), "mnpqrs")
    )
}

fn node(m: &str) -> &'static str {
    if m == "hetzner-vm" {
        "8c3e0a19d2"
    } else {
        "0e7f41c2a8"
    }
}

fn public_ip(m: &str) -> &'static str {
    if m == "hetzner-vm" {
        "203.0.113.10"
    } else {
        "198.51.100.20"
    }
}

/// `ssh-keygen <flag> -f /dev/stdin` on `input` plus a newline.
fn ssh_keygen(flag: &str, input: &str) -> Result<String> {
    let mut child = Command::new("ssh-keygen")
        .args([flag, "-f", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ssh-keygen: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("ssh-keygen: no stdin")?
        .write_all(format!("{input}\n").as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("ssh-keygen {flag}: {}: {err}", out.status).into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The SHA256 fingerprint of a public key.
fn fp(public: &str) -> Result<String> {
    let out = ssh_keygen("-l", public)?;
    Ok(out
        .split_whitespace()
        .nth(1)
        .ok_or("ssh-keygen -l printed no fingerprint")?
        .to_string())
}

fn ok(stdout: impl Into<String>, stderr: impl Into<String>, ms: u64) -> Output {
    Output {
        stdout: stdout.into(),
        stderr: stderr.into(),
        exit: Some(0),
        duration: Duration::from_millis(ms),
    }
}

/// `value` as `json.dumps(value, indent=1, sort_keys=True)` (serde_json's maps are sorted).
fn dumps(value: &serde_json::Value) -> Result<String> {
    Ok(json::to_string(value, Some(1))? + "\n")
}

impl Story {
    fn load(root: &Path) -> Result<Story> {
        let vars = root.join("examples/test-clan/vars");
        let mut s = Story {
            vars,
            nwid: String::new(),
            ca: String::new(),
            ip: BTreeMap::new(),
        };
        s.nwid = s.rd("shared/zerotier-network-zerotier-local/network-id/value")?;
        s.ca = s.rd("shared/openssh-ca/id_ed25519.pub/value")?;
        for m in MACHINES {
            let ip = s.rd(&format!("shared/zerotier-ip-{m}-zerotier-local/ip/value"))?;
            s.ip.insert(m, ip);
        }
        Ok(s)
    }

    /// A var's value, trimmed.
    fn rd(&self, path: &str) -> Result<String> {
        let p = self.vars.join(path);
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(text.trim().to_string())
    }

    fn ip(&self, m: &str) -> &str {
        self.ip.get(m).map(String::as_str).unwrap_or_default()
    }

    fn keygen_l(&self, m: &str) -> Result<String> {
        let cert = self.rd(&format!(
            "per-machine/{m}/openssh-cert/ssh.id_ed25519-cert.pub/value"
        ))?;
        let out = ssh_keygen("-L", &cert)?;
        Ok(out.replacen("/dev/stdin:", &format!("{}:", cert_store(m)), 1))
    }

    fn ping(&self, to: &str, rtts: &[f64]) -> Output {
        let ip = self.ip(to);
        let mut lines = vec![format!("PING {ip} ({ip}) 56 data bytes")];
        for (i, r) in rtts.iter().enumerate() {
            // `{:?}` writes a float as Python's str() does (118.4, 119.0).
            lines.push(format!(
                "64 bytes from {ip}: icmp_seq={} ttl=64 time={r:?} ms",
                i + 1
            ));
        }
        let n = rtts.len() as f64;
        let mn = rtts.iter().copied().fold(f64::INFINITY, f64::min);
        let mx = rtts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let avg = rtts.iter().sum::<f64>() / n;
        let mdev = (rtts.iter().map(|r| (r - avg).powi(2)).sum::<f64>() / n).powf(0.5);
        lines.push(String::new());
        lines.push(format!("--- {ip} ping statistics ---"));
        lines.push(format!(
            "{} packets transmitted, {} received, 0% packet loss, time 803ms",
            rtts.len(),
            rtts.len()
        ));
        lines.push(format!(
            "rtt min/avg/max/mdev = {mn:.3}/{avg:.3}/{mx:.3}/{mdev:.3} ms"
        ));
        lines.push(String::new());
        ok(lines.join("\n"), "", 1003)
    }

    fn hop(&self, to: &str) -> Result<Output> {
        let ip = self.ip(to);
        let host_fp = fp(&self.rd(&format!(
            "per-machine/{to}/openssh/ssh.id_ed25519.pub/value"
        ))?)?;
        let ca_fp = fp(&self.ca)?;
        let err = [
            "OpenSSH_10.0p2, OpenSSL 3.4.1 11 Feb 2025".to_string(),
            "debug1: Reading configuration data /etc/ssh/ssh_config".into(),
            format!("debug1: Connecting to {ip} [{ip}] port 22."),
            "debug1: Connection established.".into(),
            format!("debug1: Authenticating to {ip}:22 as 'root'"),
            format!("debug1: using hostkeyalias: {to}.clan"),
            format!("debug1: Server host certificate: ssh-ed25519-cert-v01@openssh.com {host_fp}, serial 0 ID \"{to}\" CA ssh-ed25519 {ca_fp} valid forever"),
            format!("debug1: using hostkeyalias: {to}.clan"),
            format!("debug1: Host '{to}.clan' is known and matches the ED25519-CERT host certificate."),
            "debug1: Found CA key in /etc/ssh/ssh_known_hosts:1".into(),
            "debug1: Authentications that can continue: publickey".into(),
            "debug1: Offering public key: /root/.ssh/id_ed25519 ED25519 SHA256:rootkeyplaceholder".into(),
            format!("debug1: Authenticated to {ip} ([{ip}]:22) using \"publickey\"."),
            "debug1: Sending command: hostname".into(),
            "debug1: Exit status 0".into(),
            String::new(),
        ]
        .join("\n");
        Ok(ok(format!("{to}\n"), err, 412))
    }

    /// The healthy answer of machine `m` to `cmd`.
    fn answer(&self, m: &str, cmd: &str) -> Result<Output> {
        let other = MACHINES.into_iter().find(|x| *x != m).unwrap_or_default();
        let plain = |s: String| Ok(ok(s, "", 15));
        if cmd == "zerotier-cli -j info" {
            return plain(dumps(&json!({
                "address": node(m), "clock": 1790000000000u64,
                "config": {"settings": {"allowTcpFallbackRelay": true, "primaryPort": 9993}},
                "online": true, "planetWorldId": 149604618, "publicIdentity": format!("{}:0:<public key>", node(m)),
                "tcpFallbackActive": false, "version": "1.14.2", "versionMajor": 1, "versionMinor": 14, "versionRev": 2,
            }))?);
        }
        if cmd == "zerotier-cli -j listnetworks" {
            return plain(dumps(&json!([{
                "allowDNS": false, "allowDefault": false, "allowGlobal": false, "allowManaged": true,
                "assignedAddresses": [format!("{}/88", self.ip(m))], "bridge": false, "broadcastEnabled": true,
                "id": self.nwid, "mac": format!("52:c0:98:ab:cd:{}", &node(m)[8..]), "mtu": 2800,
                "name": "zerotier-local", "nwid": self.nwid, "portDeviceName": "ztmjfcpubr", "portError": 0,
                "routes": [], "status": "OK", "type": "PRIVATE",
            }]))?);
        }
        if cmd == "zerotier-cli -j peers" {
            return plain(dumps(&json!([
                {"address": node(other), "isBonded": false, "latency": 118,
                 "paths": [{"active": true, "address": format!("{}/9993", public_ip(other)), "expired": false,
                            "lastReceive": 1790000000123u64, "lastSend": 1790000000456u64, "preferred": true}],
                 "role": "LEAF", "tunneled": false, "version": "1.14.2"},
                {"address": "778cde7190", "isBonded": false, "latency": 35,
                 "paths": [{"active": true, "address": "192.0.2.77/9993", "expired": false, "preferred": true}],
                 "role": "PLANET", "tunneled": false, "version": "-1.-1.-1"},
            ]))?);
        }
        if cmd.starts_with("sh -c 'cd /var/lib/zerotier-one/controller.d")
            && !cmd.contains("/member/")
        {
            // The controller's network record (ZeroTier's defaults, as the lab's shows them).
            if m != "hetzner-vm" {
                return plain(String::new());
            }
            return plain(format!(
                "{{\"enableBroadcast\":true,\"id\":\"{}\",\"mtu\":2800,\"private\":true,\"revision\":1\n}}\n",
                self.nwid
            ));
        }
        if cmd.starts_with("sh -c 'cd /var/lib/zerotier-one/controller.d") {
            // The controller's member records (both authorised by clan's auto-accept); none
            // on a peer.
            if m != "hetzner-vm" {
                return plain(String::new());
            }
            let recs: Vec<String> = MACHINES
                .into_iter()
                .map(|x| {
                    json!({"activeBridge": false, "authorized": true, "id": node(x),
                           "identity": format!("{}:0:<public key>", node(x)), "ipAssignments": [],
                           "nwid": self.nwid, "objtype": "member", "revision": 3})
                    .to_string()
                })
                .collect();
            return plain(recs.join("\n") + "\n");
        }
        if cmd.starts_with("systemctl show") {
            let blocks: Vec<&str> = cmd
                .split_whitespace()
                .skip(12)
                .map(|u| {
                    if u == "emergency-access.service"
                        || (u.starts_with("zerotier-autoaccept") && m != "hetzner-vm")
                    {
                        "LoadState=not-found\nActiveState=inactive\nSubState=dead\nResult=success\nExecMainStatus=0"
                    } else if u.starts_with("zerotier-autoaccept") {
                        "LoadState=loaded\nActiveState=inactive\nSubState=dead\nResult=success\nExecMainStatus=0"
                    } else {
                        "LoadState=loaded\nActiveState=active\nSubState=running\nResult=success\nExecMainStatus=0"
                    }
                })
                .collect();
            return plain(blocks.join("\n\n") + "\n");
        }
        if cmd == "sshd -T" {
            return plain(
                [
                    "port 22".to_string(),
                    "addressfamily any".into(),
                    "listenaddress [::]:22".into(),
                    "listenaddress 0.0.0.0:22".into(),
                    "permitrootlogin prohibit-password".into(),
                    "pubkeyauthentication yes".into(),
                    "passwordauthentication no".into(),
                    "kbdinteractiveauthentication no".into(),
                    format!("hostkey /run/secrets/vars/per-machine/{m}/openssh/ssh.id_ed25519"),
                    format!("hostcertificate {}", cert_store(m)),
                    "authorizedkeysfile %h/.ssh/authorized_keys /etc/ssh/authorized_keys.d/%u"
                        .into(),
                    String::new(),
                ]
                .join("\n"),
            );
        }
        if cmd.starts_with("ssh-keygen -L -f ") {
            return plain(self.keygen_l(m)?);
        }
        if cmd == "cat /etc/ssh/ssh_known_hosts" {
            let own = self.rd(&format!("per-machine/{m}/openssh/ssh.id_ed25519.pub/value"))?;
            let ca = &self.ca;
            return plain(format!(
                "@cert-authority ssh-ca,*.clan {ca}\nlocalhost,{m},{m}.clan {own}\n"
            ));
        }
        if cmd == "cat /run/current-system/kernel-params" {
            return plain(format!(
                "init={}/init root=fstab loglevel=4 lsm=landlock,yama,bpf\n",
                system(m)
            ));
        }
        if cmd == "ls -1 /run/secrets/vars" {
            return plain("per-machine\nshared\n".into());
        }
        if cmd.starts_with("sh -c 'u=") && cmd.split_whitespace().rev().nth(3) == Some("root") {
            let h = sha("shared root password hash of the example fleet");
            return plain(format!("shadow {h}\nfile /run/secrets-for-users/vars/shared/user-password-root/user-password-hash {h}\n"));
        }
        if cmd.starts_with("sh -c 'for f in") && cmd.contains("user-password-root") {
            let h = sha("raw shared root hash file");
            return plain(format!(
                "/run/secrets-for-users/vars/shared/user-password-root/user-password-hash {h}\n"
            ));
        }
        if cmd.starts_with("sh -c 'for f in") && cmd.contains("zerotier-identity-") {
            let h = sha(&format!("identity of {m}"));
            return plain(format!(
                "/run/secrets/vars/shared/zerotier-identity-{m}/identity-secret {h}\n"
            ));
        }
        if cmd.starts_with("ping -6") {
            let rtts: &[f64] = if m == "hetzner-vm" {
                &[118.4, 119.1, 118.9, 121.3, 118.7]
            } else {
                &[119.0, 118.6, 120.2, 118.8, 119.4]
            };
            return Ok(self.ping(other, rtts));
        }
        if cmd.starts_with("ssh -v") {
            return self.hop(other);
        }
        if cmd.starts_with("sh -c") && cmd.contains("knownhostsfile") {
            // NixOS's ssh_config names only /etc/ssh/ssh_known_hosts (programs.ssh.knownHostsFiles).
            return plain(format!(
                "now {NOW} {}\nglobalknownhostsfile /etc/ssh/ssh_known_hosts\nuserknownhostsfile /dev/null\nfile /etc/ssh/ssh_known_hosts\n1:@cert-authority ssh-ca,*.clan {}\nfile /dev/null\n",
                NOW_LOCAL, self.ca
            ));
        }
        Err(format!("synthesize: no answer for {m}: {cmd}").into())
    }
}

/// The cassette as written: `format`, `description`, `machines_file`, then the machines in the
/// story's order (controller first).
struct StoryFile<'a> {
    machines: &'a [(&'a str, Vec<Entry>)],
}

impl Serialize for StoryFile<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Machines<'a>(&'a [(&'a str, Vec<Entry>)]);
        impl Serialize for Machines<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (name, entries) in self.0 {
                    m.serialize_entry(name, entries)?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("format", &FORMAT)?;
        m.serialize_entry("description", DESCRIPTION)?;
        m.serialize_entry("machines_file", "../../machines.toml")?;
        m.serialize_entry("machines", &Machines(self.machines))?;
        m.end()
    }
}

/// The cassette's text, from the crate root `root` and the plan.
pub fn cassette(root: &Path, plan: &Plan) -> Result<String> {
    let story = Story::load(root)?;
    let mut machines = Vec::new();
    for m in MACHINES {
        let mut entries = Vec::new();
        let commands = plan.get(m).ok_or_else(|| format!("the plan has no {m}"))?;
        for cmd in commands {
            entries.push(Entry {
                command: cmd.clone(),
                output: story.answer(m, cmd)?,
                error: None,
            });
            if cmd == "sshd -T" {
                let kc = format!("ssh-keygen -L -f {}", cert_store(m));
                let output = story.answer(m, &kc)?;
                entries.push(Entry {
                    command: kc,
                    output,
                    error: None,
                });
            }
        }
        machines.push((m, entries));
    }
    Ok(json::to_string(
        &StoryFile {
            machines: &machines,
        },
        Some(1),
    )? + "\n")
}

/// Writes the cassette under `root`.
pub fn write(root: &Path) -> Result<()> {
    let text = cassette(root, &plan(root)?)?;
    std::fs::write(root.join(OUTPUT), text)?;
    println!("wrote {OUTPUT}");
    Ok(())
}
