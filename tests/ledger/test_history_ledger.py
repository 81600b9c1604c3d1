"""The built-in cards through a real ledger file: what a run hands to the ledger comes back as
the same chart series after a restart (a new History over the same file), and the outage list
with its causes; a card that keeps nothing there stays in memory."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor.cards import Card
from monitor.history import History
from monitor.jobs.aqi.card import PM10, PM25, AqiCard
from monitor.jobs.bandwidth.budget import UsageStore
from monitor.jobs.bandwidth.card import BandwidthCard
from monitor.jobs.iperf.card import IperfCard
from monitor.jobs.iperf.metrics import IperfMetrics
from monitor.jobs.latency.card import JITTER, LOSS, RTT, LatencyCard
from monitor.ledger import MONITOR_OFF, Ledger, OutageRow
from monitor.series import SeriesKey
from tests.support.clock import Clock

NOW = 1_764_900_000.0  # 2025-12-05T02:00:00Z, a whole hour
DOWN, UP = SeriesKey("mbps", "download"), SeriesKey("mbps", "upload")


def cards(tmp_path: Path) -> list[Card]:
    return [LatencyCard(), BandwidthCard(UsageStore(tmp_path / "usage.json"), None),
            IperfCard(None, IperfMetrics(CollectorRegistry())), AqiCard()]


def test_runs_written_by_one_history_are_read_back_by_the_next(tmp_path: Path) -> None:
    clock = Clock(NOW - 3000)
    ledger = Ledger(tmp_path / "ledger.db", write_interval=30, clock=clock)
    ledger.open(start_thread=False)
    history = History(cards(tmp_path), ledger=ledger)
    history.observe("bandwidth", "success", {
        "backend": "http", "server": "lab", "download_mbps": 480.5, "upload_mbps": 95.25,
        "latency_ms": 12.0, "bytes_download": 6_000_000, "bytes_upload": 1_000_000},
        NOW - 2400)
    history.observe("bandwidth", "failure", {}, NOW - 1200)
    history.observe("iperf", "success", {"server": "ec2", "download_bits_per_second": 420e6,
                                         "upload_bits_per_second": 90e6,
                                         "download_bytes": 5_000, "upload_bytes": 3_000},
                    NOW - 1800)
    for at, pm25 in ((NOW - 3000, 10.0), (NOW - 2000, 20.0)):  # one hour: the mean is kept
        history.observe("aqi", "success", {"pm25_median": pm25, "pm10_median": pm25 * 2}, at)
    for second in range(120):  # two minutes of probes to one target, every 4th lost
        ledger.record_probe("isp", NOW - 600 + second, None if second % 4 == 3 else 0.010)
    ledger.record_outage(OutageRow(NOW - 900, NOW - 870, "isp",
                                   "your router answered, the ISP's first hop did not"))
    clock.now = NOW
    ledger.close()

    clock.now = NOW + 60  # a restart: a new ledger object and history over the same file
    again = Ledger(tmp_path / "ledger.db", write_interval=30, clock=clock)
    again.open(start_thread=False)
    history = History(cards(tmp_path), ledger=again)
    history.refresh(NOW + 60)
    with history.lock:
        bandwidth = history.view("bandwidth").table
        iperf = history.view("iperf").table
        aqi = history.view("aqi").table
        latency = history.view("latency").table
    assert bandwidth.points(DOWN) == [(NOW - 2400, 480.5)]  # the failed test is no point
    assert bandwidth.points(UP) == [(NOW - 2400, 95.25)]
    assert iperf.points(DOWN) == [(NOW - 1800, 420.0)]
    assert aqi.points(PM25) == [(NOW - 3600 + 1800, 15.0)]
    assert aqi.points(PM10) == [(NOW - 3600 + 1800, 30.0)]
    (at, rtt), = latency.points(SeriesKey(RTT, "isp"))
    assert at == NOW - 600 + 150  # the 5-minute slot's middle
    assert abs(rtt - 10.0) < 1e-9
    assert latency.points(SeriesKey(LOSS, "isp")) == [(at, 0.25)]
    assert latency.points(SeriesKey(JITTER, "isp")) == [(at, 0.0)]
    tests = again.speed_tests(NOW - 3600, NOW)
    # the cards name their job and say which tests measure the contracted line
    assert [(t.job, t.ok, t.bytes_used, t.against_plan) for t in tests] == [
        ("bandwidth", True, 7_000_000, True), ("iperf", True, 8_000, False),
        ("bandwidth", False, 0, True)]

    status = history.cards["latency"].status(history.view("latency"), NOW + 60)
    assert [(o["seconds"], o["cause"], o["detail"]) for o in status["outages"]] == [
        (60.0, MONITOR_OFF, ""),
        (30.0, "isp", "your router answered, the ISP's first hop did not")]
    html = history.cards["latency"].section(status, [], NOW + 60)
    assert "no data: monitor off (power cut or restart)" in html.lower()
    again.close()


def test_without_a_ledger_the_history_is_kept_in_memory(tmp_path: Path) -> None:
    history = History(cards(tmp_path))
    history.observe("bandwidth", "success", {"download_mbps": 100.0, "upload_mbps": 20.0},
                    NOW)
    history.refresh(NOW)  # nothing to read
    with history.lock:
        assert history.view("bandwidth").table.points(DOWN) == [(NOW, 100.0)]


def test_a_run_shows_at_once_and_once_only_after_the_next_commit(tmp_path: Path) -> None:
    clock = Clock(NOW)
    ledger = Ledger(tmp_path / "ledger.db", write_interval=30, clock=clock)
    ledger.open(start_thread=False)  # the first commit
    history = History(cards(tmp_path), ledger=ledger, clock=clock)
    history.refresh()
    clock.now = NOW + 5
    history.observe("bandwidth", "success", {"download_mbps": 100.0, "upload_mbps": 20.0},
                    NOW + 5)
    history.refresh()  # no commit since: the run is shown from memory
    with history.lock:
        assert history.view("bandwidth").table.points(DOWN) == [(NOW + 5, 100.0)]
    clock.now = NOW + 30
    ledger.flush()
    history.refresh()  # now read from the ledger, not added again
    with history.lock:
        table = history.view("bandwidth").table
        assert table.points(DOWN) == [(NOW + 5, 100.0)]
        assert list(table.runs) == [1.0]
    ledger.close()
