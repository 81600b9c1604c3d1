"""The image and the compose wiring on a real Docker engine (Debian's docker.io, started here).

The image is built from the repo's Dockerfile with the classic builder and with BuildKit, on a
Debian-made stand-in for the python base image (no registry is reachable). The container runs
with the `monitor` service's own settings as `docker compose config` reads them from
docker-compose.yml, on a user-defined bridge network, with no DNS server reachable
(`--dns 127.0.0.1`) and no forwarding: nothing leaves the machine. From a fresh clone with no
secret file, compose starts the alerting chain (renderer, Alertmanager stand-in, Prometheus),
and the documented phone set-up sends a test notification to a sink container.
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
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
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support import docker_engine as de
from tests.support.compose_service import STATE, monitor_config, run_args
from tests.support.procs import http_get, wait_until

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="dockerd and debootstrap need root"),
]

NETWORK = "hm-test"
BUILDKIT_TAG = "home-monitor:buildkit"
PRUNE_KEEP = runpy.run_path(str(de.REPO / "deploy/image/prune_botocore.py"))["KEEP"]


def repo_compose(engine: de.DockerEngine, project: Path) -> dict[str, Any]:
    """The compose file as Compose itself reads it: interpolated and in canonical form."""
    result = engine.compose(project, "config", "--format", "json", files=("docker-compose.yml",))
    return json.loads(result.stdout)


def metrics(address: str) -> dict[str, float]:
    status, body = http_get(f"http://{address}:10132/metrics", 3.0)
    assert status == 200
    return {f"{sample.name}{sorted(sample.labels.items())}": sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples}


def container_ip(engine: de.DockerEngine, name: str, network: str) -> str:
    return engine.inspect(name)["NetworkSettings"]["Networks"][network]["IPAddress"]


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


# --- one engine, one base, one build for every test here; stopped when this module ends --

@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest) -> Iterator[de.DockerEngine]:
    for command in ("dockerd", "debootstrap", "prometheus"):
        assert shutil.which(command), f"{command} missing: `make system-deps` installs it"
    started = time.monotonic()
    de.LOG.clear()
    with de.running_engine() as running:
        yield running
    # The figures on the terminal, also when every test passed (`make test` shows them).
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        for line in [*de.LOG, f"all container tests: {time.monotonic() - started:.0f} s"]:
            sys.stderr.write(f"\n[container tests] {line}")
        sys.stderr.write("\n")


@pytest.fixture(scope="module")
def python_base(engine: de.DockerEngine) -> str:
    with de.timed("python stand-in base (debootstrap or cache + import)", engine.timings):
        return de.import_python_standin(engine)


@pytest.fixture(scope="module")
def compose_spec(engine: de.DockerEngine) -> dict[str, Any]:
    return repo_compose(engine, de.REPO)


@pytest.fixture(scope="module")
def image(engine: de.DockerEngine, python_base: str, compose_spec: dict[str, Any],
          buildkit_build: Future[float]) -> str:
    """The Dockerfile built with the classic builder, tagged as the compose file's image."""
    tag = compose_spec["services"]["monitor"]["image"]
    seconds = engine.build(tag, de.REPO, buildkit=False,
                           build_args={"PYTHON_IMAGE": python_base})
    engine.timings["build (classic builder)"] = seconds
    de.log(f"build (classic builder): {seconds:.1f} s")
    return tag


