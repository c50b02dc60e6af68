#!/usr/bin/env python3
"""Writes the broken-fleet corpus: each cassette derives from story-fleet.json with ONE fault and
names the criterion, finding code and machine it must fail on (tests/verdicts.rs asserts it).
Run from the crate root after synthesize.py: python3 tests/cassettes/broken/make.py"""
import json, os, re
base = json.load(open("tests/cassettes/story-fleet.json"))
def cmd(m, prefix):
    return next(e for e in base["machines"][m] if e["command"].startswith(prefix))
def rtt_line(m):
    return re.search(r"rtt min/avg/max/mdev = .* ms", cmd(m, "ping -6")["stdout"]).group(0)
def slow_ping(m, times, summary):
    """Replacements making m's ping answer with these echo times and this rtt summary line."""
    echoes = re.findall(r"^\d+ bytes from .* time=[\d.]+ ms$", cmd(m, "ping -6")["stdout"], re.M)
    assert len(echoes) == len(times), (m, echoes)
    return [[e, re.sub(r"time=[\d.]+ ms", f"time={t} ms", e)] for e, t in zip(echoes, times)] + [[rtt_line(m), summary]]
H, G = "hetzner-vm", "gcp-vm"
gcp_ip = json.loads(cmd(G, "zerotier-cli -j listnetworks")["stdout"])[0]["assignedAddresses"][0].split("/")[0]
het_ip = json.loads(cmd(H, "zerotier-cli -j listnetworks")["stdout"])[0]["assignedAddresses"][0].split("/")[0]
keygen_g = cmd(G, "ssh-keygen -L")
signing = re.search(r"Signing CA: (ED25519 SHA256:\S+)", keygen_g["stdout"]).group(1)
def R(machine, prefix, **kw):
    return {"machine": machine, "command": cmd(machine, prefix)["command"], **kw}
def units(m, idx, **kv):
    """systemctl show output of machine m with block idx's properties replaced."""
    blocks = cmd(m, "systemctl show")["stdout"].strip("\n").split("\n\n")
    props = dict(l.split("=", 1) for l in blocks[idx].splitlines())
    props.update(kv)
    blocks[idx] = "\n".join(f"{k}={v}" for k, v in props.items())
    return "\n\n".join(blocks) + "\n"
