"""alertmanager/: the rendered config checked by amtool, its routing tree, inhibition and the
receivers with a real Alertmanager (Debian's 0.25).

The config under test is what compose runs: the template rendered by the shipped renderer
(`home-monitor alertmanager-config`) from secret files the test writes
(tests/support/stack_configs.py: write_alertmanager_copy). Inlined secrets also suit 0.25.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.procs import alertmanager, wait_until
from tests.support.stack_configs import (
    DUMMY_SECRETS,
    REPO,
    TelegramStandIn,
    WebhookSink,
    load_yaml,
    write_alertmanager_copy,
)

SHIPPED = "alertmanager/alertmanager.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["amtool", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("secrets", [None, {}], ids=["every-receiver-on", "no-secret-at-all"])
def test_amtool_check_config_on_the_rendered_config(tmp_path: Path,
                                                    secrets: dict[str, str] | None) -> None:
    path = write_alertmanager_copy(tmp_path, secrets)
    result = amtool("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 receivers" in result.stdout
    assert "2 inhibit rules" in result.stdout


def test_the_template_holds_no_secret_and_names_only_documented_files() -> None:
    shipped = load_yaml(SHIPPED)
    inline_secret_keys = {"url", "token", "user_key", "bot_token", "api_key", "password",
                          "credentials", "chat_id"}
    named: set[str] = set()

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                assert key not in inline_secret_keys, f"{path}.{key} holds a value inline"
                if key.endswith("_file"):
                    named.add(value)
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{path}[{index}]")

    walk(shipped["receivers"], "receivers")
    readme = (REPO / "secrets" / "README.md").read_text(encoding="utf-8")
    for name in named:
        assert f"`{name}`" in readme, f"secrets/README.md does not explain {name}"
    assert named == set(DUMMY_SECRETS)


# (labels, receiver) — what amtool says the routing tree does with them
ROUTES = [
    (["alertname=InternetDown", "severity=critical", "probe=home"], "home"),
    (["alertname=Watchdog", "severity=none"], "heartbeat"),
    (["alertname=InternetOutageReport", "severity=info", "start=x", "end=y"], "phone-once"),
    (["alertname=TestNotification", "severity=info"], "phone-once"),
    (["alertname=HomeMonitorDown", "severity=critical"], "phone"),
    # pings answer during a DNS outage: every app (and the ntfy server at home, which needs no
    # outside name) gets it at once
    (["alertname=DnsDown", "severity=critical", "probe=home"], "phone"),
    (["alertname=SlowInternet", "severity=warning"], "phone"),
]


@pytest.mark.parametrize(("labels", "receiver"), ROUTES, ids=[r[0][0] for r in ROUTES])
def test_amtool_routes(tmp_path: Path, labels: list[str], receiver: str) -> None:
    path = write_alertmanager_copy(tmp_path)
    result = amtool("config", "routes", "test", f"--config.file={path}", *labels)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receiver


def _route(alertname: str) -> dict[str, Any]:
    route = load_yaml(SHIPPED)["route"]
    return next(r for r in route["routes"] if alertname in r["matchers"][0])


def test_timing_of_each_route() -> None:
    route = load_yaml(SHIPPED)["route"]
    assert (route["group_wait"], route["group_interval"]) == ("1m", "5m")  # warnings batched
    critical = _route("critical")
    assert critical["group_wait"] == "5s"
    heartbeat = _route("Watchdog")
    # a send at every group_interval tick: repeat_interval below it, the tick at most 60 s
    assert _seconds(heartbeat["repeat_interval"]) < _seconds(heartbeat["group_interval"]) <= 60
    report = _route("InternetOutageReport")
    assert report["group_by"] == ["..."]  # one group per outage: its own short group_wait
    assert _seconds(report["group_wait"]) <= 10
    assert _seconds(report["group_interval"]) <= 60  # the retry after a failed first delivery
    assert _seconds(report["repeat_interval"]) > 3600  # the series lives an hour: never twice
    receivers = {r["name"]: r for r in load_yaml(SHIPPED)["receivers"]}
    for name in ("phone-once", "heartbeat"):
        for key, integrations in receivers[name].items():
            if key.endswith("_configs"):
                assert all(i["send_resolved"] is False for i in integrations), (name, key)


def _seconds(duration: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(duration[:-1]) * units[duration[-1]]


def post_alerts(base_url: str, alerts: list[dict[str, Any]]) -> None:
    now = datetime.now(UTC).isoformat()
    body = json.dumps([{"startsAt": now, **alert} for alert in alerts]).encode()
    request = urllib.request.Request(f"{base_url}/api/v2/alerts", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def alert_states(base_url: str) -> dict[tuple[str, str], dict[str, Any]]:
    with urllib.request.urlopen(f"{base_url}/api/v2/alerts", timeout=5) as response:
        alerts = json.load(response)
    return {(a["labels"]["alertname"], a["labels"].get("probe", "")): a["status"]
            for a in alerts}


@pytest.mark.slow
def test_internet_down_reaches_home_only_and_inhibits_what_it_causes(tmp_path: Path) -> None:
    with WebhookSink() as home, WebhookSink() as cloud:
        config = write_alertmanager_copy(tmp_path / "alertmanager",
                                         {"home_ntfy_url": home.url, "ntfy_url": cloud.url})
        with alertmanager(tmp_path, config.read_text()) as url:
            summary = "Internet down: none of the ping targets has answered for 40 seconds"
            post_alerts(url, [
                {"labels": {"alertname": "InternetDown", "severity": "critical",
                            "probe": "home"}, "annotations": {"summary": summary}},
                {"labels": {"alertname": "SlowInternet", "severity": "warning",
                            "probe": "home", "direction": "download"},
                 "annotations": {"summary": "slow"}},
                {"labels": {"alertname": "SlowInternet", "severity": "warning",
                            "probe": "cabin", "direction": "download"},
                 "annotations": {"summary": "slow elsewhere"}},
                {"labels": {"alertname": "HomeMonitorDown", "severity": "critical",
                            "probe": "home"}, "annotations": {"summary": "monitor down"}},
            ])
            wait_until(lambda: home.notifications("InternetDown", "firing"), 20,
                       what="InternetDown at the home ntfy webhook")
            wait_until(lambda: cloud.notifications("HomeMonitorDown", "firing"), 20,
                       what="a critical alert at the cloud ntfy webhook")
            states = alert_states(url)
            assert states[("SlowInternet", "home")]["state"] == "suppressed"
            assert states[("SlowInternet", "home")]["inhibitedBy"]
            assert states[("SlowInternet", "cabin")]["state"] == "active", \
                "another probe's alerts are not inhibited"
            _, body = home.notifications("InternetDown", "firing")[0]
            alert = body["alerts"][0]  # what ntfy's alertmanager template reads
            assert alert["labels"]["severity"] == "critical"
            assert alert["annotations"]["summary"] == summary
            assert not cloud.notifications("InternetDown", "firing"), \
                "the cloud app would only get it late, once the link is back"
            assert home.notifications("HomeMonitorDown", "firing"), "home gets criticals too"
            assert not cloud.notifications("SlowInternet", "firing"), \
                "warnings wait for their 1 min group_wait"


@pytest.mark.slow
def test_telegram_receiver_sends_the_phone_template(tmp_path: Path) -> None:
    with TelegramStandIn() as telegram:
        copy = write_alertmanager_copy(tmp_path / "alertmanager", {
            "telegram_bot_token": "123:dummy-bot-token\n", "telegram_chat_id": " 42\n"})
        config = yaml.safe_load(copy.read_text())
        phone = next(r for r in config["receivers"] if r["name"] == "phone")
        assert list(phone) == ["name", "telegram_configs"], "only what has its secrets"
        phone["telegram_configs"][0]["api_url"] = telegram.url
        copy.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
        with alertmanager(tmp_path, copy.read_text()) as url:
            post_alerts(url, [{"labels": {"alertname": "HomeMonitorDown", "severity": "critical",
                                          "probe": "home"},
                               "annotations": {"summary": "monitor down"}}])
            wait_until(lambda: telegram.requests, 20, what="a Telegram sendMessage")
    path, fields = telegram.requests[0]
    assert path.endswith("/sendMessage")
    assert "bot123:dummy-bot-token/" in path, "the token's trailing newline is stripped"
    assert fields["chat_id"] == ["42"]
    assert fields["parse_mode"] == ["HTML"]
    text = fields["text"][0]
    assert text.startswith("<b>🚨 HomeMonitorDown (home)</b>")
    assert "• monitor down" in text
