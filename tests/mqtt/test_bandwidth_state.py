"""The bandwidth job's state as the publisher queues it (no broker: the client is built but never
started): the backend that measured the last figure, and the cross-check's ratios, which the
runs between two cross-checks keep."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from monitor.config import parse
from monitor.mqtt.publisher import MqttPublisher
from tests.mqtt.cards import built_jobs, cards


@pytest.fixture
def mqtt(tmp_path: Path) -> Iterator[MqttPublisher]:
    config = parse({"jobs": {"latency": {"enabled": False},
                             "bandwidth": {"backend": "speedtest", "fallback": ["cloudflare"],
                                           "cross_check": {"backend": "librespeed"}}},
                    "mqtt": {"url": "mqtt://127.0.0.1:1"}}, "x.yml")
    registry = CollectorRegistry()
    with built_jobs(config, tmp_path, registry) as jobs:
        yield MqttPublisher(config, registry, cards(jobs))


def state(mqtt: MqttPublisher) -> dict[str, Any]:
    latest = mqtt._latest["home-monitor/bandwidth/state"]
    return dict(json.loads(latest.payload))


def test_the_backend_and_the_cross_check_ratios_are_published(mqtt: MqttPublisher) -> None:
    mqtt.job_ran("bandwidth", "success", {
        "backend": "cloudflare", "server": "speed.cloudflare.com", "download_mbps": 95.5,
        "upload_mbps": 19.0, "failed_backends": [{"backend": "speedtest", "reason": "dns"}],
        "cross_check": {"backend": "librespeed", "server": "ls.example", "download_mbps": 90.0,
                        "upload_mbps": None, "failure": None, "download_ratio": 0.9424}},
        time.time())
    first = state(mqtt)
    assert first["backend"] == "cloudflare"  # the fallback measured it
    assert first["backend_attributes"] == {
        "server": "speed.cloudflare.com",
        "failed_backends": [{"backend": "speedtest", "reason": "dns"}]}
    assert first["cross_check_download_ratio"] == 0.9424
    assert first["cross_check_download_ratio_attributes"]["backend"] == "librespeed"
    assert first["cross_check_download_ratio_attributes"]["reference"] == "cloudflare"
    assert first["cross_check_upload_ratio"] is None  # no upload figure in the check

    mqtt.job_ran("bandwidth", "success", {"backend": "speedtest", "server": "s1",
                                          "download_mbps": 101.0, "upload_mbps": 20.0},
                 time.time())
    second = state(mqtt)
    assert second["backend"] == "speedtest"
    assert second["backend_attributes"]["failed_backends"] == []
    assert second["cross_check_download_ratio"] == 0.9424  # no check this run: kept
    assert second["cross_check_download_ratio_attributes"]["reference"] == "cloudflare"


def test_an_unknown_backend_name_is_unknown_not_an_invalid_option(mqtt: MqttPublisher) -> None:
    mqtt.job_ran("bandwidth", "success", {"backend": "carrier-pigeon"}, time.time())
    assert state(mqtt)["backend"] is None
