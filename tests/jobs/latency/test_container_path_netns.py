"""Path discovery from a container on a Docker bridge network: the first hop is the Docker
host, and the router and the ISP's first hop beyond it must still be found.

The private engine (tests/support/docker_engine.py) runs inside the `home` namespace of the
path topology (tests/support/path_netns.py), so the user-defined network's bridge lives there
and the Docker host *is* the home machine: container -> Docker host (172.29.0.1) -> router ->
ISP. No NAT (the engine runs without iptables): the router and the ISP route the container's
subnet back. The container runs the discovery code from this checkout with the venv's
packages mounted read-only (the python stand-in is Debian's Python 3.11, like the venv's).
"""

from __future__ import annotations

import json
import site
import sys

import pytest

from tests.support import docker_engine as de
from tests.support.path_netns import ISP_HOP, ROUTER, TARGETS, PathLab
from tests.support.procs import REPO

SUBNET, HOST = "172.29.0.0/24", "172.29.0.1"

DISCOVER = """
import json
from monitor.jobs.latency.path import discover, in_container, read_default_gateways
path = discover({target!r}, privileged=True)
print(json.dumps({{"container": in_container(), "gateways": read_default_gateways(),
                  "router": path.router, "isp": path.isp, "hops": path.hops}}))
"""


def test_discovery_in_a_container_skips_the_docker_host() -> None:
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the stand-in image's python is 3.11; the venv's packages must match")
    packages = next(p for p in site.getsitepackages() if p.endswith("site-packages"))
    with PathLab() as lab:
        lab.run("home", ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        for node, via in (("router", "192.168.77.10"), ("isp1", "100.64.0.2"),
                          ("isp2", "198.51.100.1")):
            lab.run(node, ["ip", "route", "add", SUBNET, "via", via])
        with de.running_engine(netns=lab.ns["home"]) as engine:
            image = de.import_python_standin(engine)
            engine.docker("network", "create", "--subnet", SUBNET, "--gateway", HOST, "labnet")
            out = engine.docker(
                "run", "--rm", "--network", "labnet",
                "-v", f"{REPO}:/repo:ro", "-v", f"{packages}:/packages:ro",
                "-e", "PYTHONPATH=/repo:/packages", "-e", "PYTHONDONTWRITEBYTECODE=1",
                "-w", "/repo", image, "python3", "-c", DISCOVER.format(target=TARGETS[0]),
                timeout=180)
        found = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\nfrom the container: {found}")
    assert found["container"] is True
    assert found["gateways"] == [HOST]
    assert found["hops"][:3] == [HOST, ROUTER, ISP_HOP]
    assert (found["router"], found["isp"]) == (ROUTER, ISP_HOP)  # not the Docker host
