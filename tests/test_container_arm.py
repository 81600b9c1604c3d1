"""The image for a Raspberry Pi: built for linux/arm64 and linux/arm/v7 and run under qemu.

qemu-user-static is registered with binfmt_misc here (tests/support/binfmt.py) and removed at
the end. The python bases are Debian bookworm for arm64 and armhf, debootstrapped like the
amd64 stand-in (its second stage runs under qemu) and cached next to it. The repo's Dockerfile,
unchanged, is built with `--platform` on the private engine (classic builder, like
tests/test_container.py's first build), and so is amd64 for the size comparison.

Each arm image then runs with the `monitor` service's compose settings (read-only, no
capability, ping_group_range) on a bridge network this test makes (10.213.27.0/24): /healthz,
check-config, unprivileged ICMP to a responder container whose kernel ignores echo requests
(so every reply is the responder's), `once aqi` against the aqi stand-in on the network's
gateway, and SIGTERM -> exit 0. The figures (build times, sizes, RSS) are printed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support import binfmt
from tests.support import docker_engine as de
from tests.support.aqi_server import AqiServer, aqi_server, record, sensor_path
from tests.support.compose_service import monitor_config, run_args
from tests.support.procs import http_get, wait_until

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="binfmt_misc, dockerd and debootstrap need root"),
    pytest.mark.skipif(not binfmt.kernel_has_binfmt_misc(),
                       reason="this kernel has no binfmt_misc: foreign binaries cannot run"),
]

ARM = ("arm64", "armhf")  # Debian's names; de.PLATFORMS maps them to Docker's
QEMU = ("aarch64", "arm")  # qemu-user-static's names for the same two
UNAME = {"arm64": "aarch64", "armhf": "armv7l", "amd64": "x86_64"}
NETWORK = "hm-arm"
SUBNET, GATEWAY, RESPONDER_IP = "10.213.27.0/24", "10.213.27.1", "10.213.27.2"
RESPONDER_DELAY_MS = 30


@dataclass
class Built:
    arch: str
    tag: str
    base: str
    base_seconds: float  # debootstrap (cold) or the cached tarball's import (warm)
    build_seconds: float


@pytest.fixture(scope="module")
def qemu() -> Iterator[list[str]]:
    for command in ("dockerd", "debootstrap", *(f"qemu-{arch}-static" for arch in QEMU)):
        assert shutil.which(command), f"{command} missing: `make system-deps` installs it"
    with binfmt.qemu_registered(QEMU) as names:
        yield names


@pytest.fixture(scope="module")
def engine(qemu: list[str], request: pytest.FixtureRequest) -> Iterator[de.DockerEngine]:
    started = time.monotonic()
    de.LOG.clear()
    with de.running_engine() as running:
        yield running
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        for line in [*de.LOG, f"all arm container tests: {time.monotonic() - started:.0f} s"]:
            sys.stderr.write(f"\n[arm container tests] {line}")
        sys.stderr.write("\n")


def _base_and_build(engine: de.DockerEngine, arch: str) -> Built:
    started = time.monotonic()
    base = de.import_python_standin(engine, arch)
    base_seconds = time.monotonic() - started
    de.log(f"{arch}: python base (debootstrap or cache, then import): {base_seconds:.0f} s")
    tag = f"home-monitor:test-{arch}"
    # The classic builder, as Debian's / Raspberry Pi OS's docker.io builds by default. (BuildKit
    # in 20.10 skips the local image store for a foreign --platform and asks Docker Hub.)
    seconds = engine.build(tag, de.REPO, buildkit=False, build_args={"PYTHON_IMAGE": base},
                           platform=de.PLATFORMS[arch], timeout=3600)
    de.log(f"{arch}: build ({de.PLATFORMS[arch]}, classic builder): {seconds:.0f} s")
    return Built(arch, tag, base, base_seconds, seconds)


@pytest.fixture(scope="module")
def builds(engine: de.DockerEngine) -> Iterator[dict[str, Future[Built]]]:
    """All three at once: the arm tests start as soon as their own image is there."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        yield {arch: pool.submit(_base_and_build, engine, arch)
               for arch in ("arm64", "armhf", "amd64")}


def built(builds: dict[str, Future[Built]], arch: str) -> Built:
    return builds[arch].result(timeout=3600)


@pytest.fixture(scope="module")
def compose_monitor(engine: de.DockerEngine) -> dict[str, Any]:
    result = engine.compose(de.REPO, "config", "--format", "json",
                            files=("docker-compose.yml",))
    service: dict[str, Any] = json.loads(result.stdout)["services"]["monitor"]
    return service


