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
H, G = "hetzner-vm", "gcp-vm"
gcp_ip = json.loads(cmd(G, "zerotier-cli -j listnetworks")["stdout"])[0]["assignedAddresses"][0].split("/")[0]
het_ip = json.loads(cmd(H, "zerotier-cli -j listnetworks")["stdout"])[0]["assignedAddresses"][0].split("/")[0]
keygen_g = cmd(G, "ssh-keygen -L")
signing = re.search(r"Signing CA: (ED25519 SHA256:\S+)", keygen_g["stdout"]).group(1)
def R(machine, prefix, **kw):
    return {"machine": machine, "command": cmd(machine, prefix)["command"], **kw}
faults = {
 "zt-access-denied": ("gcp-vm's network membership not authorised by the controller (new peer, controller not redeployed)", "AC1", "zt.access-denied", G,
    [R(G, "zerotier-cli -j listnetworks", stdout_replace=[['"status": "OK"', '"status": "ACCESS_DENIED"']])]),
 "zt-requesting-configuration": ("gcp-vm never hears from the controller", "AC1", "zt.requesting-configuration", G,
    [R(G, "zerotier-cli -j listnetworks", stdout_replace=[['"status": "OK"', '"status": "REQUESTING_CONFIGURATION"']])]),
 "zt-offline": ("gcp-vm's ZeroTier node is OFFLINE", "AC1", "zt.offline", G,
    [R(G, "zerotier-cli -j info", stdout_replace=[['"online": true', '"online": false']])]),
 "zt-tunneled-high-rtt": ("gcp-vm tunnels through the TCP relay (UDP blocked) and its pings take ~385 ms", "AC1", "mesh.rtt-high", G,
    [R(G, "zerotier-cli -j info", stdout_replace=[['"tcpFallbackActive": false', '"tcpFallbackActive": true']]),
     R(G, "ping -6", stdout_replace=[[rtt_line(G), "rtt min/avg/max/mdev = 371.204/384.933/402.310/11.020 ms"]])]),
 "zt-node-id-mismatch": ("gcp-vm's daemon still runs an old identity after new vars (not restarted)", "AC1", "zt.node-id-mismatch", G,
    [R(G, "zerotier-cli -j info", stdout_replace=[['"address": "0e7f41c2a8"', '"address": "5d21b7c0e4"']])]),
 "mesh-loss-one-direction": ("hetzner-vm → gcp-vm loses every echo (one direction only)", "AC1", "mesh.loss", H,
    [R(H, "ping -6", exit=1, stdout=f"PING {gcp_ip} ({gcp_ip}) 56 data bytes\n\n--- {gcp_ip} ping statistics ---\n5 packets transmitted, 0 received, 100% packet loss, time 4093ms\n\n")]),
 "mesh-rtt-250": ("gcp-vm → hetzner-vm RTT 250 ms, above the 200 ms threshold", "AC1", "mesh.rtt-high", G,
    [R(G, "ping -6", stdout_replace=[[rtt_line(G), "rtt min/avg/max/mdev = 247.118/250.402/254.870/2.711 ms"]])]),
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
 "inventory-changed": ("the inventory drops gcp-vm from emergency-access (snapshot not reviewed)", "AC3", "inventory.changed", G, []),
}
for name, (desc, crit, code, machine, repl) in faults.items():
    c = {"format": 1, "description": desc, "derive_from": "../story-fleet.json",
         "expect": {"criterion": crit, "code": code, "machine": machine}, "replace": repl}
    if name == "inventory-changed":
        c["machines_file"] = "inventory-changed/machines.toml"
    json.dump(c, open(f"tests/cassettes/broken/{name}.json", "w"), indent=1)
# The changed inventory: emergency-access on hetzner-vm only.
os.makedirs("tests/cassettes/broken/inventory-changed", exist_ok=True)
inv = json.load(open("examples/test-clan/inventory.json"))
inv["instances"]["emergency-access"]["roles"]["default"] = {"machines": {"hetzner-vm": {"settings": {}}}, "tags": {}, "settings": {}}
json.dump(inv, open("tests/cassettes/broken/inventory-changed/inventory.json", "w"), indent=2)
toml = open("machines.toml").read().replace('clan_dir = "examples/test-clan"', 'clan_dir = "../../../../examples/test-clan"').replace('inventory_json = "examples/test-clan/inventory.json"', 'inventory_json = "inventory.json"')
open("tests/cassettes/broken/inventory-changed/machines.toml", "w").write(toml)
print(len(faults), "broken cassettes")
