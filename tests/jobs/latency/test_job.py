"""Latency job: the pure parts (stats, jitter, labels, outage transitions) and record()."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import threading
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from monitor.config import parse
from monitor.jobs.latency.config import LatencyConfig, PingTarget
from monitor.jobs.latency.job import (
    Edge,
    LatencyJob,
    OutageTracker,
    TargetWindow,
    jitter,
    ping_stats,
    record_window,
)
from monitor.jobs.latency.metrics import LatencyMetrics

MS = 0.001
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets need root")


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


@needs_root
def test_a_first_window_that_cannot_fill_before_the_timeout_reports_what_it_has():
    """count 1000 at 50 ms would take 50 s; the job's timeout is 2 s: the run ends before the
    runner's timeout with the requests decided so far."""
    config = LatencyConfig(targets=[PingTarget("127.0.0.1")], count=1000,
                           packet_interval=0.05, packet_timeout=0.5, privileged=True, timeout=2)
    job = LatencyJob(config, _metrics()[1])
    try:
        started = time.monotonic()
        figures = job.run(threading.Event())
        elapsed = time.monotonic() - started
    finally:
        job.close()
    assert elapsed < config.timeout
    assert 10 <= figures["targets"]["127.0.0.1"]["sent"] < 1000
    assert figures["targets"]["127.0.0.1"]["received"] == figures["targets"]["127.0.0.1"]["sent"]


# slots one second apart: (sent at, first reply at or None) -> after each slot:
# (edge, outages, seconds counted)
def _slots(pattern: str, start: float = 100.0, rtt: float = 0.02
           ) -> list[tuple[float, float | None]]:
    """'.' answered, 'x' silent; one slot a second from `start`."""
    return [(start + i, None if c == "x" else start + i + rtt) for i, c in enumerate(pattern)]


def _edges(tracker: OutageTracker, slots: list[tuple[float, float | None]]) -> list[Edge]:
    edges = []
    for at, reply_at in slots:
        _, edge = tracker.slot(at, reply_at)
        if edge is not None:
            edges.append(edge)
    return edges


@pytest.mark.parametrize(("pattern", "threshold", "outages", "seconds"), [
    ("....x....", 3, [], 0.0),  # one lost probe: no outage
    ("...xx....", 3, [], 0.0),  # a 2 s silence with N=3: no outage
    ("...xxx...", 3, [3.02], 3.02),  # N silent slots: an outage from the first to the reply
    ("..xxxxxx..", 3, [6.02], 6.02),  # a 6 s silence: one outage of 6 s
    ("..xxxxxx..", 1, [6.02], 6.02),
    ("..x.x.x..", 1, [1.02, 1.02, 1.02], 3.06),  # N=1: every lost slot is an outage
    (".xxxx.xxxx.", 3, [4.02, 4.02], 8.04),  # short drops are counted each
    (".xxxx.x.xxxx.", 4, [4.02, 4.02], 8.04),
])
def test_outages_start_at_the_first_of_n_silent_slots_and_end_at_the_first_reply(
        pattern, threshold, outages, seconds):
    tracker = OutageTracker(threshold)
    edges = _edges(tracker, _slots(pattern))
    backs = [edge for edge in edges if not edge.down]
    assert [round(edge.seconds, 3) for edge in backs] == outages
    assert [edge.down for edge in edges] == [True, False] * len(outages)
    assert tracker.outages == len(outages)
    assert tracker.outage_seconds == pytest.approx(seconds)
    first_silent = 100.0 + pattern.index("x") if outages else None
    if outages:
        assert backs[0].start == first_silent
        assert edges[0].counted


def test_outage_time_grows_slot_by_slot_during_the_outage():
    tracker = OutageTracker(3)
    counted = []
    for at, reply_at in _slots(".xxxxxx."):
        tracker.slot(at, reply_at)
        counted.append(tracker.outage_seconds)
    # declared at the third silent slot (2 s after the first), then one second per slot
    assert counted == pytest.approx([0, 0, 0, 2, 3, 4, 5, 6.02])
    assert tracker.current_outage(200.0) == 0.0
    tracker = OutageTracker(3)
    _edges(tracker, _slots(".xxx"))
    assert tracker.down
    assert tracker.current_outage(110.0) == pytest.approx(9.0)