AUTOACCEPT = 2  # order: emergency-access, sshd, zerotier-autoaccept-*, zerotierone
ca_line = next(l for l in cmd(G, "cat /etc/ssh/ssh_known_hosts")["stdout"].splitlines() if l.startswith("@cert-authority"))
nwid = json.loads(cmd(G, "zerotier-cli -j listnetworks")["stdout"])[0]["id"]
faults = {
 "zt-access-denied": ("gcp-vm's network membership not authorised by the controller (new peer, controller not redeployed)", "AC1", "zt.access-denied", G,
    [R(G, "zerotier-cli -j listnetworks", stdout_replace=[['"status": "OK"', '"status": "ACCESS_DENIED"']])]),
 "zt-requesting-configuration": ("gcp-vm never hears from the controller", "AC1", "zt.requesting-configuration", G,
    [R(G, "zerotier-cli -j listnetworks", stdout_replace=[['"status": "OK"', '"status": "REQUESTING_CONFIGURATION"']])]),
 "zt-offline": ("gcp-vm's ZeroTier node is OFFLINE", "AC1", "zt.offline", G,
    [R(G, "zerotier-cli -j info", stdout_replace=[['"online": true', '"online": false']])]),
 "zt-tunneled-high-rtt": ("gcp-vm tunnels through the TCP relay (UDP blocked) and its pings take ~385 ms", "AC1", "mesh.rtt-high", G,
    [R(G, "zerotier-cli -j info", stdout_replace=[['"tcpFallbackActive": false', '"tcpFallbackActive": true']]),
     R(G, "ping -6", stdout_replace=slow_ping(G, ["402.310", "371.204", "381.285", "386.011", "383.855"], "rtt min/avg/max/mdev = 371.204/384.933/402.310/11.020 ms"))]),
 "zt-node-id-mismatch": ("gcp-vm's daemon still runs an old identity after new vars (not restarted)", "AC1", "zt.node-id-mismatch", G,
    [R(G, "zerotier-cli -j info", stdout_replace=[['"address": "0e7f41c2a8"', '"address": "5d21b7c0e4"']])]),
 "mesh-loss-one-direction": ("hetzner-vm → gcp-vm loses every echo (one direction only)", "AC1", "mesh.loss", H,
    [R(H, "ping -6", exit=1, stdout=f"PING {gcp_ip} ({gcp_ip}) 56 data bytes\n\n--- {gcp_ip} ping statistics ---\n5 packets transmitted, 0 received, 100% packet loss, time 4093ms\n\n")]),
 "mesh-one-slow-echo": ("one of gcp-vm's five echoes to hetzner-vm takes 264 ms (a busy moment), the others 119 ms", "AC1", "mesh.rtt-high", G,
    [R(G, "ping -6", stdout_replace=slow_ping(G, ["119.0", "264.2", "120.2", "118.8", "119.4"], "rtt min/avg/max/mdev = 118.800/148.320/264.200/57.940 ms"))]),
 "mesh-rtt-250": ("gcp-vm → hetzner-vm RTT 250 ms, above the 200 ms threshold", "AC1", "mesh.rtt-high", G,
    [R(G, "ping -6", stdout_replace=slow_ping(G, ["254.870", "247.118", "249.218", "251.402", "249.402"], "rtt min/avg/max/mdev = 247.118/250.402/254.870/2.711 ms"))]),
 "ssh-foreign-ca": ("gcp-vm serves a host certificate signed by a foreign CA", "AC2", "ssh.foreign-ca", G,
    [R(G, "ssh-keygen -L", stdout_replace=[[signing, "ED25519 SHA256:Zm9yZWlnbi1jYS1ub3QtdGhlLWNsYW4tb25lLWF0LWFsbA"]]),
     R(H, "ssh -v", exit=255, stdout="", stderr=f"debug1: Connecting to {gcp_ip} [{gcp_ip}] port 22.\ndebug1: Connection established.\ndebug1: Server host certificate: ssh-ed25519-cert-v01@openssh.com SHA256:BzmKL4tJDwrF5n+eo++Ojl1OTKAk0zg6r9uP5jgny8c, serial 0 ID \"gcp-vm\" CA ssh-ed25519 SHA256:Zm9yZWlnbi1jYS1ub3QtdGhlLWNsYW4tb25lLWF0LWFsbA valid forever\ndebug2: Server host certificate hostname: gcp-vm.clan\ndebug1: No matching CA found. Retry with plain key\nNo ED25519 host key is known for gcp-vm.clan and you have requested strict checking.\nHost key verification failed.\n")]),
 "ssh-principal-mismatch": ("gcp-vm's certificate names gcp-vm.zt, not gcp-vm.clan", "AC2", "ssh.principal-mismatch", G,
    [R(G, "ssh-keygen -L", stdout_replace=[["gcp-vm.clan", "gcp-vm.zt"]]),
     R(H, "ssh -v", exit=255, stdout="", stderr="debug1: Server host certificate: ssh-ed25519-cert-v01@openssh.com SHA256:BzmKL4tJDwrF5n+eo++Ojl1OTKAk0zg6r9uP5jgny8c, serial 0 ID \"gcp-vm\" CA ssh-ed25519 SHA256:FqDLvMFIAAyvyRJlSy85B1ocTTe+fPi23Bh9QYQHdIU valid forever\ndebug2: Server host certificate hostname: gcp-vm.clan\nCertificate invalid: name is not a listed principal\nHost key verification failed.\n")]),
 "ssh-user-key-refused": ("hetzner-vm does not authorise gcp-vm's root key", "AC2", "ssh.user-key-refused", G,
    [R(G, "ssh -v", exit=255, stdout="", stderr=f"debug1: Host 'hetzner-vm.clan' is known and matches the ED25519-CERT host certificate.\ndebug1: Authentications that can continue: publickey\ndebug1: No more authentication methods to try.\nroot@{het_ip}: Permission denied (publickey).\n")]),
 "users-root-hash-mismatch": ("root's shadow hash on gcp-vm differs from the deployed user-password-hash", "AC3", "users.hash-mismatch", G,
    [R(G, "sh -c 'u=", stdout_replace=[["shadow ", "shadow 1111111111111111111111111111111111111111111111111111111111111111\nignored "]])]),
 "shared-var-differs": ("gcp-vm holds another version of the shared user-password-root hash", "AC4", "shared.secret-differs", G,
    [R(G, "sh -c 'for f in", stdout="/run/secrets-for-users/vars/shared/user-password-root/user-password-hash 2222222222222222222222222222222222222222222222222222222222222222\n")]),
 "zt-autoaccept-missing": ("the controller has no auto-accept unit (pre-2026 clan-core unit name, or not the controller)", "AC1", "zt.autoaccept-missing", H,
    [R(H, "systemctl show", stdout=units(H, AUTOACCEPT, LoadState="not-found", ActiveState="inactive"))]),
 "zt-autoaccept-failed": ("the controller's auto-accept run exited 1", "AC1", "zt.autoaccept-failed", H,
    [R(H, "systemctl show", stdout=units(H, AUTOACCEPT, Result="exit-code", ExecMainStatus="1", ActiveState="failed", SubState="failed"))]),
 "zt-network-recreated": ("gcp-vm is joined to a recreated network f1ea9860065066e3, not the repo's", "AC1", "zt.not-joined", G,
    [R(G, "zerotier-cli -j listnetworks", stdout_replace=[[nwid, "f1ea9860065066e3"]])], [("AC3", "zt.member"), ("AC4", "shared.network-id-differs")]),
 "zt-address-mismatch": ("the controller assigned gcp-vm an address of the old network f1ea9860065066e3", "AC1", "zt.address-mismatch", G,
    [R(G, "zerotier-cli -j listnetworks", stdout_replace=[[gcp_ip, "fdf1:ea98:6006:5066:e399:930e:7f41:c2a8"]])]),
 "sshd-no-cert": ("gcp-vm's sshd serves no host certificate (certificates off)", "AC3", "sshd.no-cert", G,
    [R(G, "sshd -T", stdout="\n".join(l for l in cmd(G, "sshd -T")["stdout"].splitlines() if not l.startswith("hostcertificate")) + "\n")], [("AC2", "ssh.no-host-cert")]),
 "sshd-password-auth": ("gcp-vm's sshd accepts passwords (configuration drift)", "AC3", "sshd.password-auth", G,
    [R(G, "sshd -T", stdout_replace=[["passwordauthentication no", "passwordauthentication yes"]])]),
 "sshd-client-no-ca": ("gcp-vm's /etc/ssh/ssh_known_hosts lacks the @cert-authority line", "AC3", "sshd.client-no-ca", G,
    [R(G, "cat /etc/ssh/ssh_known_hosts", stdout_replace=[[ca_line + "\n", ""]])], [("AC2", "ssh.no-ca-line")]),
 "shared-ca-differs": ("gcp-vm trusts another CA than the clan's shared openssh-ca", "AC4", "shared.ca-differs", G,
    [R(G, "cat /etc/ssh/ssh_known_hosts", stdout_replace=[[ca_line.split()[-1], "AAAAC3NzaC1lZDI1NTE5AAAAIE0v1Yq3bwqBPhS1KcmuAdKrKUtYyBEOCzPW3tu0Kb9R"]])], [("AC2", "ssh.foreign-ca"), ("AC3", "sshd.client-no-ca")]),
 "ssh-not-host-cert": ("gcp-vm's HostCertificate is a user certificate (signed without -h)", "AC2", "ssh.not-host-cert", G,
    [R(G, "ssh-keygen -L", stdout_replace=[["host certificate", "user certificate"]])]),
 "ea-no-systemd-initrd": ("gcp-vm boots the scripted initrd, so emergency access has no effect", "AC3", "ea.no-systemd-initrd", G,
    [R(G, "cat /run/current-system/kernel-params", stdout_replace=[["root=fstab ", ""]])]),
 "users-hash-missing": ("gcp-vm has no deployed user-password-root hash (secrets not uploaded)", "AC3", "users.hash-missing", G,
    [R(G, "sh -c 'u=", stdout=cmd(G, "sh -c 'u=")["stdout"].split("file ")[0])]),
 "shared-secret-missing": ("gcp-vm lacks the shared user-password-root secret file", "AC4", "shared.secret-missing", G,
    [R(G, "sh -c 'for f in", stdout="")]),
 "role-leak": ("gcp-vm, a ZeroTier peer, also runs the controller's auto-accept unit", "AC3", "role.leak", G,
    [R(G, "systemctl show", stdout=units(G, AUTOACCEPT, LoadState="loaded"))]),
 "mesh-no-route": ("gcp-vm has no route to hetzner-vm's overlay address (interface down)", "AC1", "mesh.no-route", G,
    [R(G, "ping -6", exit=2, stdout="", stderr="ping: connect: Network is unreachable\n")]),
 "ssh-wrong-host": ("hetzner-vm's hop to gcp-vm's overlay address lands on another machine", "AC2", "ssh.wrong-host", H,
    [R(H, "ssh -v", stdout="old-gcp-vm\n")]),
 "users-no-password": ("root on gcp-vm has no password hash in /etc/shadow", "AC3", "users.no-password", G,
    [R(G, "sh -c 'u=", stdout_replace=[["shadow " + cmd(G, "sh -c 'u=")["stdout"].split("shadow ")[1].split()[0], "shadow e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]])]),
 "zt-cli-no-token": ("zerotier-cli on gcp-vm cannot read the daemon's auth token", "AC1", "probe.failed", G,
    [R(G, "zerotier-cli -j info", exit=1, stdout="", stderr="zerotier-cli: missing authentication token and authtoken.secret not found (or readable) in /var/lib/zerotier-one\n")]),
 "inventory-changed": ("the inventory drops gcp-vm from emergency-access (snapshot not reviewed)", "AC3", "inventory.changed", G, []),
}
def write(faults, base, extra=lambda name: {}):
    """One cassette per fault: (description, criterion, code, machine, replacements[, also])."""
    for name, (desc, crit, code, machine, repl, *also) in faults.items():
        expect = {"criterion": crit, "code": code, "machine": machine}
        if also:
            expect["also"] = [{"criterion": c, "code": k} for c, k in also[0]]
        c = {"format": 1, "description": desc, "derive_from": base, "expect": expect, "replace": repl, **extra(name)}
        json.dump(c, open(f"tests/cassettes/broken/{name}.json", "w"), indent=1)
write(faults, "../story-fleet.json",
      lambda name: {"machines_file": "inventory-changed/machines.toml"} if name == "inventory-changed" else {})
# The changed inventory: emergency-access on hetzner-vm only.
os.makedirs("tests/cassettes/broken/inventory-changed", exist_ok=True)
inv = json.load(open("examples/test-clan/inventory.json"))
inv["instances"]["emergency-access"]["roles"]["default"] = {"machines": {"hetzner-vm": {"settings": {}}}, "tags": {}, "settings": {}}
json.dump(inv, open("tests/cassettes/broken/inventory-changed/inventory.json", "w"), indent=2)
toml = open("machines.toml").read().replace('clan_dir = "examples/test-clan"', 'clan_dir = "../../../../examples/test-clan"').replace('inventory_json = "examples/test-clan/inventory.json"', 'inventory_json = "inventory.json"')
open("tests/cassettes/broken/inventory-changed/machines.toml", "w").write(toml)
# Faults of the yggdrasil overlay, derived from the run recorded on the healthy lab.
lab = json.load(open("tests/cassettes/lab/cassette.json"))
def lcmd(m, prefix):
    return next(e for e in lab["machines"][m] if e["command"].startswith(prefix))
def LR(machine, prefix, **kw):
    return {"machine": machine, "command": lcmd(machine, prefix)["command"], **kw}
gself = json.loads(lcmd(G, "yggdrasilctl -json getSelf")["stdout"])
lab_units = lcmd(G, "systemctl show")["stdout"].strip("\n").split("\n\n")
YGG = 2  # order: emergency-access, sshd, yggdrasil
lab_units[YGG] = lab_units[YGG].replace("ActiveState=active", "ActiveState=failed").replace("SubState=running", "SubState=failed").replace("Result=success", "Result=exit-code")
state_cmd = next(e for e in lab["machines"][G] if e["command"].startswith("sh -c ") and "profile-path" in e["command"])
state_out = state_cmd["stdout"]
def state_with(line_prefix, new_line):
    return "\n".join(new_line if l.startswith(line_prefix) else l for l in state_out.splitlines()) + "\n"
unit_line = next(l for l in state_out.splitlines() if l.startswith("unit "))
u = unit_line.split()
file_line = next(l for l in state_out.splitlines() if l.startswith("file "))
cur = next(l for l in state_out.splitlines() if l.startswith("current "))
# Every recording of gcp-vm's state probe (before/after each round), line by line.
state_lines = {l for e in lab["machines"][G] if e["command"] == state_cmd["command"] for l in e["stdout"].splitlines()}
unit_down_pairs = sorted([l, f"unit {l.split()[1]} 0 - {l.split()[4]}"] for l in state_lines if l.startswith("unit "))
artefact_missing_pairs = sorted([l, " ".join(l.split()[:2] + ["-"])] for l in state_lines if l.startswith("file "))
lab_faults = {
 "rebuild-unit-down": ("yggdrasil.service on gcp-vm is not running after the rebuild", "AC6", "coord.unit-down", G,
    [{"machine": G, "command": state_cmd["command"], "stdout_replace": unit_down_pairs}]),
 "rebuild-artefact-missing": ("gcp-vm's new generation lacks /etc/nix/nix.conf", "AC5", "rebuild.artefact-missing", G,
    [{"machine": G, "command": state_cmd["command"], "stdout_replace": artefact_missing_pairs}]),
 "rebuild-no-generation": ("gcp-vm switched systems without registering a new profile generation", "AC5", "rebuild.no-generation", G,
    [{"machine": G, "command": state_cmd["command"], "stdout_replace": sorted([l, "profile system-1-link"] for l in state_lines if l.startswith("profile system-") and l != "profile system-1-link")}], [("AC6", "rebuild.no-generation")]),
 "rebuild-not-switched": ("gcp-vm built its new generation but still runs an older one", "AC5", "rebuild.not-switched", G,
    [{"machine": G, "command": state_cmd["command"], "stdout_replace": [["current /nix/store/", "current /nix/store/0stale0-"]]}], [("AC6", "rebuild.not-switched")]),
 "ygg-address-mismatch": ("gcp-vm's yggdrasil runs another key than its vars (new vars, daemon not restarted)", "AC1", "ygg.address-mismatch", G,
    [LR(G, "yggdrasilctl -json getSelf", stdout_replace=[[gself["address"], "203:1111:2222:3333:4444:5555:6666:7777"]])], [("AC6", "ygg.address-mismatch")]),
 "ygg-key-mismatch": ("gcp-vm's publicKey var does not belong to its address var", "AC1", "ygg.key-mismatch", G,
    [LR(G, "yggdrasilctl -json getSelf", stdout_replace=[[gself["key"], "ab" * 32]])], [("AC6", "ygg.key-mismatch")]),
 "ygg-no-peers": ("gcp-vm's yggdrasil reaches none of its peers", "AC1", "ygg.no-peers", G,
    [LR(G, "yggdrasilctl -json getPeers", stdout='{\n  "peers": []\n}\n')], [("AC6", "ygg.no-peers")]),
 "ygg-unit-failed": ("yggdrasil.service on gcp-vm has failed", "AC3", "ygg.unit", G,
    [LR(G, "systemctl show", stdout="\n\n".join(lab_units) + "\n")], [("AC6", "ygg.unit")]),
}
write(lab_faults, "../lab/cassette.json")
print(len(faults) + len(lab_faults), "broken cassettes")
