"""The status page's in-memory history: slots, the 24 h window, outages, and the page and
/api/status rendered from it (no HTTP, no browser; those are in test_web_browser_netns.py)."""

from __future__ import annotations

import json
import math
import re
import threading
import time

import pytest

from monitor.config import Config, Ec2Config
from monitor.history import SLOT, WINDOW, History, Table
from monitor.metrics import Metrics
from monitor.outages import RecentOutages
from monitor.runner import JobRunner
from monitor.webpage import StatusPage
from monitor.webpage.status import snapshot
from tests.support.fake_jobs import CountingJob

T0 = 1_800_000_000.0 - 1_800_000_000.0 % SLOT  # a slot boundary


def latency(up: bool, rtt: float | None, loss: float = 0.0) -> dict:
    return {"internet_up": int(up), "round_seconds": 1.0,
            "targets": {"isp": {"avg_ms": rtt, "jitter_ms": 0.5, "loss": loss}}}


def test_a_slot_holds_mean_and_max_and_a_missing_figure_is_not_a_zero() -> None:
    table = Table()
    table.add(T0 + 10, {"rtt": 10.0, "loss": 0.0})
    table.add(T0 + 20, {"rtt": 20.0, "loss": 0.5})
    table.add(T0 + 30, {"rtt": None, "loss": math.nan})
    table.add(T0 + SLOT + 5, {"rtt": 7.0})  # a column missing from a row counts as no figure
    assert table.points("rtt") == [(T0 + 20, 15.0), (T0 + SLOT + 5, 7.0)]
    assert table.points("loss", how="max") == [(T0 + 20, 0.5)]
    assert table.points("unknown") == []


def test_the_window_drops_old_slots_and_memory_stays_a_day_of_slots() -> None:
    table = Table()
    for step in range(int(2 * WINDOW / 15)):  # two days of a 15 s job
        table.add(T0 + step * 15, {"rtt": float(step)})
    assert len(table) <= WINDOW / SLOT + 2
    first_time = table.points("rtt")[0][0]
    assert first_time >= T0 + 2 * WINDOW - WINDOW - 2 * SLOT


def test_outages_come_from_the_outage_log_once_each_and_keep_24_hours() -> None:
    now = [T0]
    log = RecentOutages(clock=lambda: now[0])
    history = History(outage_source=log)
    history.observe("latency", "success", latency(True, 10.0), T0)
    log.add(T0 + 100, T0 + 130)
    for offset in (140, 155, 170):  # seen on every later run, listed once
        history.observe("latency", "success", latency(True, 10.0), T0 + offset)
    assert [(o.start, o.end, o.seconds) for o in history.outages] == [
        (T0 + 100, T0 + 130, 30.0)]
    now[0] = T0 + 2 * 3600  # gone from the log's hour, still in the page's day
    history.observe("latency", "success", latency(True, 10.0), now[0])
    assert len(history.outages) == 1
    now[0] = T0 + 130 + WINDOW + 1
    history.observe("latency", "success", latency(True, 10.0), now[0])
    assert list(history.outages) == []


def test_api_and_page_say_the_same_down_since_and_outage() -> None:
    base = time.time() - 100  # the page draws the day up to the real now
    config = Config()
    config.jobs.bandwidth.enabled = False
    log = RecentOutages()
    history = History(outage_source=log)
    history.observe("latency", "success", latency(True, 12.0), base)
    history.observe("latency", "success", latency(False, None, 1.0), base + 15)
    history.observe("latency", "success", latency(True, 11.0), base + 45)
    log.add(base + 14, base + 44)
    history.observe("latency", "success", latency(True, 13.0, 0.2), base + 60)

    metrics = Metrics()
    runners = [JobRunner(CountingJob("latency"), metrics, interval=15.0, timeout=5.0,
                         link_lock=threading.Lock(), shutdown=threading.Event())]
    status = snapshot(history, runners, config, metrics, now=base + 75)
    assert status["internet"]["up"] is True
    assert status["internet"]["for_seconds"] == 31  # since the outage's end at base + 44
    assert status["outages"] == [{"start": status["outages"][0]["start"],
                                  "end": status["outages"][0]["end"], "seconds": 30.0}]
    assert status["targets"]["isp"]["rtt_ms"] == 13.0
    assert status["speedtest"] is None
    json.dumps(status)  # JSON-able as it is

    assert status["jobs"][0]["health"] == "waiting"
    page = StatusPage(history, runners, config, metrics)
    html = page.html().decode()
    assert re.search(r"<td[^>]*>30 s</td>", html)
    assert 'class="loss-mark"' in html
    assert re.search(r'data-points="[1-9]', html)
    assert 'rel="icon" href="data:image/svg+xml' in html
    assert '<meta http-equiv="refresh"' in html
    assert json.loads(page.api())["outages"][0]["seconds"] == 30.0


@pytest.mark.parametrize(("summary", "up"), [
    ({"internet_up": None, "targets": {}}, None),  # no internet target configured
    ({"internet_up": 1, "targets": {}}, True)])
def test_internet_state_is_unknown_until_a_verdict(summary: dict, up: bool | None) -> None:
    history = History()
    history.observe("latency", "failure", {}, T0)
    assert history.internet_up is None
    history.observe("latency", "success", summary, T0 + 15)
    assert history.internet_up is up


def test_ec2_state_running_time_and_egress_cost_come_from_the_iperf_job_metrics() -> None:
    config = Config()
    config.jobs.iperf.enabled, config.jobs.latency.enabled = True, False
    config.jobs.iperf.ec2 = Ec2Config("i-0123456789abcdef0")
    metrics = Metrics()
    runners = [JobRunner(CountingJob("iperf"), metrics, interval=3600.0, timeout=5.0,
                         link_lock=threading.Lock(), shutdown=threading.Event())]
    page = StatusPage(History(), runners, config, metrics)
    assert page.status()["ec2"]["state"] is None  # not observed yet: unknown, not "stopped"
    metrics.iperf.instance_running.labels(instance_id="i-0123456789abcdef0").set(1)
    metrics.iperf.instance_running_seconds.labels(instance_id="i-0123456789abcdef0").inc(125)
    metrics.iperf.bytes.labels(direction="download").inc(2e9)
    metrics.iperf.bytes.labels(direction="upload").inc(5e9)  # data into AWS is free
    ec2 = page.status()["ec2"]
    assert (ec2["state"], ec2["running_seconds"], ec2["egress_bytes"]) == ("running", 125,
                                                                            2_000_000_000)
    assert ec2["estimated_egress_usd"] == pytest.approx(0.18)
    html = page.html().decode()
    assert "Internet not measured" in html
    assert "≈ $0.18" in html
    assert "2 min 5 s" in html


def test_api_and_page_name_the_backend_that_measured_and_those_that_failed() -> None:
    now = time.time()
    history = History()
    history.observe("bandwidth", "success", {
        "backend": "cloudflare", "server": "speed.cloudflare.com", "download_mbps": 95.4,
        "upload_mbps": 19.8, "failed_backends": [
            {"backend": "speedtest", "reason": "rate_limited", "error": "HTTP Error 429"}]},
        now - 60)
    page = StatusPage(history, [], Config(), Metrics())
    test = page.status()["speedtest"]
    assert (test["backend"], test["download_mbps"]) == ("cloudflare", 95.4)
    assert test["failed_backends"][0]["reason"] == "rate_limited"
    assert "speed&nbsp;test (cloudflare)" in page.html().decode()
