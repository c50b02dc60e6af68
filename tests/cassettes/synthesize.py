#!/usr/bin/env python3
"""Synthesises tests/cassettes/story-fleet.json: the story's healthy fleet (examples/test-clan).

No NixOS fleet exists where this project is built, so this cassette is made, not recorded: the
command list comes from `clan-coord plan --json` (exactly what the checks run), the values from the
example clan repo, and every output's shape from the real-output corpus in tests/fixtures/
(zerotier-cli -j, iputils ping, ssh -v, systemctl show, sshd -T, ssh-keygen -L). Cassettes
recorded from real sshd and daemons come from the lab (COORD_RECORD). Run from the crate root:
    python3 tests/cassettes/synthesize.py
"""
import hashlib, json, os, re, subprocess, sys

root = os.getcwd()
repo = os.path.join(root, "examples/test-clan/vars")
plan = json.loads(subprocess.check_output(["cargo", "run", "-q", "--bin", "clan-coord", "--", "plan", "--json"]))
rd = lambda p: open(os.path.join(repo, p)).read().strip()
nwid = rd("shared/zerotier-network-zerotier-local/network-id/value")
ca = rd("shared/openssh-ca/id_ed25519.pub/value")
machines = ["hetzner-vm", "gcp-vm"]
ip = {m: rd(f"shared/zerotier-ip-{m}-zerotier-local/ip/value") for m in machines}
node = {"hetzner-vm": "8c3e0a19d2", "gcp-vm": "0e7f41c2a8"}
public_ip = {"hetzner-vm": "203.0.113.10", "gcp-vm": "198.51.100.20"}
sha = lambda s: hashlib.sha256(s.encode()).hexdigest()
cert_store = {m: f"/nix/store/{sha(m)[:32].translate(str.maketrans('abcdef','ghijkl'))}-per-machine-{m}-openssh-cert_ssh.id_ed25519-cert.pub" for m in machines}
system = {m: f"/nix/store/{sha('sys'+m)[:32].translate(str.maketrans('abcdef','mnpqrs'))}-nixos-system-{m}-26.05.20260801.1a2b3c4" for m in machines}

def fp(pub):
    out = subprocess.run(["ssh-keygen", "-l", "-f", "/dev/stdin"], input=pub + "\n", capture_output=True, text=True, check=True).stdout
    return out.split()[1]

def keygen_l(m):
    cert = rd(f"per-machine/{m}/openssh-cert/ssh.id_ed25519-cert.pub/value")
    out = subprocess.run(["ssh-keygen", "-L", "-f", "/dev/stdin"], input=cert + "\n", capture_output=True, text=True, check=True).stdout
    return out.replace("/dev/stdin:", cert_store[m] + ":", 1)

def ok(stdout, stderr="", exit=0, ms=15):
    return {"stdout": stdout, "stderr": stderr, "exit": exit, "duration_ms": ms}

def ping(frm, to, rtts):
    lines = [f"PING {ip[to]} ({ip[to]}) 56 data bytes"]
    lines += [f"64 bytes from {ip[to]}: icmp_seq={i+1} ttl=64 time={r} ms" for i, r in enumerate(rtts)]
    mn, mx, avg = min(rtts), max(rtts), sum(rtts) / len(rtts)
    mdev = (sum((r - avg) ** 2 for r in rtts) / len(rtts)) ** 0.5
    lines += ["", f"--- {ip[to]} ping statistics ---",
              f"{len(rtts)} packets transmitted, {len(rtts)} received, 0% packet loss, time 803ms",
              f"rtt min/avg/max/mdev = {mn:.3f}/{avg:.3f}/{mx:.3f}/{mdev:.3f} ms", ""]
    return ok("\n".join(lines), ms=1003)

def hop(frm, to):
    hostfp = fp(rd(f"per-machine/{to}/openssh/ssh.id_ed25519.pub/value"))
    err = "\n".join([
        "OpenSSH_10.0p2, OpenSSL 3.4.1 11 Feb 2025",
        "debug1: Reading configuration data /etc/ssh/ssh_config",
        f"debug1: Connecting to {ip[to]} [{ip[to]}] port 22.",
        f"debug1: Connection established.",
        f"debug1: Server host certificate: ssh-ed25519-cert-v01@openssh.com {hostfp}, serial 0 ID \"{to}\" CA ssh-ed25519 {fp(ca)} valid forever",
        f"debug2: Server host certificate hostname: {to}.clan",
        "debug1: load_hostkeys: fopen /dev/null: No such file or directory",
        f"debug1: Host '{to}.clan' is known and matches the ED25519-CERT host certificate.",
        "debug1: Found CA key in /etc/ssh/ssh_known_hosts:1",
        "debug1: Authentications that can continue: publickey",
        "debug1: Offering public key: /root/.ssh/id_ed25519 ED25519 SHA256:rootkeyplaceholder",
        f"debug1: Authenticated to {ip[to]} ([{ip[to]}]:22) using \"publickey\".",
        "debug1: Sending command: hostname",
        "debug1: Exit status 0", ""])
    return ok(to + "\n", err, 0, ms=412)

