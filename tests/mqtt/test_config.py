"""The `mqtt:` section: parsed strictly, a bad URL is exit 2 naming `mqtt.url`, no secret shown."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from monitor.config import ConfigError, parse
from monitor.mqtt.config import BrokerAddress, parse_broker_url
from tests.support.procs import REPO


@pytest.mark.parametrize(("url", "expected"), [
    ("mqtt://broker.lan:1883", BrokerAddress(False, "broker.lan", 1883)),
    ("mqtt://broker.lan", BrokerAddress(False, "broker.lan", 1883)),
    ("mqtts://broker.lan", BrokerAddress(True, "broker.lan", 8883)),
    ("mqtts://192.0.2.7:8884/", BrokerAddress(True, "192.0.2.7", 8884)),
    ("mqtt://[::1]:1883", BrokerAddress(False, "::1", 1883)),
])
def test_good_urls(url: str, expected: BrokerAddress) -> None:
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize("url", [
    "broker.lan:1883", "http://broker.lan", "mqtt://", "mqtt://host:99999", "mqtt://host:port",
    "mqtt://host:0", "mqtt://host/topic", "tcp://host:1883", "",
])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_broker_url(url)


def test_credentials_in_the_url_are_refused_and_not_repeated() -> None:
    with pytest.raises(ValueError, match="credentials") as caught:
        parse_broker_url("mqtt://ha:hunter2@broker.lan")
    assert "hunter2" not in str(caught.value)
    assert "mqtt.username" in str(caught.value)


def test_absent_section_is_off() -> None:
    assert parse({"listen": "127.0.0.1:1"}, "x.yml").mqtt is None


def test_section_defaults_and_file_reference(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt_password"
    secret.write_text("s3cret\n")
    config = parse({"mqtt": {"url": "mqtt://broker.lan", "username": "ha",
                             "password": f"${{file:{secret}}}"}}, "x.yml")
    assert config.mqtt is not None
    assert config.mqtt.password == "s3cret"
    assert (config.mqtt.topic_prefix, config.mqtt.discovery_prefix) == (
        "home-monitor", "homeassistant")
    assert config.mqtt.keepalive == 60


@pytest.mark.parametrize(("section", "key"), [
    ({}, "mqtt.url: is required"),
    ({"url": "mqtt://h", "tls": {}}, "mqtt.tls: set only with an mqtts:// url"),
    ({"url": "mqtt://h", "password": "x"}, "mqtt.username: a password needs a username"),
    ({"url": "mqtt://h", "topic_prefix": "a/+/b"}, "mqtt.topic_prefix:"),
    ({"url": "mqtt://h", "discovery_prefix": ""}, "mqtt.discovery_prefix:"),
    ({"url": "mqtts://h", "tls": {"ca_file": "/nonexistent/ca.pem"}}, "mqtt.tls.ca_file:"),
    ({"url": "mqtt://h", "keepalive": "0s"}, "mqtt.keepalive:"),
    ({"url": "mqtt://h", "qos": 2}, "mqtt.qos: unknown key"),
])
def test_section_problems_name_the_key(section: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse({"mqtt": section}, "x.yml")
    assert any(problem.startswith(f"x.yml: {key}") for problem in caught.value.problems), (
        caught.value.problems)


def test_check_config_rejects_a_malformed_url_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "home-monitor.yml"
    path.write_text(yaml.safe_dump({"mqtt": {"url": "mqtt//broker.lan:1883", "username": "ha",
                                             "password": "hunter2"}}))
    result = subprocess.run([sys.executable, "-m", "monitor", "check-config", "--config",
                             str(path)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 2
    assert f"{path}: mqtt.url: expected" in result.stderr + result.stdout
    assert "hunter2" not in result.stderr + result.stdout


def test_the_documented_set_up_is_a_valid_config(tmp_path: Path) -> None:
    doc = (REPO / "docs" / "home-assistant.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n\s*(mqtt: .*?)```", doc, re.S)
    assert block is not None
    secret = tmp_path / "mqtt_password"
    secret.write_text("s3cret\n")
    data = yaml.safe_load(block.group(1).replace("/etc/home-monitor/mqtt_password", str(secret)))
    config = parse(data, "home-assistant.md")
    assert config.mqtt is not None
    assert config.mqtt.password == "s3cret"