@pytest.fixture(scope="module")
def buildkit_build(engine: de.DockerEngine, python_base: str) -> Iterator[Future[float]]:
    """The BuildKit build runs beside the classic one: most of a build waits on the network."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(engine.build, BUILDKIT_TAG, de.REPO, buildkit=True,
                          build_args={"PYTHON_IMAGE": python_base})


@pytest.fixture(scope="module")
def network(engine: de.DockerEngine) -> dict[str, str]:
    engine.docker("network", "create", "--driver", "bridge", NETWORK)
    ipam = engine.inspect(NETWORK)["IPAM"]["Config"][0]
    return {"name": NETWORK, "gateway": ipam["Gateway"]}


class Monitor:
    """The monitor container, run like compose would run the `monitor` service."""

    def __init__(self, engine: de.DockerEngine, image: str, args: list[str]) -> None:
        self.engine, self.image, self.args = engine, image, args
        self.name = "hm-monitor"

    def start(self) -> float:
        started = time.monotonic()
        self.engine.docker("run", "-d", "--name", self.name, "--network", NETWORK,
                           *self.args, self.image)
        self.wait_serving()
        return time.monotonic() - started

    def wait_serving(self) -> None:
        wait_until(lambda: http_get(f"http://{self.address}:10132/healthz", 2.0)[0] == 200,
                   90, interval=0.3, what="the daemon's /healthz in the container")

    @property
    def address(self) -> str:
        return container_ip(self.engine, self.name, NETWORK)

    @property
    def state(self) -> dict[str, Any]:
        return self.engine.inspect(self.name)["State"]


@pytest.fixture(scope="module")
def monitor(engine: de.DockerEngine, image: str, network: dict[str, str],
            compose_spec: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Monitor:
    config = tmp_path_factory.mktemp("monitor-config") / "home-monitor.yml"
    config.write_text(monitor_config(network["gateway"]))
    config.chmod(0o644)
    config.parent.chmod(0o755)
    args = run_args(compose_spec["services"]["monitor"], config, "hm-monitor-state")
    running = Monitor(engine, image, ["--dns", "127.0.0.1", *args])
    engine.timings["container start to /healthz 200"] = running.start()
    de.log(f"container start to /healthz 200: "
           f"{engine.timings['container start to /healthz 200']:.1f} s")
    return running


# --- the image ---------------------------------------------------------------------------

def test_dockerfile_has_nothing_an_old_engine_cannot_parse() -> None:
    text = (de.REPO / "Dockerfile").read_text(encoding="utf-8")
    assert not text.startswith("# syntax="), "BuildKit would pull a frontend image"
    assert "<<" not in text, "Docker 20.10's classic builder cannot parse heredocs"


def test_the_classic_builder_builds_a_non_root_image_with_a_healthcheck(
        engine: de.DockerEngine, image: str) -> None:
    config = engine.inspect(image)["Config"]
    assert config["User"].split(":")[0] not in ("", "root", "0")
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"])
    assert config["Volumes"] == {STATE: {}}


def test_buildkit_builds_the_same_image(engine: de.DockerEngine, image: str,
                                        buildkit_build: Future[float]) -> None:
    seconds = buildkit_build.result(timeout=900)
    engine.timings["build (BuildKit, beside the classic one)"] = seconds
    de.log(f"build (BuildKit, beside the classic one): {seconds:.1f} s")
    classic, buildkit = (engine.inspect(tag)["Config"] for tag in (image, BUILDKIT_TAG))
    for key in ("User", "Entrypoint", "Cmd", "Healthcheck", "Volumes", "ExposedPorts", "Env"):
        assert classic[key] == buildkit[key], key
    engine.docker("rmi", BUILDKIT_TAG)


def test_the_image_adds_no_compiler_and_only_the_botocore_models_it_needs(
        engine: de.DockerEngine, python_base: str, image: str) -> None:
    added = de.added_layers(engine, image, python_base)
    total = sum(size for _, size in added)
    de.log(f"added on top of the base: {total / 1e6:.1f} MB (target <= 35 MB); " + "; ".join(
        f"{size / 1e6:.1f} MB {step[:70]}" for step, size in added if size))
    probe = ("import pathlib, shutil, botocore; "
             "print(shutil.which('gcc') or shutil.which('cc') or '-'); "
             "print(' '.join(sorted(p.name for p in "
             "(pathlib.Path(botocore.__file__).parent / 'data').iterdir() if p.is_dir())))")
    out = engine.docker("run", "--rm", "--network", "none", "--entrypoint", "python", image,
                        "-c", probe).stdout.splitlines()
    assert out[0] == "-", f"a compiler is left in the runtime image: {out[0]}"
    assert set(out[1].split()) == PRUNE_KEEP


# --- the container, with the compose file's hardening -------------------------------------

def test_runs_as_the_unprivileged_user_with_no_capabilities(
        engine: de.DockerEngine, monitor: Monitor) -> None:
    pid = monitor.state["Pid"]
    status = proc_status(pid)
    uids = {int(uid) for uid in status["Uid"].split()}
    assert 0 not in uids, status["Uid"]
    assert int(status["CapEff"], 16) == 0, status["CapEff"]
    assert status["NoNewPrivs"].strip() == "1"
    assert engine.inspect(monitor.name)["HostConfig"]["ReadonlyRootfs"] is True


def test_unprivileged_icmp_to_a_test_address_answers(monitor: Monitor) -> None:
    def answered() -> bool:
        sample = metrics(monitor.address)
        return sample.get("homemon_ping_received_total[('target', 'test')]", 0) > 0
    wait_until(answered, 60, interval=1, what="ping replies from the network gateway")
    # ping_up is set per `interval` window (the per-second replies come first)
    wait_until(lambda: metrics(monitor.address).get("homemon_ping_up[('target', 'test')]") == 1,
               60, interval=1, what="homemon_ping_up == 1")


def test_the_healthcheck_turns_healthy(monitor: Monitor) -> None:
    health = wait_until(lambda: monitor.state["Health"]["Status"] == "healthy" and
                        monitor.state["Health"], 150, interval=1, what="HEALTHCHECK healthy")
    assert health["Log"][-1]["ExitCode"] == 0


def test_sigterm_stops_it_quickly_and_the_state_volume_survives_a_restart(
        engine: de.DockerEngine, monitor: Monitor) -> None:
    marker = f"{STATE}/restart-marker"
    engine.docker("exec", monitor.name, "python", "-c",
                  f"open({marker!r}, 'w').write('kept')")
    started = time.monotonic()
    engine.docker("kill", "--signal", "TERM", monitor.name)
    wait_until(lambda: not monitor.state["Running"], 30, interval=0.1, what="exit on SIGTERM")
    seconds = time.monotonic() - started
    de.log(f"SIGTERM to exit: {seconds:.1f} s")
    assert seconds <= 10
    assert monitor.state["ExitCode"] == 0
    # Recreated like compose does on `up` after a change: a new container, the same volume.
    engine.docker("rm", monitor.name)
    monitor.start()
    engine.docker("exec", monitor.name, "test", "-w", STATE)
    kept = engine.docker("exec", monitor.name, "cat", marker).stdout
    assert kept == "kept"


# --- the compose file, from a fresh clone ----------------------------------------------------

@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clone = tmp_path_factory.mktemp("clone") / "home-monitor"
    subprocess.run(["git", "clone", "-q", str(de.REPO), str(clone)], check=True, timeout=120)
    return clone


def test_compose_config_passes_on_a_fresh_clone_and_every_file_it_needs_is_there(
        engine: de.DockerEngine, fresh_clone: Path) -> None:
    result = engine.compose(fresh_clone, "config", "--quiet", check=False)
    assert result.returncode == 0, result.stderr
    # `config` does not look at files; `up` refuses a secret or bind source that is missing
    # ("bind source path does not exist: …/secrets/ntfy_url"). A fresh clone must need none.
    spec = repo_compose(engine, fresh_clone)
    needed = [Path(secret["file"]) for secret in spec.get("secrets", {}).values()
              if "file" in secret]
    needed += [Path(mount["source"]) for service in spec["services"].values()
               for mount in service.get("volumes", []) if mount["type"] == "bind"]
    missing = [str(path.relative_to(fresh_clone)) for path in needed
               if path.is_relative_to(fresh_clone) and not path.exists()]
    assert not missing, f"a fresh clone lacks {missing}: `docker compose up` would fail"


# No DNS query may leave the machine: Docker's embedded DNS forwards what it cannot answer
# (loki, cadvisor, ntfy are not started here) to this resolver, where nothing listens.
# No host ports: the test talks to the containers' addresses. `phone-sink` stands in for the
# phone app's server (ntfy): it keeps every JSON body POSTed to it and returns them on GET.
PHONE_SINK = """\
import http.server, json
got = []
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        got.append(json.loads(self.rfile.read(int(self.headers['Content-Length']))))
        self.send_response(200)
        self.end_headers()
    def do_GET(self):
        body = json.dumps(got).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(('', 8000), Sink).serve_forever()