def answer(m, cmd):
    other = [x for x in machines if x != m][0]
    if cmd == "zerotier-cli -j info":
        return ok(json.dumps({"address": node[m], "clock": 1790000000000, "config": {"settings": {"allowTcpFallbackRelay": True, "primaryPort": 9993}},
                              "online": True, "planetWorldId": 149604618, "publicIdentity": node[m] + ":0:<public key>", "tcpFallbackActive": False,
                              "version": "1.14.2", "versionMajor": 1, "versionMinor": 14, "versionRev": 2}, indent=1, sort_keys=True) + "\n")
    if cmd == "zerotier-cli -j listnetworks":
        return ok(json.dumps([{"allowDNS": False, "allowDefault": False, "allowGlobal": False, "allowManaged": True,
                               "assignedAddresses": [ip[m] + "/88"], "bridge": False, "broadcastEnabled": True, "id": nwid, "mac": "52:c0:98:ab:cd:" + node[m][-2:],
                               "mtu": 2800, "name": "zerotier-local", "nwid": nwid, "portDeviceName": "ztmjfcpubr", "portError": 0, "routes": [], "status": "OK", "type": "PRIVATE"}], indent=1, sort_keys=True) + "\n")
    if cmd == "zerotier-cli -j peers":
        return ok(json.dumps([{"address": node[other], "isBonded": False, "latency": 118, "paths": [{"active": True, "address": public_ip[other] + "/9993", "expired": False, "lastReceive": 1790000000123, "lastSend": 1790000000456, "preferred": True}],
                               "role": "LEAF", "tunneled": False, "version": "1.14.2"},
                              {"address": "778cde7190", "isBonded": False, "latency": 35, "paths": [{"active": True, "address": "192.0.2.77/9993", "expired": False, "preferred": True}], "role": "PLANET", "tunneled": False, "version": "-1.-1.-1"}], indent=1, sort_keys=True) + "\n")
    if cmd.startswith("systemctl show"):
        units = cmd.split()[12:]
        blocks = []
        for u in units:
            if u == "emergency-access.service" or (u.startswith("zerotier-autoaccept") and m != "hetzner-vm"):
                blocks.append("LoadState=not-found\nActiveState=inactive\nSubState=dead\nResult=success\nExecMainStatus=0")
            elif u.startswith("zerotier-autoaccept"):
                blocks.append("LoadState=loaded\nActiveState=inactive\nSubState=dead\nResult=success\nExecMainStatus=0")
            else:
                blocks.append("LoadState=loaded\nActiveState=active\nSubState=running\nResult=success\nExecMainStatus=0")
        return ok("\n\n".join(blocks) + "\n")
    if cmd == "sshd -T":
        return ok("\n".join(["port 22", "addressfamily any", "listenaddress [::]:22", "listenaddress 0.0.0.0:22", "permitrootlogin prohibit-password",
                             "pubkeyauthentication yes", "passwordauthentication no", "kbdinteractiveauthentication no",
                             f"hostkey /run/secrets/vars/per-machine/{m}/openssh/ssh.id_ed25519", f"hostcertificate {cert_store[m]}",
                             "authorizedkeysfile %h/.ssh/authorized_keys /etc/ssh/authorized_keys.d/%u", ""]))
    if cmd.startswith("ssh-keygen -L -f "):
        return ok(keygen_l(m))
    if cmd == "cat /etc/ssh/ssh_known_hosts":
        own = rd(f"per-machine/{m}/openssh/ssh.id_ed25519.pub/value")
        return ok(f"@cert-authority ssh-ca,*.clan {ca}\nlocalhost,{m},{m}.clan {own}\n")
    if cmd == "cat /run/current-system/kernel-params":
        return ok(f"init={system[m]}/init root=fstab loglevel=4 lsm=landlock,yama,bpf\n")
    if cmd == "ls -1 /run/secrets/vars":
        return ok("per-machine\nshared\n")
    if cmd.startswith("sh -c 'u=") and cmd.split()[-4] == "root":
        h = sha("shared root password hash of the example fleet")
        return ok(f"shadow {h}\nfile /run/secrets-for-users/vars/shared/user-password-root/user-password-hash {h}\n")
    if cmd.startswith("sh -c 'for f in") and "user-password-root" in cmd:
        return ok(f"/run/secrets-for-users/vars/shared/user-password-root/user-password-hash {sha('raw shared root hash file')}\n")
    if cmd.startswith("sh -c 'for f in") and "zerotier-identity-" in cmd:
        return ok(f"/run/secrets/vars/shared/zerotier-identity-{m}/identity-secret {sha('identity of ' + m)}\n")
    if cmd.startswith("ping -6"):
        return ping(m, other, [118.4, 119.1, 118.9, 121.3, 118.7] if m == "hetzner-vm" else [119.0, 118.6, 120.2, 118.8, 119.4])
    if cmd.startswith("ssh -v"):
        return hop(m, other)
    sys.exit(f"synthesize.py: no answer for {m}: {cmd}")

cassette = {"format": 1,
            "description": "The story's healthy fleet (examples/test-clan: hetzner-vm ZeroTier controller, gcp-vm peer). SYNTHESISED by tests/cassettes/synthesize.py from the example repo and real output shapes; not a recording.",
            "machines_file": "../../machines.toml", "machines": {}}
for m in machines:
    entries = []
    for cmd in plan[m]:
        entries.append({"command": cmd, **answer(m, cmd)})
        if cmd == "sshd -T":
            kc = f"ssh-keygen -L -f {cert_store[m]}"
            entries.append({"command": kc, **answer(m, kc)})
    cassette["machines"][m] = entries
open("tests/cassettes/story-fleet.json", "w").write(json.dumps(cassette, indent=1) + "\n")
print("wrote tests/cassettes/story-fleet.json")
