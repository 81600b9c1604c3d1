"""The status page's in-memory history: slots, the 24 h window, outages, and the page and
/api/status rendered from it (no HTTP, no browser; those are in test_web_browser_netns.py)."""

from __future__ import annotations

import json
import math
import re
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from monitor.history import History
from monitor.jobs.aqi.card import AqiCard
from monitor.jobs.bandwidth.budget import UsageStore
from monitor.jobs.bandwidth.card import BandwidthCard
from monitor.jobs.iperf.card import IperfCard
from monitor.jobs.iperf.config import Ec2Config
from monitor.jobs.iperf.metrics import IperfMetrics
from monitor.jobs.latency.card import LatencyCard
from monitor.metrics import Metrics
from monitor.outages import RecentOutages
from monitor.runner import JobRunner
from monitor.series import SLOT, WINDOW, SeriesKey, Table
from monitor.webpage.status import snapshot
from monitor.webpage.statuspage import StatusPage
from tests.support.fake_jobs import CountingJob

T0 = 1_800_000_000.0 - 1_800_000_000.0 % SLOT  # a slot boundary


def latency(up: bool, rtt: float | None, loss: float = 0.0) -> dict:
    return {"internet_up": int(up), "round_seconds": 1.0,
            "targets": {"isp": {"avg_ms": rtt, "jitter_ms": 0.5, "loss": loss}}}


def test_a_slot_holds_mean_and_max_and_a_missing_figure_is_not_a_zero() -> None:
    rtt, loss = SeriesKey("rtt_ms", "isp"), SeriesKey("loss_ratio", "isp")
    table = Table()
    table.add(T0 + 10, {rtt: 10.0, loss: 0.0})
    table.add(T0 + 20, {rtt: 20.0, loss: 0.5})
    table.add(T0 + 30, {rtt: None, loss: math.nan})
    table.add(T0 + SLOT + 5, {rtt: 7.0})  # a series missing from a row counts as no figure
    assert table.points(rtt) == [(T0 + 20, 15.0), (T0 + SLOT + 5, 7.0)]
    assert table.points(loss, how="max") == [(T0 + 20, 0.5)]
    assert table.points(SeriesKey("rtt_ms", "elsewhere")) == []


def test_the_window_drops_old_slots_and_memory_stays_a_day_of_slots() -> None:
    rtt = SeriesKey("rtt_ms")
    table = Table()
    for step in range(int(2 * WINDOW / 15)):  # two days of a 15 s job
        table.add(T0 + step * 15, {rtt: float(step)})
    assert len(table) <= WINDOW / SLOT + 2
    first_time = table.points(rtt)[0][0]
    assert first_time >= T0 + 2 * WINDOW - WINDOW - 2 * SLOT


def test_outages_come_from_the_outage_log_once_each_and_keep_24_hours() -> None:
    now = [T0]
    log = RecentOutages(clock=lambda: now[0])
    card = LatencyCard(log)
    history = History([card])
    history.observe("latency", "success", latency(True, 10.0), T0)
    log.add(T0 + 100, T0 + 130)
    for offset in (140, 155, 170):  # seen on every later run, listed once
        history.observe("latency", "success", latency(True, 10.0), T0 + offset)
    assert [(o.start, o.end, o.seconds) for o in card.outages] == [
        (T0 + 100, T0 + 130, 30.0)]
    now[0] = T0 + 2 * 3600  # gone from the log's hour, still in the page's day
    history.observe("latency", "success", latency(True, 10.0), now[0])
    assert len(card.outages) == 1
    now[0] = T0 + 130 + WINDOW + 1
    history.observe("latency", "success", latency(True, 10.0), now[0])
    assert list(card.outages) == []


def test_api_and_page_say_the_same_down_since_and_outage() -> None:
    base = time.time() - 100  # the page draws the day up to the real now
    log = RecentOutages()
    cards = [LatencyCard(log)]
    history = History(cards)
    history.observe("latency", "success", latency(True, 12.0), base)
    history.observe("latency", "success", latency(False, None, 1.0), base + 15)
    history.observe("latency", "success", latency(True, 11.0), base + 45)
    log.add(base + 14, base + 44)
    history.observe("latency", "success", latency(True, 13.0, 0.2), base + 60)

    metrics = Metrics()
    runners = [JobRunner(CountingJob("latency"), metrics, interval=15.0, timeout=5.0,
                         link_lock=threading.Lock(), shutdown=threading.Event())]
    status = snapshot(history, runners, cards, now=base + 75)
    assert status["internet"]["up"] is True
    assert status["internet"]["for_seconds"] == 31  # since the outage's end at base + 44
    assert status["outages"] == [{"start": status["outages"][0]["start"],
                                  "end": status["outages"][0]["end"], "seconds": 30.0,
                                  "cause": "unknown", "detail": ""}]
    assert status["targets"]["isp"]["rtt_ms"] == 13.0
    assert "speedtest" not in status  # the bandwidth job is off: its card is not there
    json.dumps(status)  # JSON-able as it is

    assert status["jobs"][0]["health"] == "waiting"
    page = StatusPage(history, runners, cards)
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
    card = LatencyCard()
    history = History([card])
    history.observe("latency", "failure", {}, T0)
    assert card.internet_up is None
    history.observe("latency", "success", summary, T0 + 15)
    assert card.internet_up is up


