"""The fleet as a testinfra user describes it: names, overlay addresses and node ids from the
clan's vars, written by bench/bench.sh into FLEET_JSON (from the lab's lab.json)."""
import json
import os

FLEET = json.load(open(os.environ["FLEET_JSON"]))
MACHINES = FLEET["machines"]  # name -> {"node": ..., "ip": ...}
CONTROLLER = FLEET["controller"]
NETWORK = FLEET["network_id"]
DOMAIN = FLEET["domain"]
