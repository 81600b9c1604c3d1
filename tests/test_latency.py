"""Latency job: the pure parts (stats, jitter, labels, outage transitions) and record()."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from monitor.config import ConfigError, LatencyConfig, PingTarget, parse
from monitor.jobs.latency import (
    LatencyJob,
    LatencyResult,
    OutageTracker,
    TargetResult,
    internet_up,
    jitter,
    measure,
    ping_stats,
    record,
)
from monitor.metrics import LatencyMetrics

MS = 0.001


@pytest.mark.parametrize(("rtts", "expected"), [
    ([], None),
    ([5 * MS], None),  # one reply says nothing about jitter: unknown, not 0
    ([5 * MS, 5 * MS], 0.0),
    ([1 * MS, 2 * MS], 1 * MS),
    ([1 * MS, 3 * MS, 2 * MS], 1.5 * MS),  # |3-1| + |2-3| over 2 differences
    ([10 * MS, 20 * MS, 10 * MS, 20 * MS], 10 * MS),
    ([30 * MS, 31 * MS, 29 * MS, 30 * MS, 30 * MS], 1 * MS),  # (1+2+1+0)/4
])
def test_jitter_is_mean_absolute_difference_of_consecutive_rtts(rtts, expected):
    result = jitter(rtts)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


@pytest.mark.parametrize(("rtts", "sent", "minimum", "avg", "maximum", "loss"), [
    ([], 5, None, None, None, 1.0),
    ([], 0, None, None, None, None),
    ([2 * MS], 1, 2 * MS, 2 * MS, 2 * MS, 0.0),
    ([1 * MS, 2 * MS, 6 * MS], 3, 1 * MS, 3 * MS, 6 * MS, 0.0),
    ([1 * MS, 2 * MS, 6 * MS], 4, 1 * MS, 3 * MS, 6 * MS, 0.25),
    ([4 * MS], 10, 4 * MS, 4 * MS, 4 * MS, 0.9),
])
def test_ping_stats(rtts, sent, minimum, avg, maximum, loss):
    stats = ping_stats(rtts, sent)
    assert (stats.min, stats.max) == (minimum, maximum)
    assert stats.avg == (None if avg is None else pytest.approx(avg))
    assert stats.loss == (None if loss is None else pytest.approx(loss))
    assert stats.received == len(rtts)
    assert stats.up == bool(rtts)


def test_ping_stats_refuses_more_replies_than_requests():
    with pytest.raises(ValueError, match="3 replies to 2 requests"):
        ping_stats([1.0, 1.0, 1.0], 2)


@pytest.mark.parametrize(("target", "label", "internet"), [
    ("1.1.1.1", "1.1.1.1", True),
    ("2606:4700:4700::1111", "2606:4700:4700::1111", True),
    ("example.com", "example.com", True),  # a name: assumed public
    ("192.168.1.1", "192.168.1.1", False),
    ("10.0.0.1", "10.0.0.1", False),
    ("fe80::1", "fe80::1", False),
    ("fd00::1", "fd00::1", False),
    ("127.0.0.1", "127.0.0.1", False),
    ({"host": "192.168.1.1", "name": "router"}, "router", False),
    ({"host": "10.77.1.1", "name": "isp", "internet": True}, "isp", True),
    ({"host": "9.9.9.9", "internet": False}, "9.9.9.9", False),
])
def test_target_label_and_internet_flag(target, label, internet):
    config = parse({"jobs": {"latency": {"targets": [target]}}}, "test.yml")
    (parsed,) = config.jobs.latency.targets
    assert parsed.label == label
    assert parsed.counts_for_internet is internet


def test_timeout_shorter_than_a_dead_round_is_a_config_error():
    # DNS 2 s + 4 x 200 ms between requests + 2 s for the last reply + 0.5 s margin
    with pytest.raises(ConfigError, match=r"jobs.latency.timeout: must be at least .* = 5.3 s"):
        parse({"jobs": {"latency": {"count": 5, "packet_interval": "200ms",
                                    "packet_timeout": "2s", "timeout": "5s"}}}, "test.yml")
    assert parse({"jobs": {"latency": {"count": 5, "packet_interval": "200ms",
                                       "packet_timeout": "2s", "timeout": "5.3s"}}},
                 "test.yml").jobs.latency.timeout == 5.3
    assert parse({}, "test.yml").jobs.latency.validate() == []  # the defaults are consistent


def _target(label: str, rtts: list[float], *, internet: bool = True, sent: int = 5,
            error: str | None = None) -> TargetResult:
    return TargetResult(label, label, None if error else label, internet, sent, rtts, error)


@pytest.mark.parametrize(("targets", "expected"), [
    ([], None),
    ([_target("router", [], internet=False)], None),  # nothing decides: unknown
    ([_target("router", [1 * MS], internet=False)], None),
    ([_target("a", []), _target("b", [])], False),
    ([_target("a", []), _target("b", [1 * MS])], True),
    ([_target("a", []), _target("router", [1 * MS], internet=False)], False),
    ([_target("a", [1 * MS]), _target("router", [], internet=False)], True),
])
def test_internet_up_counts_only_internet_targets(targets, expected):
    assert internet_up(targets) is expected


# (time the round started, verdict) -> after each step: (state, outages, seconds, edge)
OUTAGE_CASES = {
    "short outage between two rounds": (
        [(0, True), (15, False), (30, True)],
        [(None,), ("down", 1, 0.0), ("back", 1, 15.0)]),
    "long outage adds time every round": (
        [(0, True), (15, False), (30, False), (45, False), (60, True), (75, True)],
        [(None,), ("down", 1, 0.0), (None, 1, 15.0), (None, 1, 30.0), ("back", 1, 45.0),
         (None, 1, 45.0)]),
    "two outages": (
        [(0, True), (1, False), (2, True), (3, False), (4, False), (5, True)],
        [(None,), ("down", 1, 0.0), ("back", 1, 1.0), ("down", 2, 1.0), (None, 2, 2.0),
         ("back", 2, 3.0)]),
    "down at start is time down but not an up->down transition": (
        [(0, False), (10, False), (20, True)],
        [("down-at-start", 0, 0.0), (None, 0, 10.0), ("back", 0, 20.0)]),
    "unknown rounds (no internet target) change nothing": (
        [(0, True), (10, None), (20, False), (30, None), (40, True)],
        [(None,), (None, 0, 0.0), ("down", 1, 0.0), (None, 1, 0.0), ("back", 1, 20.0)]),
}


@pytest.mark.parametrize("case", OUTAGE_CASES.values(), ids=OUTAGE_CASES.keys())
def test_outage_transitions(case):
    rounds, expected = case
    tracker = OutageTracker()
    for (at, up), want in zip(rounds, expected, strict=True):
        _, edge = tracker.observe(up, at)
        kind = None
        if edge is not None:
            kind = ("down" if edge.counted else "down-at-start") if edge.down else "back"
        assert kind == want[0], (at, up)
        if len(want) > 1:
            assert tracker.outages == want[1]
            assert tracker.outage_seconds == pytest.approx(want[2])


def test_back_edge_reports_outage_length():
    tracker = OutageTracker()
    tracker.observe(True, 100.0)
    tracker.observe(False, 115.0)
    tracker.observe(False, 130.0)
    _, edge = tracker.observe(True, 162.0)
    assert edge is not None
    assert not edge.down
    assert edge.outage_seconds == pytest.approx(47.0)


def _metrics() -> tuple[CollectorRegistry, LatencyMetrics]:
    registry = CollectorRegistry()
    return registry, LatencyMetrics(registry)


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_record_exports_nan_never_zero_for_a_silent_target():
    registry, metrics = _metrics()
    tracker = OutageTracker()
    assert math.isnan(_value(registry, "homemon_internet_up"))  # unknown before any round
    result = LatencyResult([
        _target("alive", [10 * MS, 12 * MS, 11 * MS], sent=4),
        _target("dead", [], sent=4),
        _target("nowhere", [], sent=4, error="does not resolve"),
        _target("once", [7 * MS], sent=4),
    ], privileged=True, started=0.0, duration=1.0)
    figures = record(result, metrics, tracker)

    assert _value(registry, "homemon_ping_rtt_avg_seconds", target="alive") == pytest.approx(
        11 * MS)
    assert _value(registry, "homemon_ping_rtt_min_seconds", target="alive") == pytest.approx(
        10 * MS)
    assert _value(registry, "homemon_ping_jitter_seconds", target="alive") == pytest.approx(
        1.5 * MS)
    assert _value(registry, "homemon_ping_loss_ratio", target="alive") == pytest.approx(0.25)
    assert _value(registry, "homemon_ping_rtt_seconds_count", target="alive") == 3
    assert _value(registry, "homemon_ping_rtt_seconds_sum", target="alive") == pytest.approx(
        33 * MS)
    for silent in ("dead", "nowhere"):
        for name in ("homemon_ping_rtt_min_seconds", "homemon_ping_rtt_avg_seconds",
                     "homemon_ping_rtt_max_seconds", "homemon_ping_jitter_seconds"):
            assert math.isnan(_value(registry, name, target=silent)), (silent, name)
        assert _value(registry, "homemon_ping_up", target=silent) == 0
        assert _value(registry, "homemon_ping_loss_ratio", target=silent) == 1.0
        assert _value(registry, "homemon_ping_sent_total", target=silent) == 4
        assert _value(registry, "homemon_ping_received_total", target=silent) == 0
    assert math.isnan(_value(registry, "homemon_ping_jitter_seconds", target="once"))
    assert _value(registry, "homemon_ping_up", target="once") == 1
    assert _value(registry, "homemon_internet_up") == 1
    assert figures["targets"]["alive"] == {"avg_ms": 11.0, "jitter_ms": 1.5, "loss": 0.25,
                                           "sent": 4, "received": 3}
    assert figures["targets"]["nowhere"]["error"] == "does not resolve"
    assert figures["targets"]["dead"]["avg_ms"] is None


def test_record_counts_an_outage_and_its_seconds(caplog):
    registry, metrics = _metrics()
    tracker = OutageTracker()

    def round_at(at: float, answered: bool) -> None:
        rtts = [5 * MS] if answered else []
        record(LatencyResult([_target("isp", rtts), _target("router", [], internet=False)],
                             True, at, 0.5), metrics, tracker)

    caplog.set_level("INFO", logger="monitor.jobs.latency")
    round_at(0, True)
    assert _value(registry, "homemon_internet_outages_total") == 0
    round_at(15, False)
    assert _value(registry, "homemon_internet_up") == 0
    assert _value(registry, "homemon_internet_outages_total") == 1
    round_at(30, False)
    assert _value(registry, "homemon_internet_outage_seconds_total") == pytest.approx(15)
    round_at(62, True)
    assert _value(registry, "homemon_internet_up") == 1
    assert _value(registry, "homemon_internet_outages_total") == 1
    assert _value(registry, "homemon_internet_outage_seconds_total") == pytest.approx(47)
    messages = [r.getMessage() for r in caplog.records if r.name == "monitor.jobs.latency"]
    assert messages == ["internet down", "internet back after 47 s"]


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets need root")


@needs_root
def test_measure_loopback_and_a_name_that_does_not_resolve_fails_alone():
    """Real pings to loopback next to a name that cannot resolve (refused before any DNS
    query is sent: nothing leaves the machine)."""
    config = LatencyConfig(targets=[PingTarget("127.0.0.1"), PingTarget("::1", name="lo6"),
                                    PingTarget("empty..label", name="bad")],
                           count=3, packet_interval=0.01, packet_timeout=0.5, privileged=True)
    result = measure(config, privileged=True)
    by_label = {target.label: target for target in result.targets}
    assert len(by_label["127.0.0.1"].rtts) == 3
    assert all(0 < rtt < 0.1 for rtt in by_label["127.0.0.1"].rtts)
    assert len(by_label["lo6"].rtts) == 3
    dead = by_label["bad"]
    assert dead.rtts == []
    assert dead.sent == 3
    assert dead.address is None
    assert dead.error is not None
    assert dead.error.startswith("does not resolve")


@needs_root
def test_job_stops_promptly_when_told():
    config = LatencyConfig(targets=[PingTarget("127.0.0.1")], count=1000,
                           packet_interval=0.05, packet_timeout=0.5, privileged=True,
                           timeout=600)
    _, metrics = _metrics()
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(InterruptedError, match="stopped"):
        LatencyJob(config, metrics).run(stop)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_latency_metrics():
    registry, metrics = _metrics()
    record(LatencyResult([_target("isp", [5 * MS, 6 * MS]), _target("dead", [])], True, 0.0,
                         1.0), metrics, OutageTracker())
    checked = subprocess.run(["promtool", "check", "metrics"], input=generate_latest(registry),
                             capture_output=True)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout + checked.stderr == b""
