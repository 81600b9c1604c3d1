"""The monitor's ping sysctl must let the container start under rootful Docker, rootless Docker
and userns-remap alike, and still let the daemon open ping sockets.

moby sets `net.ipv4.ping_group_range=0 2147483647` itself, but only without a user namespace
(daemon/oci_linux.go: "We cannot set up ping socket support in a user namespace"): the kernel
maps both ends through the writer's user namespace (net/ipv4/sysctl_net_ipv4.c,
ipv4_ping_group_range) and answers EINVAL for an unmapped gid, and the runtime then fails the
start ("write sysctl key net.ipv4.ping_group_range: … invalid argument", docker/buildx#561).
These tests do what the runtime does, in a real user + network namespace.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.support.stack_configs import REPO, load_yaml

DOCKER_DEFAULT = "0 2147483647"  # what rootful Docker >= 20.10 writes (moby daemon/oci_linux.go)
MAPPED_IDS = 65536  # userns-remap "default" and dockerd-rootless-setuptool.sh's subuid range


def compose_range() -> str:
    return str(load_yaml("docker-compose.yml")["services"]["monitor"]["sysctls"]
               ["net.ipv4.ping_group_range"])


def image_gid() -> int:
    match = re.search(r"groupadd\b[^\n]*--gid (\d+)", (REPO / "Dockerfile").read_text())
    assert match, "Dockerfile no longer creates the group with a fixed gid"
    return int(match.group(1))


def userns_available() -> bool:
    if os.geteuid() != 0:
        return False
    probe = subprocess.run([sys.executable, "-c", "import ctypes, sys; sys.exit("
                            "ctypes.CDLL(None).unshare(0x10000000) != 0)"], timeout=30)
    return probe.returncode == 0


def test_the_range_is_the_images_group_and_mappable_in_a_default_user_namespace() -> None:
    low, high = (int(part) for part in compose_range().split())
    assert low <= image_gid() <= high, "the daemon's group could not open ping sockets"
    assert high < MAPPED_IDS, "a gid beyond a default 65536-id mapping stops the container"


@pytest.mark.skipif(not userns_available(), reason="needs root and user namespaces")
def test_in_a_user_namespace_dockers_range_is_refused_and_ours_lets_the_daemon_ping() -> None:
    ours = compose_range()
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.userns", str(image_gid()), DOCKER_DEFAULT, ours],
        capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["before"] == "EACCES", report  # a fresh netns allows no group: "1 0"
    assert report["writes"][DOCKER_DEFAULT] == "EINVAL", report  # what would stop the start
    assert report["writes"][ours] == "ok", report
    assert report["range"] == ours.split()
    assert report["after"] == "ok", report  # the daemon's group may open a ping socket