def test_down_at_start_is_time_down_but_not_an_up_down_transition():
    tracker = OutageTracker(2)
    edges = _edges(tracker, _slots("xxxx."))
    assert [(edge.down, edge.counted) for edge in edges] == [(True, False), (False, False)]
    assert tracker.outages == 0
    assert tracker.outage_seconds == pytest.approx(4.02)


def test_an_early_reply_ends_the_outage_and_the_silent_slots_before_it_add_nothing():
    """While down, the prober reports the first answered slot before the silent slots sent
    just before it have timed out; they come afterwards and must not stretch the outage."""
    tracker = OutageTracker(3)
    _edges(tracker, _slots(".xxxx"))  # slots at 100..104, outage from 101
    _, back = tracker.slot(106.0, 106.01)  # slot 106 answered before slot 105 timed out
    assert back is not None
    assert back.seconds == pytest.approx(5.01)
    assert tracker.outage_seconds == pytest.approx(5.01)
    assert not tracker.down


def _window(label: str, rtts: list[float], *, internet: bool = True, sent: int = 5,
            error: str | None = None) -> TargetWindow:
    return TargetWindow(label, label, None if error else label, internet, sent, rtts, error)


def _metrics() -> tuple[CollectorRegistry, LatencyMetrics]:
    registry = CollectorRegistry()
    return registry, LatencyMetrics(registry)


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_record_exports_nan_never_zero_for_a_silent_target():
    registry, metrics = _metrics()
    assert math.isnan(_value(registry, "homemon_internet_up"))  # unknown before any slot
    figures = record_window([
        _window("alive", [10 * MS, 12 * MS, 11 * MS], sent=4),
        _window("dead", [], sent=4),
        _window("nowhere", [], sent=4, error="does not resolve"),
        _window("once", [7 * MS], sent=4),
    ], metrics)

    assert _value(registry, "homemon_ping_rtt_avg_seconds", target="alive") == pytest.approx(
        11 * MS)
    assert _value(registry, "homemon_ping_rtt_min_seconds", target="alive") == pytest.approx(
        10 * MS)
    assert _value(registry, "homemon_ping_jitter_seconds", target="alive") == pytest.approx(
        1.5 * MS)
    assert _value(registry, "homemon_ping_loss_ratio", target="alive") == pytest.approx(0.25)
    for silent in ("dead", "nowhere"):
        for name in ("homemon_ping_rtt_min_seconds", "homemon_ping_rtt_avg_seconds",
                     "homemon_ping_rtt_max_seconds", "homemon_ping_jitter_seconds"):
            assert math.isnan(_value(registry, name, target=silent)), (silent, name)
        assert _value(registry, "homemon_ping_up", target=silent) == 0
        assert _value(registry, "homemon_ping_loss_ratio", target=silent) == 1.0
    assert math.isnan(_value(registry, "homemon_ping_jitter_seconds", target="once"))
    assert _value(registry, "homemon_ping_up", target="once") == 1
    assert figures["alive"] == {"avg_ms": 11.0, "jitter_ms": 1.5, "loss": 0.25,
                                "sent": 4, "received": 3}
    assert figures["nowhere"]["error"] == "does not resolve"
    assert figures["dead"]["avg_ms"] is None


