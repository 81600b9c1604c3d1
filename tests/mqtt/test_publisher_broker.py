"""The real daemon against a real Mosquitto broker on loopback (Debian's `mosquitto`).

What Home Assistant would see: retained discovery configs for exactly the enabled jobs (and
the leftovers of an earlier config removed), states after each run, the will "offline" when the
daemon is killed, everything again after the broker comes back — and a broker that is wrong in
any way costs a counted, logged failure and nothing else.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.mosquitto import Broker, broker, publish_retained, subscriber
from tests.support.procs import (
    daemon,
    free_port,
    http_get,
    minimal_config,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.slow

USERS = {"ha": "s3cret-mqtt-pw"}
PREFIX, DISCOVERY = "home-monitor", "homeassistant"
LATENCY_KEYS = {"internet", "current_outage", "last_outage", "rtt_lo", "jitter_lo", "loss_lo",
                "health"}


def fast_latency() -> dict[str, Any]:
    return {"enabled": True, "interval": "1s", "count": 1, "packet_interval": "200ms",
            "targets": [{"host": "127.0.0.1", "name": "lo", "internet": True}]}


def daemon_config(tmp_path: Path, port: int, mqtt: dict[str, Any]) -> Path:
    config = minimal_config(tmp_path, port, latency=fast_latency())
    config["mqtt"] = mqtt
    return write_config(tmp_path / "home-monitor.yml", config)


def password_file(tmp_path: Path, password: str) -> str:
    path = tmp_path / "mqtt_password"
    path.write_text(password + "\n")
    return f"${{file:{path}}}"


def metric(port: int, name: str, **labels: str) -> float | None:
    status, body = http_get(f"http://127.0.0.1:{port}/metrics", 2.0)
    assert status == 200
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def runs(port: int) -> float:
    return metric(port, "homemon_job_runs_total", job="latency", result="success") or 0.0


def retained(port: int, auth: tuple[str, str] | None = None,
             settle: float = 1.0) -> dict[str, bytes]:
    """What a subscriber arriving now is given: the retained message of each topic."""
    with subscriber(port, [f"{DISCOVERY}/#", f"{PREFIX}/#"], auth) as sub:
        time.sleep(settle)
        return {m.topic: m.payload for m in sub.all() if m.retain}


def config_topic(component: str, key: str, job: str = "latency") -> str:
    return f"{DISCOVERY}/{component}/home_monitor/{job}_{key}/config"


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Broker]:
    home = tmp_path / "broker"
    home.mkdir()
    with broker(home, USERS) as running:
        yield running


def test_discovery_states_and_will_with_a_password(tmp_path: Path, secured: Broker) -> None:
    auth = ("ha", USERS["ha"])
    # left by an earlier config: the bandwidth job was on, and a target since removed
    for topic in (config_topic("sensor", "download", "bandwidth"),
                  config_topic("sensor", "rtt_gone")):
        publish_retained(secured.port, topic, b'{"name": "old"}', auth)
    port = free_port()
    keepalive = 2.0
    path = daemon_config(tmp_path, port, {
        "url": secured.url, "username": "ha", "password": password_file(tmp_path, USERS["ha"]),
        "keepalive": f"{keepalive:g}s", "status_url": "http://box.lan:10132/"})
    log_path = tmp_path / "daemon.log"
    with daemon(path, port=port, log_path=log_path) as proc:
        wait_until(lambda: metric(port, "homemon_mqtt_connected") == 1, 20, what="connected")
        wait_until(lambda: runs(port) >= 2, 20, what="two latency runs")
        state_topic = f"{PREFIX}/latency/state"
        found = wait_until(lambda: (r := retained(secured.port, auth)) and state_topic in r
                           and r, 20, what="retained state")

        configs = {topic: json.loads(payload) for topic, payload in found.items()
                   if topic.startswith(DISCOVERY + "/")}
        expected = {config_topic("binary_sensor", "internet")} | {
            config_topic("sensor", key) for key in LATENCY_KEYS - {"internet"}}
        assert set(configs) == expected  # exactly the enabled job; the leftovers removed
        for config in configs.values():
            assert config["availability_topic"] == f"{PREFIX}/status"
            assert config["device"]["configuration_url"] == "http://box.lan:10132/"
            assert config["unique_id"].startswith("home_monitor_latency_")
        state = json.loads(found[state_topic])
        assert state["internet"] == "ON"
        assert state["rtt_lo"] > 0
        assert state["loss_lo"] == 0
        assert found[f"{PREFIX}/latency/health"] == b"ok"
        assert found[f"{PREFIX}/status"] == b"online"

        # frozen (as on a lost network): the socket stays open, the keepalive runs out
        with subscriber(secured.port, [f"{PREFIX}/status"], auth) as sub:
            wait_until(lambda: any(m.payload == b"online" for m in sub.all()), 5)
            frozen = time.monotonic()
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                offline = wait_until(lambda: next(
                    (m for m in sub.all() if m.payload == b"offline"), None),
                    3 * keepalive + 8, 0.05, what="the will after the keepalive")
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            # the broker allows 1.5 x keepalive; Debian's Mosquitto 2.0 looks at keepalives
            # only every few seconds (measured: 7.8 s for a 2 s keepalive), hence the margin
            assert keepalive <= offline.at - frozen <= 1.5 * keepalive + 6.0
            print(f"frozen daemon: the will came after {offline.at - frozen:.1f} s "
                  f"(keepalive {keepalive:g} s)")
            back = wait_until(lambda: next((m for m in sub.all() if m.at > offline.at
                                            and m.payload == b"online"), None), 20, 0.05,
                              what="online again after the freeze")
            assert back.at > offline.at

        with subscriber(secured.port, [f"{PREFIX}/status"], auth) as sub:
            wait_until(lambda: any(m.payload == b"online" for m in sub.all()), 5)
            killed = time.monotonic()
            os.kill(proc.pid, signal.SIGKILL)
            offline = wait_until(lambda: next((m for m in sub.all() if m.payload == b"offline"),
                                              None), 3 * keepalive, 0.05, what="the will")
        assert offline.at - killed <= 1.5 * keepalive
    log = log_path.read_text()
    assert USERS["ha"] not in log
    assert '"mqtt: connected"' in log


def test_broker_away_for_30_s(tmp_path: Path) -> None:
    home = tmp_path / "broker"
    home.mkdir()
    port = free_port()
    with broker(home) as running:
        path = daemon_config(tmp_path, port, {"url": running.url, "queue_size": 10})
        with daemon(path, port=port, log_path=tmp_path / "daemon.log"):
            wait_until(lambda: metric(port, "homemon_mqtt_connected") == 1, 20, what="connected")
            wait_until(lambda: runs(port) >= 1, 20, what="a latency run")
            running.stop()
            before = runs(port)
            slowest = 0.0
            away_until = time.monotonic() + 30
            while time.monotonic() < away_until:
                started = time.monotonic()
                assert http_get(f"http://127.0.0.1:{port}/metrics", 2.0)[0] == 200
                slowest = max(slowest, time.monotonic() - started)
                time.sleep(0.5)
            during = runs(port) - before
            assert metric(port, "homemon_mqtt_connected") == 0
            assert during >= 15, f"only {during} latency runs while the broker was away"
            assert (metric(port, "homemon_mqtt_messages_dropped_total") or 0) > 0
            assert (metric(port, "homemon_mqtt_failures_total", reason="connection_lost")
                    or 0) >= 1
            print(f"broker away 30 s: {during:.0f} latency runs, /metrics slowest "
                  f"{slowest * 1000:.1f} ms")

            running.start()  # no persistence: it has forgotten every retained message
            wait_until(lambda: metric(port, "homemon_mqtt_connected") == 1, 20,
                       what="reconnected")
            found = wait_until(lambda: (r := retained(running.port)) and
                               f"{PREFIX}/latency/state" in r and r, 20, what="republished")
            assert config_topic("binary_sensor", "internet") in found
            assert found[f"{PREFIX}/status"] == b"online"
            assert json.loads(found[f"{PREFIX}/latency/state"])["internet"] == "ON"
        # a clean stop sends no will: the daemon says "offline" itself
        assert retained(running.port, settle=0.5)[f"{PREFIX}/status"] == b"offline"


@pytest.mark.parametrize("case", ["refused", "auth", "tls"])
def test_a_wrong_broker_is_counted_and_logged_and_nothing_else(tmp_path: Path, secured: Broker,
                                                               case: str) -> None:
    mqtt: dict[str, Any] = {
        "refused": {"url": f"mqtt://127.0.0.1:{free_port()}"},
        "auth": {"url": secured.url, "username": "ha",
                 "password": password_file(tmp_path, "wrong-password-123")},
        "tls": {"url": f"mqtts://127.0.0.1:{secured.port}", "tls": {"insecure": True}},
    }[case]
    port = free_port()
    log_path = tmp_path / "daemon.log"
    with daemon(daemon_config(tmp_path, port, mqtt), port=port, log_path=log_path):
        wait_until(lambda: (metric(port, "homemon_mqtt_failures_total", reason=case) or 0) >= 1,
                   20, what=f"a {case} failure counted")
        wait_until(lambda: runs(port) >= 3, 20, what="latency runs")
        assert metric(port, "homemon_mqtt_connected") == 0
        assert http_get(f"http://127.0.0.1:{port}/healthz", 2.0)[0] == 200
    lines = [json.loads(line) for line in log_path.read_text().splitlines()
             if line.startswith("{")]
    failures = [line for line in lines if line.get("logger") == "monitor.mqtt"
                and line.get("reason") == case]
    assert failures, "no log line naming the reason"
    assert len(failures) == 1, "one line per reason, not one per retry"
    assert failures[0]["level"] == "warning"
    assert failures[0]["msg"].startswith("mqtt: ")
    assert "wrong-password-123" not in log_path.read_text()
