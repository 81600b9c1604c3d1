"""The device's configuration_url (HA's "visit" link) and the warning when it would lead to this
box's loopback: the daemon listens on 127.0.0.1 by default, so mqtt.status_url must be set."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from monitor.config import Config, parse
from monitor.mqtt.publisher import MqttPublisher, loopback_status_url, status_url
from tests.support.procs import REPO

WARNING_TEXT = "configuration_url points Home Assistant at this box's loopback"


def config(listen: str | None, status: str | None = None) -> Config:
    mqtt: dict[str, Any] = {"url": "mqtt://127.0.0.1:1"}  # nothing listens on port 1
    if status:
        mqtt["status_url"] = status
    data: dict[str, Any] = {"jobs": {"latency": {"enabled": False},
                                     "bandwidth": {"enabled": False}}, "mqtt": mqtt}
    if listen:
        data["listen"] = listen
    return parse(data, "x.yml")


@pytest.mark.parametrize(("listen", "status", "expected"), [
    (None, None, True),  # the default listen, 127.0.0.1:10132
    ("[::1]:10132", None, True),
    ("localhost:10132", None, True),
    ("127.0.0.2:8080", None, True),
    (None, "http://monitor.lan:10132/", False),
    ("0.0.0.0:10132", None, False),
    ("[::]:10132", None, False),
    ("192.168.1.5:10132", None, False),
    ("monitor.lan:10132", None, False),
])
def test_loopback_status_url(listen: str | None, status: str | None, expected: bool) -> None:
    assert loopback_status_url(config(listen, status)) is expected


def test_the_default_listen_gives_a_loopback_url_unless_status_url_is_set() -> None:
    assert status_url(config(None)) == "http://127.0.0.1:10132/"
    assert status_url(config(None, "http://monitor.lan:10132/")) == "http://monitor.lan:10132/"


def started_warnings(site: Config, caplog: pytest.LogCaptureFixture) -> list[str]:
    publisher = MqttPublisher(site, CollectorRegistry(), [])
    with caplog.at_level(logging.INFO, logger="monitor.mqtt"):
        publisher.start()
        publisher.stop()
    return [record.getMessage() for record in caplog.records
            if record.levelno == logging.WARNING and WARNING_TEXT in record.getMessage()]


def test_one_warning_at_start_when_the_url_is_loopback(caplog: pytest.LogCaptureFixture) -> None:
    warnings = started_warnings(config(None), caplog)
    assert len(warnings) == 1
    assert "mqtt.status_url" in warnings[0]


def test_no_warning_when_status_url_is_set(caplog: pytest.LogCaptureFixture) -> None:
    assert started_warnings(config(None, "http://monitor.lan:10132/"), caplog) == []


def test_the_documented_status_url_example_silences_the_warning() -> None:
    doc = (REPO / "docs" / "home-assistant.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(mqtt: \{[^\n]*status_url[^\n]*)\n```", doc)
    assert block is not None
    site = parse(yaml.safe_load(block.group(1)), "home-assistant.md")  # the default listen
    assert site.listen_address[0] == "127.0.0.1"
    assert not loopback_status_url(site)
    assert status_url(site) == "http://monitor.lan:10132/"