"""
COMPOSE_TEST_OVERRIDE = """\
services:
  monitor: {{dns: [127.0.0.1], ports: !reset []}}
  prometheus: {{dns: [127.0.0.1], ports: !reset []}}
  alertmanager-config: {{dns: [127.0.0.1]}}
  alertmanager: {{dns: [127.0.0.1], ports: !reset []}}
  phone-sink: {{image: {base}, dns: [127.0.0.1], command: {command}}}
"""
STACK = ("monitor", "prometheus", "alertmanager-config", "alertmanager", "phone-sink")


@pytest.fixture(scope="module")
def compose_files(fresh_clone: Path, python_base: str) -> tuple[str, str]:
    command = json.dumps(["python3", "-u", "-c", PHONE_SINK])  # JSON is YAML
    (fresh_clone / "docker-compose.test.yml").write_text(
        COMPOSE_TEST_OVERRIDE.format(base=python_base, command=command))
    return ("docker-compose.yml", "docker-compose.test.yml")


class Stack:
    """The compose project from the fresh clone, on this engine."""

    def __init__(self, engine: de.DockerEngine, clone: Path, files: tuple[str, str],
                 spec: dict[str, Any]) -> None:
        self.engine, self.clone, self.files, self.spec = engine, clone, files, spec

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.engine.compose(self.clone, *args, files=self.files, check=check)

    def up(self) -> float:
        started = time.monotonic()
        self.compose("up", "-d", "--no-build", "--pull", "never", *STACK)
        return time.monotonic() - started

    def container(self, service: str) -> str:
        return self.compose("ps", "-aq", service).stdout.strip()

    def address(self, service: str) -> str:
        return container_ip(self.engine, self.container(service), f"{self.spec['name']}_default")

    def get_json(self, service: str, port: int, path: str) -> Any:
        status, body = http_get(f"http://{self.address(service)}:{port}{path}", 3.0)
        assert status == 200, (path, status, body[:300])
        return json.loads(body)

    def wait_ready(self, service: str, port: int, timeout: float = 60) -> None:
        """Until /-/ready answers 200; fails at once, with its log, if the service exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.engine.inspect(self.container(service))["State"]
            if state["Restarting"] or not state["Running"]:
                logs = self.compose("logs", "--no-log-prefix", service).stdout
                raise AssertionError(f"{service} is not running:\n{logs[-3000:]}")
            with contextlib.suppress(OSError):
                if http_get(f"http://{self.address(service)}:{port}/-/ready", 2.0)[0] == 200:
                    return
            time.sleep(0.5)
        raise TimeoutError(f"{service}'s /-/ready did not answer 200 within {timeout} s")

    def rendered_receivers(self) -> dict[str, list[str]]:
        """Alertmanager's loaded config: receiver -> its integrations."""
        status = self.get_json("alertmanager", 9093, "/api/v2/status")
        config = yaml.safe_load(status["config"]["original"])
        return {r["name"]: sorted(k for k in r if k.endswith("_configs"))
                for r in config["receivers"]}


