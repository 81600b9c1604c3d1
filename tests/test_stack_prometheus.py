"""prometheus/: promtool on the config, the rules and their unit tests; every PromQL expression
(rules and dashboard panels) sent to a real Prometheus; the multi-probe snippet from the docs.

Debian's Prometheus 2.42 runs here, the compose stack pins 3.x: prometheus.yml keeps to what
both accept (retention is a command-line flag, not the 3.x `storage:` block).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.support.procs import prom_query, prometheus
from tests.support.stack_configs import (
    REPO,
    RULE_FILES,
    alert_rules,
    dashboard_queries,
    fenced_blocks,
    load_yaml,
    rule_expressions,
)

ISSUE_ALERTS = {"HomeMonitorDown", "InternetDown", "HighPacketLoss", "HighLatency",
                "SlowInternet", "JobFailing", "EC2InstanceLeftRunning", "AirQualityHigh",
                "AirQualityVeryHigh", "AirSensorStale", "InternetOutageReport", "Watchdog",
                "DiskAlmostFull", "DnsDown"}  # DnsDown: issue 24
ALWAYS_FIRING = {"Watchdog"}  # the heartbeat: it has no "not firing" to test


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_promtool_check_config_with_the_rule_files() -> None:
    result = promtool("check", "config", "prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "rules found" in result.stdout


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", *(str(path) for path in RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", *(str(path) for path in
                                         sorted((REPO / "prometheus" / "tests").glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests are not vacuous: InternetDown at 10 s instead of 12 s pages for a 10 s
    drop (read as 11 s), and the repo's test file must then fail."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    for path in RULE_FILES:
        text = path.read_text(encoding="utf-8")
        if path.name == "alerts.yml":
            assert "homemon_internet_current_outage_seconds > 12" in text
            text = text.replace("outage_seconds > 12", "outage_seconds > 10")
        (tmp_path / "rules" / path.name).write_text(text)
    for path in (REPO / "prometheus" / "tests").glob("*.yml"):
        (tmp_path / "tests" / path.name).write_text(path.read_text(encoding="utf-8"))
    result = promtool("test", "rules", "tests/alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "a 10 s drop never pages" in result.stdout + result.stderr


def test_every_alert_has_severity_and_summary_and_is_unit_tested_both_ways() -> None:
    rules = alert_rules()
    assert set(rules) == ISSUE_ALERTS
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("critical", "warning", "info", "none"), name
        assert len(rule["annotations"]["summary"]) > 20, name
    for critical in ("InternetDown", "DnsDown", "EC2InstanceLeftRunning"):
        assert rules[critical]["labels"]["severity"] == "critical"
    tested: dict[str, set[bool]] = {name: set() for name in rules}
    for path in (REPO / "prometheus" / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for check in case.get("alert_rule_test", []):
                tested[check["alertname"]].add(bool(check.get("exp_alerts")))
    for name, outcomes in tested.items():
        wanted = {True} if name in ALWAYS_FIRING else {True, False}
        assert outcomes == wanted, f"{name}: tested firing/not firing = {outcomes}"


def test_recording_rules_for_loss_and_rtt_quantiles() -> None:
    records = {name.split(": ")[1]: expr for name, expr in rule_expressions()
               if name.startswith("recording.yml")}
    assert "homemon_ping_received_total[5m]" in records["homemon:ping_loss_ratio:5m"]
    assert "homemon_ping_sent_total[1h]" in records["homemon:ping_loss_ratio:1h"]
    for quantile in ("p50", "p90", "p99"):
        assert "histogram_quantile" in records[f"homemon:ping_rtt_seconds:{quantile}_5m"]


def test_prometheus_config_scrapes_the_stack() -> None:
    config = load_yaml("prometheus/prometheus.yml")
    targets = {job["job_name"]: job["static_configs"][0]["targets"][0]
               for job in config["scrape_configs"]}
    assert targets["home-monitor"] == "monitor:10132"
    for job in ("prometheus", "alertmanager", "cadvisor", "loki"):
        assert job in targets
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "5s"  # InternetDown's delay (issue 13)
    assert "probe" in config["global"]["external_labels"]
    assert "storage" not in config, "3.x-only block: retention belongs to the flags"


def test_every_promql_expression_is_accepted_by_a_real_prometheus(tmp_path: Path) -> None:
    expressions = rule_expressions() + dashboard_queries("prometheus")
    assert len(expressions) > 60
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "rule_files": [str(path) for path in RULE_FILES],
              "scrape_configs": []}
    failures = []
    with prometheus(tmp_path, config) as url:
        for where, expr in expressions:
            assert "$" not in expr, f"{where}: unsubstituted variable in {expr}"
            try:
                prom_query(url, expr)
            except AssertionError as exc:
                failures.append(f"{where}: {exc}")
    assert not failures, "\n".join(failures)


def test_multi_probe_remote_write_snippet_passes_promtool(tmp_path: Path) -> None:
    docs = (REPO / "docs" / "stack.md").read_text(encoding="utf-8")
    snippets = fenced_blocks(docs, "checked: remote-write")
    assert len(snippets) == 1, "docs/stack.md has one marked remote_write snippet"
    config = yaml.safe_load(snippets[0])
    assert config["global"]["external_labels"]["probe"]
    assert config["remote_write"][0]["url"].startswith("http")
    (tmp_path / "rules").mkdir()
    for path in RULE_FILES:
        (tmp_path / "rules" / path.name).write_text(path.read_text(encoding="utf-8"))
    # the snippet reads its remote_write password from a file next to it, as a probe would
    for endpoint in config["remote_write"]:
        secret = endpoint.get("basic_auth", {}).get("password_file")
        if secret:
            assert not Path(secret).is_absolute()
            (tmp_path / secret).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / secret).write_text("dummy")
    path = tmp_path / "prometheus.yml"
    path.write_text(snippets[0])
    result = promtool("check", "config", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
