#!/usr/bin/env python3
"""Writes what a testinfra user keeps beside their tests, from a lab's lab.json: fleet.json (names,
ZeroTier node ids and addresses from the vars, the network id, the controller) and ssh_config
(each host's address and alias, the lab CA as the only trust, the workstation key).
Usage: fleet.py LAB_DIR"""
import json
import sys

d = sys.argv[1]
lab = json.load(open(f"{d}/lab.json"))
if lab.get("overlay") != "zerotier":
    sys.exit(f"{d}: the testinfra peer checks ZeroTier; this lab runs {lab.get('overlay')}")
fleet = {
    "domain": lab["domain"],
    "network_id": lab["zerotier"]["network_id"],
    "controller": lab["machines"][0]["name"],
    "machines": {m["name"]: {"node": m["zt_node"], "ip": m["zt_ip"]} for m in lab["machines"]},
}
json.dump(fleet, open(f"{d}/fleet.json", "w"), indent=1)
cfg = []
for m in lab["machines"]:
    cfg += [f"Host {m['name']}", f"  HostName {m['mgmt_ip']}", f"  HostKeyAlias {m['name']}.{lab['domain']}"]
cfg += ["Host *", "  User root", f"  IdentityFile {d}/workstation/id_ed25519", "  IdentitiesOnly yes",
        "  BatchMode yes", f"  UserKnownHostsFile {d}/bench_known_hosts", "  StrictHostKeyChecking yes"]
open(f"{d}/ssh_config", "w").write("\n".join(cfg) + "\n")