@pytest.fixture(scope="module")
def stack(engine: de.DockerEngine, image: str, python_base: str, fresh_clone: Path,
          compose_files: tuple[str, str]) -> Iterator[Stack]:
    """`docker compose up` of the zero-step start's alerting chain: no secret file at all."""
    spec = repo_compose(engine, fresh_clone)
    with de.timed("Prometheus and Alertmanager stand-in images", engine.timings), \
            ThreadPoolExecutor(max_workers=2) as pool:
        builds = [pool.submit(de.build_prometheus_standin, engine,
                              spec["services"]["prometheus"]["image"], python_base),
                  pool.submit(de.build_alertmanager_standin, engine,
                              spec["services"]["alertmanager"]["image"], python_base)]
        for build in builds:
            build.result()
    (fresh_clone / "config/home-monitor.yml").write_text(monitor_config("127.0.0.1"))
    assert not [p for p in (fresh_clone / "secrets").iterdir() if p.name != "README.md"]
    running = Stack(engine, fresh_clone, compose_files, spec)
    try:
        de.log(f"compose up (monitor, prometheus, alertmanager-config, alertmanager): "
               f"{running.up():.1f} s")
        yield running
    finally:
        running.compose("down", "-v", "--timeout", "10", check=False)


def test_compose_up_and_prometheus_scrapes_the_monitor_by_service_name(stack: Stack) -> None:
    started = time.monotonic()
    query = urllib.parse.urlencode({"query": 'up{job="home-monitor"}'})

    def scraped_up() -> list[dict[str, Any]]:
        result = stack.get_json("prometheus", 9090, f"/api/v1/query?{query}")["data"]["result"]
        return [r for r in result if r["value"][1] == "1"]
    up = wait_until(scraped_up, 120, interval=1, what="up{job=home-monitor} == 1")
    de.log(f"then to the first successful scrape: {time.monotonic() - started:.1f} s")
    assert up[0]["metric"]["instance"] == "monitor:10132"


def test_the_one_shot_renders_alertmanager_config_with_no_secret_file(
        engine: de.DockerEngine, image: str, stack: Stack) -> None:
    """The zero-step start's renderer ran in this image, with its compose hardening, exited 0,
    and Alertmanager (Debian's 0.25) started on what it wrote: every receiver off."""
    assert stack.spec["services"]["alertmanager-config"]["image"] == image
    state = engine.inspect(stack.container("alertmanager-config"))["State"]
    output = stack.compose("logs", "--no-log-prefix", "alertmanager-config").stdout
    de.log(f"alertmanager-config: {' | '.join(output.strip().splitlines()[-3:])}")
    assert (state["Status"], state["ExitCode"]) == ("exited", 0), output
    assert "wrote /rendered/alertmanager.yml" in output
    stack.wait_ready("alertmanager", 9093)
    receivers = stack.rendered_receivers()
    assert "phone" in receivers
    assert not any(receivers.values()), f"a receiver is on with no secret file: {receivers}"


