"""AC1-AC3 written the way a pytest-testinfra user writes them (the peer of bench/bench.sh):
one test per fact, parametrised over hosts and ordered pairs, each asking its host over ssh.

AC1 overlay mesh: daemon online with the vars' node id, network OK with the vars' address, every
    other member a direct peer, every member authorised on the controller, every pair pings.
AC2 SSH: each host's sshd presents a host certificate for <name>.<domain>, the CA is trusted
    system-wide, and every pair logs in over the overlay with strict host key checking.
AC3 services: the inventory's units are active on every host (the controller's auto-accept too).
"""
import itertools
import json

import pytest
import testinfra

from conftest import CONTROLLER, DOMAIN, MACHINES, NETWORK

testinfra_hosts = [f"ssh://{m}" for m in MACHINES]
PAIRS = [(a, b) for a, b in itertools.permutations(MACHINES, 2)]
# emergency-access is not a unit on NixOS (it sets boot.initrd.systemd.emergencyAccess).
UNITS = ["sshd.service", "zerotierone.service"]


@pytest.fixture
def on(request):
    """A host by name, over the same ssh config as pytest's --ssh-config (pair tests run on
    their source, not on each of --hosts)."""
    ssh_config = request.config.getoption("ssh_config")
    return lambda name: testinfra.get_host(f"ssh://{name}", ssh_config=ssh_config)


def name_of(host):
    return host.backend.hostname


# AC1
def test_zerotier_online(host):
    info = json.loads(host.check_output("zerotier-cli -j info"))
    assert info["online"] is True
    assert info["address"] == MACHINES[name_of(host)]["node"]


def test_network_ok(host):
    nets = json.loads(host.check_output("zerotier-cli -j listnetworks"))
    net = next(n for n in nets if n["nwid"] == NETWORK)
    assert net["status"] == "OK"
    assert any(a.split("/")[0] == MACHINES[name_of(host)]["ip"] for a in net["assignedAddresses"])


def test_peers_direct(host):
    peers = {p["address"]: p for p in json.loads(host.check_output("zerotier-cli -j peers"))}
    for other, m in MACHINES.items():
        if other == name_of(host):
            continue
        assert any(p["active"] and not p.get("expired") for p in peers[m["node"]]["paths"])


@pytest.mark.parametrize("member", list(MACHINES))
def test_member_authorized(on, member):
    path = f"/var/lib/zerotier-one/controller.d/network/{NETWORK}/member/{MACHINES[member]['node']}.json"
    assert json.loads(on(CONTROLLER).file(path).content_string)["authorized"] is True


@pytest.mark.parametrize("src,dst", PAIRS)
def test_ping(on, src, dst):
    cmd = on(src).run("ping -6 -c 3 -i 0.2 -W 2 %s", MACHINES[dst]["ip"])
    assert cmd.rc == 0, cmd.stdout


# AC2
def test_host_certificate(host):
    cert = host.check_output("sshd -T | awk '/^hostcertificate /{print $2; exit}'")
    assert cert, "sshd presents no host certificate"
    listing = host.check_output("ssh-keygen -L -f %s", cert)
    assert "host certificate" in listing
    assert f"{name_of(host)}.{DOMAIN}" in listing


def test_ca_trusted(host):
    assert "@cert-authority" in host.file("/etc/ssh/ssh_known_hosts").content_string


@pytest.mark.parametrize("src,dst", PAIRS)
def test_ssh_between(on, src, dst):
    out = on(src).check_output(
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/dev/null "
        "-o HostKeyAlias=%s -o ConnectTimeout=5 root@%s hostname",
        f"{dst}.{DOMAIN}",
        MACHINES[dst]["ip"],
    )
    assert out.strip() == dst


# AC3
@pytest.mark.parametrize("unit", UNITS)
def test_unit_active(host, unit):
    assert host.service(unit).is_running


def test_controller_autoaccept(on):
    assert on(CONTROLLER).service("zerotier-autoaccept-zerotier.service").is_running