def test_the_job_counts_probes_and_outages_as_they_are_decided(caplog):
    registry, metrics = _metrics()
    config = LatencyConfig(targets=[PingTarget("192.0.2.1", name="isp", internet=True),
                                    PingTarget("192.168.1.1", name="router")])
    start = time.time() - 60  # the outage log keeps the last hour
    now = [start]
    job = LatencyJob(config, metrics, clock=lambda: now[0])
    caplog.set_level("INFO", logger="monitor.jobs.latency")
    assert _value(registry, "homemon_ping_sent_total", target="isp") == 0  # exists from start
    for slot, (at, reply_at) in enumerate(_slots(".xxxxxx.", start=start)):
        job._on_probe("isp", None if reply_at is None else reply_at - at)
        job._on_probe("router", None)
        job._on_slot(slot, at, reply_at)
        now[0] = at + 0.5
        if slot == 4:  # during the outage: counters and the current outage grow
            assert _value(registry, "homemon_internet_up") == 0
            assert _value(registry, "homemon_internet_outages_total") == 1
            assert _value(registry, "homemon_internet_outage_seconds_total") == pytest.approx(3)
            assert _value(registry, "homemon_internet_current_outage_seconds") == pytest.approx(
                3.5)
    assert _value(registry, "homemon_internet_up") == 1
    assert _value(registry, "homemon_internet_current_outage_seconds") == 0
    assert _value(registry, "homemon_internet_outage_seconds_total") == pytest.approx(6.02)
    assert _value(registry, "homemon_ping_sent_total", target="isp") == 8
    assert _value(registry, "homemon_ping_received_total", target="isp") == 2
    assert _value(registry, "homemon_ping_rtt_seconds_count", target="isp") == 2
    assert _value(registry, "homemon_ping_received_total", target="router") == 0
    messages = [r.getMessage() for r in caplog.records if r.name == "monitor.jobs.latency"]
    assert messages == ["internet down", "internet back after 6 s"]
    (outage,) = metrics.recent_outages.recent()  # the outage log, with wall-clock edges
    assert outage.start == start + 1
    assert outage.seconds == pytest.approx(6.02)




@needs_root
def test_job_probes_loopback_every_slot_and_a_name_that_does_not_resolve_fails_alone():
    """Real requests to loopback next to a name that cannot resolve (refused before any DNS
    query is sent: nothing leaves the machine)."""
    config = LatencyConfig(targets=[PingTarget("127.0.0.1"), PingTarget("::1", name="lo6"),
                                    PingTarget("empty..label", name="bad"),
                                    PingTarget("127.0.0.1", name="same-address")],
                           count=3, packet_interval=0.05, packet_timeout=0.5, privileged=True)
    job = LatencyJob(config, _metrics()[1])
    try:
        job.on_start()
        figures = job.run(threading.Event())
    finally:
        job.close()
    targets = figures["targets"]
    assert figures["socket"] == "raw"
    assert targets["127.0.0.1"]["sent"] >= 3
    assert targets["127.0.0.1"]["received"] == targets["127.0.0.1"]["sent"]
    assert 0 < targets["127.0.0.1"]["avg_ms"] < 100
    assert targets["lo6"]["received"] >= 3
    assert targets["same-address"]["received"] == targets["same-address"]["sent"] >= 3
    dead = targets["bad"]
    assert dead["sent"] >= 3
    assert dead["received"] == 0
    assert dead["avg_ms"] is None
    assert dead["error"].startswith("does not resolve")


@needs_root
def test_job_stops_promptly_when_told():
    config = LatencyConfig(targets=[PingTarget("127.0.0.1")], count=1000,
                           packet_interval=0.05, packet_timeout=0.5, privileged=True,
                           timeout=600)
    _, metrics = _metrics()
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    job = LatencyJob(config, metrics)
    try:
        with pytest.raises(InterruptedError, match="stopped"):
            job.run(stop)
    finally:
        job.close()
    assert job.prober is None


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_latency_metrics():
    registry, metrics = _metrics()
    config = LatencyConfig(targets=[PingTarget("192.0.2.1", name="isp"),
                                    PingTarget("192.0.2.2", name="dead")])
    job = LatencyJob(config, metrics)
    for slot, (at, reply_at) in enumerate(_slots(".xxx.")):
        job._on_probe("isp", None if reply_at is None else 0.005)
        job._on_probe("dead", None)
        job._on_slot(slot, at, reply_at)
    record_window([_window("isp", [5 * MS, 6 * MS]), _window("dead", [])], metrics)
    checked = subprocess.run(["promtool", "check", "metrics"], input=generate_latest(registry),
                             capture_output=True)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout + checked.stderr == b""
