"""The small-board profile (docker-compose.small.yml) with compose on a real Docker engine.

`docker compose -f docker-compose.yml -f docker-compose.small.yml up -d`, with no service named,
from a fresh clone on the private engine (amd64: the wiring is the same on a Pi): exactly the
monitor, Prometheus and Alertmanager (and the one-shot renderer) start, with the memory limits
compose sets, Prometheus scrapes all of its targets, and the total RSS is measured. Prometheus
and Alertmanager are the stand-ins made from Debian's binaries (tests/support/docker_engine.py);
nothing leaves the machine (no host port, DNS to 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support import docker_engine as de
from tests.support.compose_service import monitor_config
from tests.support.procs import http_get, wait_until

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="dockerd and debootstrap need root"),
]

FILES = ("docker-compose.yml", "docker-compose.small.yml", "docker-compose.test.yml")
TEST_OVERRIDE = """\
services:
  monitor: {dns: [127.0.0.1], ports: !reset []}
  prometheus: {dns: [127.0.0.1], ports: !reset []}
  alertmanager-config: {dns: [127.0.0.1]}
  alertmanager: {dns: [127.0.0.1], ports: !reset []}
"""
SMALL_STACK = {"monitor", "prometheus", "alertmanager-config", "alertmanager"}
LONG_RUNNING = ("monitor", "prometheus", "alertmanager")


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest) -> Iterator[de.DockerEngine]:
    for command in ("dockerd", "debootstrap", "prometheus", "prometheus-alertmanager"):
        assert shutil.which(command), f"{command} missing: `make system-deps` installs it"
    started = time.monotonic()
    de.LOG.clear()
    with de.running_engine() as running:
        yield running
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        for line in [*de.LOG, f"all small-profile tests: {time.monotonic() - started:.0f} s"]:
            sys.stderr.write(f"\n[small profile] {line}")
        sys.stderr.write("\n")


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("clone") / "home-monitor"
    subprocess.run(["git", "clone", "-q", str(de.REPO), str(directory)], check=True, timeout=120)
    (directory / "config/home-monitor.yml").write_text(monitor_config("127.0.0.1"))
    (directory / "docker-compose.test.yml").write_text(TEST_OVERRIDE)
    return directory


def spec_of(engine: de.DockerEngine, clone: Path) -> dict[str, Any]:
    result = engine.compose(clone, "config", "--format", "json", files=FILES)
    spec: dict[str, Any] = json.loads(result.stdout)
    return spec


@pytest.fixture(scope="module")
def stack(engine: de.DockerEngine, clone: Path) -> Iterator[dict[str, Any]]:
    spec = spec_of(engine, clone)
    with de.timed("python base, image and stand-ins", engine.timings):
        base = de.import_python_standin(engine)
        with ThreadPoolExecutor(max_workers=3) as pool:
            monitor_image = spec["services"]["monitor"]["image"]
            jobs: list[Future[Any]] = [
                pool.submit(engine.build, monitor_image, de.REPO, buildkit=False,
                            build_args={"PYTHON_IMAGE": base}),
                pool.submit(de.build_prometheus_standin, engine,
                            spec["services"]["prometheus"]["image"], base),
                pool.submit(de.build_alertmanager_standin, engine,
                            spec["services"]["alertmanager"]["image"], base)]
            for job in jobs:
                job.result()
    try:
        started = time.monotonic()
        engine.compose(clone, "up", "-d", "--no-build", "--pull", "never", files=FILES)
        de.log(f"compose up (small profile): {time.monotonic() - started:.1f} s")
        yield spec
    finally:
        engine.compose(clone, "down", "-v", "--timeout", "10", files=FILES, check=False)


def container(engine: de.DockerEngine, clone: Path, service: str) -> dict[str, Any]:
    ident = engine.compose(clone, "ps", "-aq", service, files=FILES).stdout.strip()
    return engine.inspect(ident)


def address(engine: de.DockerEngine, clone: Path, spec: dict[str, Any], service: str) -> str:
    networks = container(engine, clone, service)["NetworkSettings"]["Networks"]
    found: str = networks[f"{spec['name']}_default"]["IPAddress"]
    return found


def test_only_the_small_set_starts_with_the_compose_memory_limits(
        engine: de.DockerEngine, clone: Path, stack: dict[str, Any]) -> None:
    listed = engine.compose(clone, "ps", "-a", "--format", "json", files=FILES).stdout
    # compose 2.40 prints one JSON object per line
    started = {json.loads(line)["Service"] for line in listed.splitlines() if line.strip()}
    assert started == SMALL_STACK
    for service in LONG_RUNNING:
        memory = container(engine, clone, service)["HostConfig"]["Memory"]
        assert memory == int(stack["services"][service]["mem_limit"]) > 0, service


def test_prometheus_scrapes_every_target_it_has(engine: de.DockerEngine, clone: Path,
                                                stack: dict[str, Any]) -> None:
    base = f"http://{address(engine, clone, stack, 'prometheus')}:9090"
    query = urllib.parse.urlencode({"query": "up"})

    def all_up() -> dict[str, str] | None:
        status, body = http_get(f"{base}/api/v1/query?{query}", 3.0)
        if status != 200:
            return None
        result = {r["metric"]["job"]: r["value"][1] for r in json.loads(body)["data"]["result"]}
        return result if set(result) == jobs and set(result.values()) == {"1"} else None
    # exactly these: a job for a service the profile does not start would stay up == 0
    jobs = {"home-monitor", "prometheus", "alertmanager"}
    wait_until(all_up, 120, interval=1, what=f"up == 1 for exactly {sorted(jobs)}")


def test_the_small_profiles_total_rss(engine: de.DockerEngine, clone: Path,
                                      stack: dict[str, Any]) -> None:
    """After a minute of scraping and pinging: the figure docs/stack.md quotes."""
    time.sleep(60)
    total = 0.0
    parts = []
    for service in LONG_RUNNING:
        pid = container(engine, clone, service)["State"]["Pid"]
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        rss = next(int(line.split()[1]) for line in lines if line.startswith("VmRSS:")) / 1024
        total += rss
        parts.append(f"{service} {rss:.0f} MiB")
    de.log(f"small profile RSS after ~1 min: {total:.0f} MiB ({', '.join(parts)})")
    limits = sum(int(stack["services"][s]["mem_limit"]) for s in LONG_RUNNING) / 2**20
    assert total < limits