@pytest.fixture(scope="module")
def network(engine: de.DockerEngine) -> str:
    engine.docker("network", "create", "--driver", "bridge", "--subnet", SUBNET,
                  "--gateway", GATEWAY, NETWORK)
    return NETWORK


@pytest.fixture(scope="module")
def responder(engine: de.DockerEngine, builds: dict[str, Future[Built]], network: str,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """tests/support/icmp_responder.py in a container (its own network namespace) on the
    amd64 base, answering every echo request after RESPONDER_DELAY_MS; the kernel there
    answers none (icmp_echo_ignore_all)."""
    work = tmp_path_factory.mktemp("responder")
    shutil.copy(de.REPO / "tests/support/icmp_responder.py", work / "icmp_responder.py")
    engine.docker("run", "-d", "--name", "hm-arm-responder", "--network", network,
                  "--ip", RESPONDER_IP, "--dns", "127.0.0.1",
                  "--sysctl", "net.ipv4.icmp_echo_ignore_all=1", "-v", f"{work}:/work",
                  built(builds, "amd64").base, "python3", "/work/icmp_responder.py",
                  "--record", "/work/record.json",
                  "--profile", f"{RESPONDER_IP}:{RESPONDER_DELAY_MS}:0:0")
    wait_until(lambda: (work / "record.json.ready").exists(), 30, interval=0.2,
               what="the ICMP responder listening")
    yield work / "record.json"
    engine.docker("kill", "--signal", "TERM", "hm-arm-responder", check=False)


@pytest.fixture(scope="module")
def aqi_standin(network: str) -> Iterator[AqiServer]:
    """On the network's gateway (this host's end of the bridge), reachable from containers."""
    with aqi_server(GATEWAY) as server:
        server.set(sensor_path(4242), [record(4242, time.time() - 60, {"P1": 14.0, "P2": 6.5})])
        yield server


def write_config(directory: Path, text: str) -> Path:
    directory.chmod(0o755)  # the image's user (uid 10132) reads it through the bind mount
    config = directory / "home-monitor.yml"
    config.write_text(text)
    config.chmod(0o644)
    return config


def metrics(address: str) -> dict[str, float]:
    status, body = http_get(f"http://{address}:10132/metrics", 5.0)
    assert status == 200
    return {f"{sample.name}{sorted(sample.labels.items())}": sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples}


class Daemon:
    def __init__(self, engine: de.DockerEngine, arch: str, image: str) -> None:
        self.engine, self.arch, self.image = engine, arch, image
        self.name = f"hm-arm-monitor-{arch}"

    @property
    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.engine.inspect(self.name)["State"]
        return state

    @property
    def address(self) -> str:
        networks = self.engine.inspect(self.name)["NetworkSettings"]["Networks"]
        address: str = networks[NETWORK]["IPAddress"]
        return address


@pytest.fixture(scope="module", params=ARM)
def daemon(request: pytest.FixtureRequest, engine: de.DockerEngine,
           builds: dict[str, Future[Built]], network: str, responder: Path,
           compose_monitor: dict[str, Any],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """The arch's image run like compose runs the `monitor` service, pinging the responder."""
    arch: str = request.param
    image = built(builds, arch).tag
    config = write_config(tmp_path_factory.mktemp(f"config-{arch}"),
                          monitor_config(RESPONDER_IP))
    running = Daemon(engine, arch, image)
    started = time.monotonic()
    engine.docker("run", "-d", "--name", running.name, "--network", network, "--dns",
                  "127.0.0.1", *run_args(compose_monitor, config, f"hm-arm-state-{arch}"),
                  image)
    wait_until(lambda: http_get(f"http://{running.address}:10132/healthz", 3.0)[0] == 200,
               180, interval=0.5, what=f"/healthz of the {arch} container")
    de.log(f"{arch}: container start to /healthz 200 under qemu: "
           f"{time.monotonic() - started:.1f} s")
    yield running
    engine.docker("rm", "-f", running.name, check=False)


# --- the images ------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARM)
def test_the_image_is_built_for_the_arch_and_runs_its_binaries(
        engine: de.DockerEngine, builds: dict[str, Future[Built]], arch: str) -> None:
    image = built(builds, arch).tag
    _, architecture, *variant = de.PLATFORMS[arch].split("/")  # linux/arm64, linux/arm/v7
    inspected = engine.inspect(image)
    assert inspected["Architecture"] == architecture
    assert inspected.get("Variant", "") == "".join(variant)
    probe = ("import platform, shutil; "
             "print(platform.machine(), shutil.which('gcc') or shutil.which('cc') or '-')")
    out = engine.docker("run", "--rm", "--network", "none", "--entrypoint", "python", image,
                        "-c", probe, timeout=300).stdout.split()
    assert out == [UNAME[arch], "-"], f"machine, compiler left in the image: {out}"


def test_image_sizes_per_arch(engine: de.DockerEngine,
                              builds: dict[str, Future[Built]]) -> None:
    sizes = {}
    for arch in ("amd64", *ARM):
        done = built(builds, arch)
        total = int(engine.inspect(done.tag)["Size"])
        added = sum(size for _, size in de.added_layers(engine, done.tag, done.base))
        sizes[arch] = (total, added)
        de.log(f"{arch}: image {total / 1e6:.0f} MB, of which {added / 1e6:.1f} MB on top of "
               f"the Debian python base")
    # the arm builds carry what amd64 carries, give or take the arch's own code size
    for arch in ARM:
        assert 0.5 < sizes[arch][1] / sizes["amd64"][1] < 2, sizes


@pytest.mark.parametrize("arch", ARM)
def test_check_config_under_emulation(engine: de.DockerEngine,
                                      builds: dict[str, Future[Built]], arch: str) -> None:
    image = built(builds, arch).tag
    good = engine.docker("run", "--rm", "--network", "none", image, "check-config",
                         timeout=300)
    assert ": ok (jobs enabled:" in good.stdout, good.stdout
    bad = engine.docker("run", "--rm", "--network", "none", "-e", "HOMEMON_CONFIG=/nonexistent",
                        image, "check-config", check=False, timeout=300)
    assert bad.returncode == 2, (bad.stdout, bad.stderr)


# --- the daemon, with the compose file's hardening -------------------------------------------

def test_healthz_and_the_daemons_memory(engine: de.DockerEngine, daemon: Daemon) -> None:
    status, body = http_get(f"http://{daemon.address}:10132/healthz", 5.0)
    assert status == 200, body
    pid = daemon.state["Pid"]
    status_lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    rss_kb = next(int(line.split()[1]) for line in status_lines if line.startswith("VmRSS:"))
    de.log(f"{daemon.arch}: daemon RSS under qemu (qemu's own memory included): "
           f"{rss_kb / 1024:.0f} MiB")


def test_unprivileged_icmp_reaches_the_responder(daemon: Daemon) -> None:
    target = "[('target', 'test')]"

    def answered() -> dict[str, float] | None:
        sample = metrics(daemon.address)
        return sample if sample.get(f"homemon_ping_received_total{target}", 0) > 0 else None
    sample = wait_until(answered, 120, interval=1, what="replies from the ICMP responder")
    # the kernel there answers nothing: a reply slower than the responder's delay is its own
    assert sample[f"homemon_ping_rtt_seconds_sum{target}"] / sample[
        f"homemon_ping_rtt_seconds_count{target}"] >= RESPONDER_DELAY_MS / 1000
    wait_until(lambda: metrics(daemon.address).get(f"homemon_ping_up{target}") == 1,
               120, interval=1, what="homemon_ping_up == 1")


def test_once_aqi_against_the_standin(engine: de.DockerEngine, daemon: Daemon,
                                      aqi_standin: AqiServer, compose_monitor: dict[str, Any],
                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = yaml.safe_load(monitor_config(RESPONDER_IP))
    settings["jobs"]["aqi"] = {"enabled": True, "api_url": aqi_standin.url, "sensors": [4242]}
    config = write_config(tmp_path_factory.mktemp(f"aqi-{daemon.arch}"), yaml.safe_dump(settings))
    before = len(aqi_standin.paths())
    result = engine.docker("run", "--rm", "--network", NETWORK, "--dns", "127.0.0.1",
                           *run_args(compose_monitor, config, f"hm-arm-once-{daemon.arch}"),
                           daemon.image, "once", "aqi", timeout=300, check=False)
    assert result.returncode == 0, (result.stdout, result.stderr[-2000:])
    # the job's JSON log line comes first, then the indented result
    outcome = json.loads(result.stdout[result.stdout.index("{\n"):])
    assert (outcome["result"], outcome["sources_ok"], outcome["pm25_median"],
            outcome["pm10_median"]) == ("success", 1, 6.5, 14.0), outcome
    assert aqi_standin.paths()[before:] == [sensor_path(4242)]


def test_sigterm_exits_0(engine: de.DockerEngine, daemon: Daemon) -> None:
    started = time.monotonic()
    engine.docker("kill", "--signal", signal.Signals.SIGTERM.name, daemon.name)
    wait_until(lambda: not daemon.state["Running"], 60, interval=0.2,
               what=f"the {daemon.arch} daemon's exit on SIGTERM")
    de.log(f"{daemon.arch}: SIGTERM to exit under qemu: {time.monotonic() - started:.1f} s")
    assert daemon.state["ExitCode"] == 0
