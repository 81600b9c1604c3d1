"""alertmanager/: amtool check-config, routing, inhibition and the phone webhook with a real
Alertmanager.

Alertmanager 0.25 (Debian's, the one installed here) predates the `*_file` secret fields that
the shipped config uses (0.26+). These tests therefore validate and run a copy of
alertmanager.yml in which exactly those fields are mechanically swapped for inline dummy values
(tests/support/stack_configs.py: alertmanager_for_025); routing, inhibition, receivers and
templates are the repo's own.
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
    AM_025_INLINE,
    REPO,
    TelegramStandIn,
    WebhookSink,
    alertmanager_for_025,
    load_yaml,
    write_alertmanager_copy,
)

SHIPPED = "alertmanager/alertmanager.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["amtool", *args], capture_output=True, text=True, timeout=60)


def test_amtool_check_config_on_the_025_copy(tmp_path: Path) -> None:
    path = write_alertmanager_copy(tmp_path)
    result = amtool("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 receivers" in result.stdout
    assert "2 inhibit rules" in result.stdout


def test_the_swap_changes_only_the_secret_file_fields() -> None:
    shipped = load_yaml(SHIPPED)
    swapped = alertmanager_for_025(shipped)
    assert swapped["route"] == shipped["route"]
    assert swapped["inhibit_rules"] == shipped["inhibit_rules"]
    assert swapped["templates"] == shipped["templates"]
    text = yaml.safe_dump(swapped)
    for field in AM_025_INLINE:
        assert f"{field}:" not in text


def test_every_secret_is_read_from_a_file() -> None:
    shipped = load_yaml(SHIPPED)
    inline_secret_keys = {"url", "token", "user_key", "bot_token", "api_key", "password",
                          "credentials", "api_url"}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                assert key not in inline_secret_keys, f"{path}.{key} holds a secret inline"
                if key.endswith("_file"):
                    assert str(value).startswith("/run/secrets/"), f"{path}.{key}: {value}"
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{path}[{index}]")

    walk(shipped["receivers"], "receivers")
    compose_secrets = set(load_yaml("docker-compose.yml")["services"]["alertmanager"]["secrets"])
    text = (REPO / SHIPPED).read_text(encoding="utf-8")
    for secret in compose_secrets:
        assert f"/run/secrets/{secret}" in text, f"compose mounts {secret}, nothing reads it"


def test_choosing_the_receiver_is_one_documented_line() -> None:
    shipped = load_yaml(SHIPPED)
    names = {receiver["name"] for receiver in shipped["receivers"]}
    assert names == {"ntfy", "pushover", "telegram"}
    assert shipped["route"]["receiver"] in names
    assert all("receiver" not in route for route in shipped["route"].get("routes", [])), \
        "sub-routes inherit the receiver, so switching is one line"
    assert "route.receiver" in (REPO / "docs" / "stack.md").read_text(encoding="utf-8")
    ntfy = next(r for r in shipped["receivers"] if r["name"] == "ntfy")["webhook_configs"][0]
    assert ntfy["send_resolved"] is True
    assert "template=alertmanager" in (REPO / "secrets" / "README.md").read_text()


def test_critical_is_fast_and_the_rest_batched(tmp_path: Path) -> None:
    route = load_yaml(SHIPPED)["route"]
    critical = next(r for r in route["routes"] if 'severity="critical"' in r["matchers"])
    assert critical["group_wait"] == "5s"
    assert route["group_wait"] == "1m"
    assert route["group_interval"] == "5m"
    path = write_alertmanager_copy(tmp_path)
    for labels in (["alertname=InternetDown", "severity=critical"],
                   ["alertname=SlowInternet", "severity=warning"]):
        result = amtool("config", "routes", "test", f"--config.file={path}", *labels)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == route["receiver"]


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
def test_internet_down_reaches_the_phone_and_inhibits_what_it_causes(tmp_path: Path) -> None:
    with WebhookSink() as phone:
        config = write_alertmanager_copy(tmp_path / "alertmanager", phone_url=phone.url)
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
            ])
            wait_until(lambda: phone.notifications("InternetDown", "firing"), 20,
                       what="InternetDown at the phone webhook")
            states = alert_states(url)
            assert states[("SlowInternet", "home")]["state"] == "suppressed"
            assert states[("SlowInternet", "home")]["inhibitedBy"]
            assert states[("SlowInternet", "cabin")]["state"] == "active", \
                "another probe's alerts are not inhibited"
            _, body = phone.notifications("InternetDown", "firing")[0]
            # what ntfy's alertmanager template reads
            alert = body["alerts"][0]
            assert alert["labels"]["alertname"] == "InternetDown"
            assert alert["labels"]["severity"] == "critical"
            assert alert["annotations"]["summary"] == summary
            assert not phone.notifications("SlowInternet", "firing"), \
                "warnings wait for their 1 min group_wait"


@pytest.mark.slow
def test_telegram_receiver_sends_the_phone_template(tmp_path: Path) -> None:
    with TelegramStandIn() as telegram:
        config = alertmanager_for_025(load_yaml(SHIPPED))
        config["route"]["receiver"] = "telegram"  # the documented one-line choice
        receiver = next(r for r in config["receivers"] if r["name"] == "telegram")
        receiver["telegram_configs"][0]["api_url"] = telegram.url
        # procs.alertmanager() runs the config from tmp_path/alertmanager: templates go there
        copy = write_alertmanager_copy(tmp_path / "alertmanager")
        copy.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
        with alertmanager(tmp_path, copy.read_text()) as url:
            summary = "Internet down: none of the ping targets has answered for 40 seconds"
            post_alerts(url, [{"labels": {"alertname": "InternetDown", "severity": "critical",
                                          "probe": "home"},
                               "annotations": {"summary": summary}}])
            wait_until(lambda: telegram.requests, 20, what="a Telegram sendMessage")
    path, fields = telegram.requests[0]
    assert path.endswith("/sendMessage")
    assert "bot123:dummy-bot-token" in path
    assert fields["parse_mode"] == ["HTML"]
    text = fields["text"][0]
    assert text.startswith("<b>🚨 InternetDown (home)</b>")
    assert f"• {summary}" in text