def test_what_compose_started_runs_unprivileged_and_the_secrets_are_alertmanagers_only(
        engine: de.DockerEngine, image: str, stack: Stack) -> None:
    """Issue 25, on the engine: every container compose started here (our image as the
    monitor and the renderer; Debian stand-ins tagged as Prometheus and Alertmanager) as
    `docker inspect` and /proc see it, against the compose file's hardening; the rendered config
    is 600 and Alertmanager's user's, and another user (the monitor image's) cannot read it."""
    def names(caps: list[str] | None) -> set[str]:
        return {cap.upper().removeprefix("CAP_") for cap in caps or []}
    for service in ("monitor", "prometheus", "alertmanager-config", "alertmanager"):
        declared = stack.spec["services"][service]
        info = engine.inspect(stack.container(service))
        host = info["HostConfig"]
        assert host["Privileged"] is False, service
        assert names(host["CapDrop"]) == {"ALL"}, service
        assert names(host["CapAdd"]) == set(declared.get("cap_add", [])), service
        assert host["ReadonlyRootfs"] is True, service
        assert "no-new-privileges:true" in host["SecurityOpt"], service
        assert not [m for m in info["Mounts"] if "docker.sock" in m["Source"]], service
        if info["State"]["Running"]:
            status = proc_status(info["State"]["Pid"])
            assert 0 not in {int(uid) for uid in status["Uid"].split()}, service
            assert int(status["CapEff"], 16) == 0, service
            assert status["NoNewPrivs"].strip() == "1", service
    alertmanager = engine.inspect(stack.container("alertmanager"))
    volume = next(m["Name"] for m in alertmanager["Mounts"]
                  if m["Destination"] == "/etc/alertmanager-rendered")
    rendered = "/etc/alertmanager-rendered/alertmanager.yml"
    mode_owner = engine.docker("exec", stack.container("alertmanager"), "stat", "-c", "%a %u",
                               rendered).stdout.split()
    assert mode_owner == ["600", "65534"]
    other = engine.docker("run", "--rm", "--network", "none", "-v", f"{volume}:/rendered:ro",
                          "--entrypoint", "cat", image, "/rendered/alertmanager.yml",
                          check=False)
    assert other.returncode != 0
    assert "Permission denied" in other.stderr


def test_prometheus_sends_to_the_alertmanager_service(stack: Stack) -> None:
    def active() -> list[str]:
        data = stack.get_json("prometheus", 9090, "/api/v1/alertmanagers")["data"]
        return [am["url"] for am in data["activeAlertmanagers"]]
    urls = wait_until(active, 60, interval=1, what="an active Alertmanager in Prometheus")
    assert urls == ["http://alertmanager:9093/api/v2/alerts"]


def test_phone_set_up_is_one_file_and_up_then_the_test_notification_arrives(
        stack: Stack) -> None:
    """secrets/README.md's steps as written: the secret file, `docker compose up -d`,
    `docker compose exec monitor home-monitor test-notification`."""
    secret = stack.clone / "secrets/ntfy_url"
    secret.write_text("http://phone-sink:8000/phone?template=alertmanager\n")
    secret.chmod(0o600)
    started = time.monotonic()
    seconds = stack.up()
    de.log(f"compose up again after writing secrets/ntfy_url: {seconds:.1f} s")
    output = stack.compose("logs", "--no-log-prefix", "alertmanager-config").stdout
    assert "receiver phone: webhook" in output, output
    assert "reloaded (200)" in output, output  # the running Alertmanager reloaded
    assert stack.rendered_receivers()["phone-once"] == ["webhook_configs"]
    assert "phone-sink" not in output, "a secret's value went to the log"

    sent = stack.compose("exec", "monitor", "home-monitor", "test-notification")
    de.log(f"test-notification: {sent.stdout.strip()}")

    def arrived() -> list[dict[str, Any]]:
        bodies = stack.get_json("phone-sink", 8000, "/")
        return [b for b in bodies if b.get("commonLabels", {}).get("alertname")
                == "TestNotification" and b.get("status") == "firing"]
    notes = wait_until(arrived, 90, interval=1, what="TestNotification at the phone sink")
    de.log(f"secret file to test notification at the sink: {time.monotonic() - started:.1f} s")
    assert len(notes) == 1
    assert notes[0]["receiver"] == "phone-once"
