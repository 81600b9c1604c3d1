"""central/ checked with the real tools, without starting the central site (test_multisite.py
does that): compose schema, pinned images, promtool and vmalert on the rules, and that the
central Grafana's data source serves every dashboard of grafana/dashboards."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stack_configs import COMPOSE_SCHEMA, REPO, load_yaml

CENTRAL = REPO / "central"


def run(*cmd: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=120)


def test_central_compose_validates_against_the_compose_spec() -> None:
    if not COMPOSE_SCHEMA.is_file():
        pytest.skip(f"the Compose Specification schema is not at {COMPOSE_SCHEMA}")
    result = run(sys.executable, "-m", "check_jsonschema", "--schemafile", str(COMPOSE_SCHEMA),
                 str(CENTRAL / "docker-compose.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_central_images_are_pinned_and_each_store_has_its_profile() -> None:
    services = load_yaml("central/docker-compose.yml")["services"]
    for name, spec in services.items():
        tag = spec["image"].rsplit(":", 1)[1]
        assert re.search(r"\d", tag), f"{name}: {spec['image']}"
        assert "$" not in tag, f"{name}: {spec['image']}"
    assert services["victoriametrics"]["profiles"] == services["vmalert"]["profiles"]
    assert services["prometheus"]["profiles"] != services["victoriametrics"]["profiles"]
    assert "--web.enable-remote-write-receiver" in services["prometheus"]["command"]
    # the same versions as the probe stack where the two share an image
    probe = load_yaml("docker-compose.yml")["services"]
    for shared in ("prometheus", "alertmanager", "grafana"):
        assert services[shared]["image"] == probe[shared]["image"], shared


def test_every_mounted_file_exists() -> None:
    for name, spec in load_yaml("central/docker-compose.yml")["services"].items():
        for volume in spec.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (CENTRAL / source).exists(), f"{name}: {source} is missing"


def test_central_prometheus_config_and_rules_pass_promtool(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    shutil.copy(CENTRAL / "rules" / "probes.yml", tmp_path / "rules")
    shutil.copy(REPO / "prometheus" / "rules" / "alerts.yml", tmp_path / "rules")
    shutil.copy(CENTRAL / "prometheus.yml", tmp_path)
    result = run("promtool", "check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rules found" in result.stdout   # probes.yml
    assert "SUCCESS: 10 rules found" in result.stdout or "alerts.yml" in result.stdout


def test_probe_offline_unit_tests_pass_and_can_fail(tmp_path: Path) -> None:
    result = run("promtool", "test", "rules", "central/tests/probes_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    # a 10-minute window must break the test's timing
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    rule = (CENTRAL / "rules" / "probes.yml").read_text(encoding="utf-8")
    (tmp_path / "rules" / "probes.yml").write_text(rule.replace("[5m]", "[10m]"))
    shutil.copy(CENTRAL / "tests" / "probes_test.yml", tmp_path / "tests")
    result = run("promtool", "test", "rules", "tests/probes_test.yml", cwd=tmp_path)
    assert result.returncode != 0


@pytest.mark.skipif(not shutil.which("vmalert"), reason="vmalert: `make test` installs it")
def test_vmalert_accepts_the_central_rule_files() -> None:
    result = run("vmalert", "-dryRun", f"-rule={CENTRAL / 'rules' / 'probes.yml'}",
                 f"-rule={REPO / 'prometheus' / 'rules' / 'alerts.yml'}")
    assert result.returncode == 0, result.stdout + result.stderr


def test_central_grafana_serves_the_dashboards_with_the_probe_stacks_uids() -> None:
    sources = {s["uid"]: s for s in load_yaml(
        "central/grafana/provisioning/datasources/central.yml")["datasources"]}
    assert sources["homemon-prometheus"]["type"] == "prometheus"
    assert sources["homemon-prometheus"]["url"] == "$CENTRAL_STORE_URL"
    compose = load_yaml("central/docker-compose.yml")["services"]["grafana"]
    assert "CENTRAL_STORE_URL" in compose["environment"]
    used: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            source = node.get("datasource")
            if isinstance(source, dict) and "uid" in source and "$" not in source["uid"]:
                used.add(source["uid"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in (REPO / "grafana" / "dashboards").glob("*.json"):
        walk(json.loads(path.read_text(encoding="utf-8")))
    assert "homemon-prometheus" in used
    # Loki (logs dashboard) stays on each probe: the central site has no log store
    assert used - {"homemon-loki"} <= set(sources), used - set(sources)