def test_ec2_state_running_time_and_egress_cost_come_from_the_iperf_job_metrics() -> None:
    metrics = Metrics()
    iperf = IperfMetrics(metrics.registry)
    cards = [IperfCard(Ec2Config("i-0123456789abcdef0"), iperf)]
    runners = [JobRunner(CountingJob("iperf"), metrics, interval=3600.0, timeout=5.0,
                         link_lock=threading.Lock(), shutdown=threading.Event())]
    page = StatusPage(History(cards), runners, cards)
    assert page.status()["ec2"]["state"] is None  # not observed yet: unknown, not "stopped"
    iperf.instance_running.labels(instance_id="i-0123456789abcdef0").set(1)
    iperf.instance_running_seconds.labels(instance_id="i-0123456789abcdef0").inc(125)
    iperf.bytes.labels(direction="download").inc(2e9)
    iperf.bytes.labels(direction="upload").inc(5e9)  # data into AWS is free
    ec2 = page.status()["ec2"]
    assert (ec2["state"], ec2["running_seconds"], ec2["egress_bytes"]) == ("running", 125,
                                                                            2_000_000_000)
    assert ec2["estimated_egress_usd"] == pytest.approx(0.18)
    html = page.html().decode()
    assert "Internet not measured" in html
    assert "≈ $0.18" in html
    assert "2 min 5 s" in html


def test_every_jobs_card_adds_its_keys_sections_charts_and_typed_figures(tmp_path) -> None:
    usage = UsageStore(tmp_path / "usage.json")
    usage.add(1_000_000)
    cards = [LatencyCard(), BandwidthCard(usage, 50_000_000), IperfCard(None,
             IperfMetrics(CollectorRegistry())), AqiCard()]
    history = History(cards)
    now = time.time()
    history.observe("latency", "success", latency(True, 12.0), now - 60)
    history.observe("bandwidth", "success", {"download_mbps": 480.0, "upload_mbps": 95.0,
                                             "backend": "http", "server": "s"}, now - 50)
    history.observe("iperf", "success", {"server": "s", "download_bits_per_second": 4.2e8,
                                         "upload_bits_per_second": 9e7}, now - 40)
    history.observe("aqi", "success", {"pm25_median": 14.0, "pm10_median": 22.0,
                                       "uk_daqi_worst": 2}, now - 30)
    page = StatusPage(history, [], cards)
    status = page.status(now)
    assert status["speedtest"]["download_mbps"] == 480.0
    assert status["budget"]["used_ratio"] == 0.02
    assert (status["iperf"]["download_mbps"], status["ec2"]) == (420.0, None)
    assert (status["air"]["uk_daqi"], status["air"]["uk_daqi_band"]) == (2, "Low")
    html = page.html().decode()
    assert re.findall(r'<section id="(\w+)"', html) == [
        "latency", "outages", "speed", "budget", "iperf", "air", "jobs"]
    assert len(re.findall(r"<figcaption>", html)) == 5
    with history.lock:
        figures = {f.name: f for card in cards for f in card.figures(history.view(card.job))}
    assert figures["isp rtt"].value == 12.0
    assert figures["isp rtt"].unit == "ms"
    assert figures["download speed"].value == 480.0
    assert figures["iperf download"].value == 420.0
    assert figures["PM2.5"].device_class == "pm25"


def test_api_and_page_name_the_backend_that_measured_those_that_failed_and_the_cross_check(
        tmp_path) -> None:
    card = BandwidthCard(UsageStore(tmp_path / "usage.json"), None)
    history = History([card])
    now = time.time()
    check = {"backend": "librespeed", "server": "ls.example", "download_mbps": 47.7,
             "upload_mbps": 19.8, "failure": None, "download_ratio": 0.5, "upload_ratio": 1.0}
    history.observe("bandwidth", "success", {
        "backend": "cloudflare", "server": "speed.cloudflare.com", "download_mbps": 95.4,
        "upload_mbps": 19.8, "cross_check": check, "failed_backends": [
            {"backend": "speedtest", "reason": "rate_limited", "error": "HTTP Error 429"}]},
        now - 120)
    history.observe("bandwidth", "success", {  # an hour later: no cross-check this time
        "backend": "cloudflare", "server": "speed.cloudflare.com", "download_mbps": 96.0,
        "upload_mbps": 20.0, "failed_backends": []}, now - 60)
    page = StatusPage(history, [], [card])
    test = json.loads(json.dumps(page.status(now)))["speedtest"]
    assert (test["backend"], test["download_mbps"], test["failed_backends"]) == (
        "cloudflare", 96.0, [])
    kept = test["cross_check"]  # the last one is kept until the next
    assert (kept["backend"], kept["reference"], kept["download_ratio"]) == (
        "librespeed", "cloudflare", 0.5)
    html = page.html().decode()
    assert "speed&nbsp;test (cloudflare)" in html
    assert "cross-check (librespeed)" in html
    assert "cross-check librespeed ÷ cloudflare: download ×0.50, upload ×1.00" in html
    assert "failed first" not in html

    history.observe("bandwidth", "success", {
        "backend": "cloudflare", "server": "speed.cloudflare.com", "download_mbps": 95.0,
        "upload_mbps": 20.0, "failed_backends": [
            {"backend": "speedtest", "reason": "rate_limited", "error": "HTTP Error 429"}]}, now)
    assert page.status(now)["speedtest"]["failed_backends"][0]["reason"] == "rate_limited"
    assert "failed first: speedtest (rate_limited)" in page.html().decode()
