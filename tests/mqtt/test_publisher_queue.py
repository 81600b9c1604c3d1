"""The publisher's queue without a broker: a job run only queues, a full queue drops its oldest
message and counts it, a failed run publishes only its health. (Nothing is connected: the
client is built but never started.)"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.config import parse
from monitor.jobs.latency.metrics import LatencyMetrics
from monitor.mqtt.publisher import MqttPublisher
from tests.mqtt.cards import built_jobs, cards


@dataclass
class Setup:
    mqtt: MqttPublisher
    latency: LatencyMetrics  # the latency job's own metric objects, which its entities read


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    """A publisher of the latency job's card (built the daemon's way), never started."""
    config = parse({"jobs": {"latency": {"targets": [{"host": "127.0.0.1", "name": "lo"}]}},
                    "mqtt": {"url": "mqtt://127.0.0.1:1", "queue_size": 10}}, "x.yml")
    registry = CollectorRegistry()
    with built_jobs(config, tmp_path, registry) as jobs:
        yield Setup(MqttPublisher(config, registry, cards(jobs)),
                    jobs["latency"].metrics)  # type: ignore[attr-defined]


def summary(rtt: float) -> dict[str, object]:
    return {"internet_up": 1, "targets": {"lo": {"avg_ms": rtt, "jitter_ms": 0.1, "loss": 0.25}}}


def test_a_full_queue_drops_the_oldest_and_counts(setup: Setup) -> None:
    mqtt = setup.mqtt
    setup.latency.internet_up.set(1)  # as the prober sets it
    for run in range(8):  # two messages a run: health and state
        mqtt.job_ran("latency", "success", summary(float(run)), time.time())
    queue = list(mqtt._queue)
    assert len(queue) == 10
    assert mqtt.own.dropped._value.get() == 6
    newest = json.loads(queue[-1].payload)
    assert newest["rtt_lo"] == 7.0
    assert newest["loss_lo"] == 25.0
    assert newest["internet"] == "ON"
    assert json.loads(queue[1].payload)["rtt_lo"] == 3.0  # runs 0-2 are gone
    assert mqtt.own.queued._value.get() == 10


def test_a_failed_run_publishes_its_health_only(setup: Setup) -> None:
    mqtt = setup.mqtt
    mqtt.job_ran("latency", "failure", {}, time.time())
    mqtt.job_ran("iperf", "success", {}, time.time())  # not enabled: nothing
    assert [(m.topic, m.payload) for m in mqtt._queue] == [
        ("home-monitor/latency/health", b"failure")]


def test_unknown_figures_are_null_and_last_outage_is_kept(setup: Setup) -> None:
    mqtt = setup.mqtt
    setup.latency.recent_outages.add(time.time() - 100, time.time() - 40)
    mqtt.job_ran("latency", "success", {"internet_up": None, "targets": {}}, time.time())
    first = json.loads(mqtt._queue[-1].payload)
    assert first["internet"] is None
    assert first["rtt_lo"] is None
    assert first["last_outage"] == 60.0
    assert first["last_outage_attributes"]["end"].endswith("+00:00")
    setup.latency.recent_outages = type(setup.latency.recent_outages)()
    mqtt.job_ran("latency", "success", summary(1.0), time.time())
    assert json.loads(mqtt._queue[-1].payload)["last_outage"] == 60.0  # no news: kept


def test_internet_down_is_published_between_runs(setup: Setup) -> None:
    mqtt = setup.mqtt
    gauge = setup.latency.internet_up
    gauge.set(1)
    mqtt.job_ran("latency", "success", summary(5.0), time.time())
    queued = len(mqtt._queue)
    mqtt.publish_changes(time.time())
    assert len(mqtt._queue) == queued  # nothing changed: nothing sent
    gauge.set(0)  # the prober decided "down" before the next run
    mqtt.publish_changes(time.time())
    assert len(mqtt._queue) == queued + 1
    state = json.loads(mqtt._queue[-1].payload)
    assert state["internet"] == "OFF"
    assert state["rtt_lo"] == 5.0  # the run's figures stay as they were
    assert mqtt._latest["home-monitor/latency/state"] is mqtt._queue[-1]
