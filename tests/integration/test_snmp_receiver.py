"""net-snmp's snmptrap/snmpinform -> the trap receiver -> RabbitMQ -> stored events, read back through the API."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import uuid

import pytest

from tests import services
from tests.http import request
from tests.processes import Process, free_port, wait_for

USERS = "alice:SHA:authpass123:AES:privpass123,bob:MD5:authpass123:DES:privpass123"


@pytest.fixture(scope="module")
def trap_port(stack, tmp_path_factory):
    if not shutil.which("snmptrap"):
        if services.under_ci():
            pytest.fail("net-snmp's snmptrap is needed (Debian package snmp)", pytrace=False)
        pytest.skip("snmptrap is not installed")
    port = free_port(socket.SOCK_DGRAM)
    env = dict(stack.env, SNMP_TRAP_PORT=str(port), SNMP_COMMUNITIES="public,monitoring", SNMP_V3_USERS=USERS,
               SPOOL_DIR=str(tmp_path_factory.mktemp("spool")))  # fmt: skip
    proc = Process("snmptrap", [sys.executable, "-m", "app.receivers.snmp"], env)
    wait_for(lambda: "SNMP traps listening" in proc.output() or not proc.alive(), message="the trap receiver")
    assert proc.alive(), proc.output()
    yield port
    proc.stop()
    assert "Traceback" not in proc.output(), proc.output()


def send(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=20, env={"MIBS": "", "PATH": "/usr/bin:/bin"}
    )


def find(stack, marker: str, *, timeout: float = 20.0) -> dict:
    def get():
        page = request("GET", f"{stack.base}/api/v1/events?source_type=snmp&limit=1000", key=stack.viewer).json()
        hits = [e for e in page["events"] if marker in str(e["metadata"].get("varbinds"))]
        return hits[0] if hits else None

    return wait_for(get, timeout=timeout, message=f"a trap with {marker!r}")


def marker_vb() -> tuple[str, list[str]]:
    """A unique marker (in sysName.0) and interface: equal traps within the window would be folded into one event."""
    marker = uuid.uuid4().hex[:12]
    index = str(int(marker[:6], 16))
    return marker, ["1.3.6.1.2.1.1.5.0", "s", marker, f"1.3.6.1.2.1.2.2.1.1.{index}", "i", index]


def test_a_v1_link_down_trap(stack, trap_port):
    marker, vb = marker_vb()
    r = send("snmptrap", "-v", "1", "-c", "public", f"127.0.0.1:{trap_port}", "1.3.6.1.4.1.8072.2.3", "192.0.2.10", "2", "0", "",
             *vb)  # fmt: skip
    assert r.returncode == 0, r.stderr
    event = find(stack, marker)
    assert (event["event_type"], event["severity"], event["host"]) == ("connectivity_issue", "high", "192.0.2.10")
    assert event["metadata"]["ifIndex"] == int(vb[-1]) and event["metadata"]["version"] == "v1"


def test_v2c_link_up_and_cold_start_with_varbinds(stack, trap_port):
    marker, vb = marker_vb()
    i = vb[-1]
    r = send("snmptrap", "-v", "2c", "-c", "monitoring", f"127.0.0.1:{trap_port}", "", "1.3.6.1.6.3.1.1.5.4", *vb,
             f"1.3.6.1.2.1.2.2.1.2.{i}", "s", "eth3", f"1.3.6.1.2.1.2.2.1.8.{i}", "i", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    up = find(stack, marker)
    assert (up["event_type"], up["severity"], up["host"]) == ("connectivity_restored", "info", "127.0.0.1")
    assert (
        up["metadata"]["varbinds"][f"ifDescr.{i}"] == "eth3" and up["metadata"]["varbinds"][f"ifOperStatus.{i}"] == "up"
    )
    assert up["title"] == f"linkUp on 127.0.0.1 ifIndex {i} (eth3)"
    marker, vb = marker_vb()
    send("snmptrap", "-v", "2c", "-c", "public", f"127.0.0.1:{trap_port}", "", "1.3.6.1.6.3.1.1.5.1", *vb)
    cold = find(stack, marker)
    assert (cold["event_type"], cold["severity"]) == ("system_restart", "medium")


@pytest.mark.parametrize(("user", "auth", "priv", "engine"), [("alice", "SHA", "AES", "0x8000000001020304"),
                                                               ("bob", "MD5", "DES", "0x8000000001020305")])  # fmt: skip
def test_v3_auth_priv_traps_from_an_unconfigured_engine_id_are_learned(stack, trap_port, user, auth, priv, engine):
    marker, vb = marker_vb()
    r = send("snmptrap", "-v", "3", "-e", engine, "-u", user, "-a", auth, "-A", "authpass123", "-x", priv, "-X", "privpass123",
             "-l", "authPriv", f"127.0.0.1:{trap_port}", "", "1.3.6.1.6.3.1.1.5.3", *vb)  # fmt: skip
    assert r.returncode == 0, r.stderr
    event = find(stack, marker)
    assert (event["event_type"], event["metadata"]["version"], event["metadata"]["user"]) == (
        "connectivity_issue",
        "v3",
        user,
    )


def test_an_inform_is_acknowledged(stack, trap_port):
    marker, vb = marker_vb()
    r = send(
        "snmpinform",
        "-v",
        "2c",
        "-c",
        "public",
        "-t",
        "3",
        "-r",
        "1",
        f"127.0.0.1:{trap_port}",
        "",
        "1.3.6.1.6.3.1.1.5.2",
        *vb,
    )
    assert r.returncode == 0, r.stderr  # snmpinform exits non-zero when no acknowledgement comes
    assert find(stack, marker)["metadata"]["pdu"] == "inform"
    marker, vb = marker_vb()
    r = send("snmpinform", "-v", "3", "-u", "alice", "-a", "SHA", "-A", "authpass123", "-x", "AES", "-X", "privpass123", "-l", "authPriv",
             "-t", "3", "-r", "1", f"127.0.0.1:{trap_port}", "", "1.3.6.1.6.3.1.1.5.2", *vb)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert find(stack, marker)["metadata"]["version"] == "v3"


def test_wrong_credentials_are_dropped(stack, trap_port):
    wrong_pass, vb1 = marker_vb()
    send("snmptrap", "-v", "3", "-e", "0x8000000001020304", "-u", "alice", "-a", "SHA", "-A", "not-the-password", "-x", "AES",
         "-X", "privpass123", "-l", "authPriv", f"127.0.0.1:{trap_port}", "", "1.3.6.1.6.3.1.1.5.3", *vb1)  # fmt: skip
    wrong_community, vb2 = marker_vb()
    send("snmptrap", "-v", "2c", "-c", "guess", f"127.0.0.1:{trap_port}", "", "1.3.6.1.6.3.1.1.5.3", *vb2)
    # A good trap sent after them arrives, so the two before it would have too
    good, vb3 = marker_vb()
    send("snmptrap", "-v", "2c", "-c", "public", f"127.0.0.1:{trap_port}", "", "1.3.6.1.6.3.1.1.5.1", *vb3)
    find(stack, good)
    page = request("GET", f"{stack.base}/api/v1/events?source_type=snmp&limit=1000", key=stack.viewer).json()
    seen = str([e["metadata"].get("varbinds") for e in page["events"]])
    assert wrong_pass not in seen and wrong_community not in seen


def test_a_switch_known_by_its_address_roots_the_incident_of_the_hosts_behind_it(stack, trap_port):
    # Given a topology whose switch is declared with the management address its traps come from
    tag = uuid.uuid4().hex[:6]
    switch, hosts, address = f"acc-sw-{tag}", [f"app-{tag}-{i}" for i in range(3)], f"198.51.100.{int(tag[:2], 16) % 250 + 1}"
    topology = {"nodes": [{"id": switch, "kind": "switch", "addresses": [address]},
                          *({"id": h, "kind": "host"} for h in hosts)],
                "edges": [{"from": h, "to": switch, "kind": "connected_to"} for h in hosts]}  # fmt: skip
    put = request("PUT", f"{stack.base}/api/v1/topology", json=topology, key=stack.admin)
    assert put.status == 200 and put.json()["nodes"][0]["addresses"] == [address], put.text
    time.sleep(10.5)  # normalizers and correlators read the topology again within 10 s
    # When the switch sends a linkDown trap (v1: its agent address), and the hosts behind it alert
    marker, vb = marker_vb()
    r = send("snmptrap", "-v", "1", "-c", "public", f"127.0.0.1:{trap_port}", "1.3.6.1.4.1.9", address, "2", "0", "",
             *vb)  # fmt: skip
    assert r.returncode == 0, r.stderr
    trap = find(stack, marker)
    for h in hosts:
        request("POST", f"{stack.base}/api/v1/events/webhook", key=stack.ingest,
                json={"source": "blackbox", "host": h, "severity": "critical", "title": f"{h} is unreachable"})  # fmt: skip
    # Then the trap is the switch's event, and the switch's incident holds the hosts' alerts
    assert (trap["host"], trap["metadata"]["host_as_sent"]) == (switch, address)

    def incident():
        event = request("GET", f"{stack.base}/api/v1/events/{trap['id']}", key=stack.viewer).json()
        if not event.get("correlation_id"):
            return None
        found = request("GET", f"{stack.base}/api/v1/incidents/{event['correlation_id']}", key=stack.viewer).json()
        return found if {switch, *hosts} <= set(found["hosts"]) else None

    # (a linkDown of another test's device minutes before may share the incident: alike messages)
    found = wait_for(incident, timeout=30, message="the switch's incident with its hosts' alerts")
    behind = next(e for e in found["events"] if e["host"] == hosts[1])
    view = request("GET", f"{stack.base}/api/v1/events/{behind['id']}/correlations", key=stack.viewer).json()
    assert any(c["correlation_type"] == "causal" and switch in c["correlation_reason"] for c in view["correlations"]), view
