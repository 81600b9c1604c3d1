"""The ISP report against an independent computation: a month seeded through the ledger's own
API (rows, and a real close/reopen for the monitor_off gap); the test works its figures out
another way — a per-second timeline, percentiles by counting, hours from zoneinfo."""

from __future__ import annotations

import random
import re
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.ledger import (
    MONITOR_OFF,
    LatencyMinute,
    Ledger,
    OutageRow,
    SpeedTestRow,
)
from monitor.ledger.render import latency_svg, phone_text, render_report, report_for
from monitor.ledger.report import HourLatency, Plan, Report
from tests.support.clock import Clock

LONDON = ZoneInfo("Europe/London")
KOLKATA = ZoneInfo("Asia/Kolkata")
PLAN = Plan(100.0, 20.0)
UP, DOWN, NO_DATA = 0, 1, 2


@dataclass
class Seed:
    """What the test put in, kept to compute the expected figures independently."""

    tz: ZoneInfo
    start: int
    end: int
    first_seen: int
    internet: list[tuple[int, int]] = field(default_factory=list)
    off: list[tuple[int, int]] = field(default_factory=list)
    tests: list[SpeedTestRow] = field(default_factory=list)
    minutes: list[LatencyMinute] = field(default_factory=list)


def bounds(year: int, month: int, tz: ZoneInfo) -> tuple[int, int]:
    start = datetime(year, month, 1, tzinfo=tz)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    return int(start.timestamp()), int(end.timestamp())


def seed_month(path: Path, tz: ZoneInfo, year: int, month: int, *, installed: int | None = None,
               until: int | None = None, rng_seed: int = 1) -> Seed:
    """A month of rows: hourly-ish speed tests, latency every 7th minute, internet outages
    (one crossing into the month), and one real stop/start of the ledger (monitor_off)."""
    start, end = bounds(year, month, tz)
    until = end if until is None else until
    first = start - 5 * 86400 if installed is None else installed
    rng = random.Random(rng_seed)
    seed = Seed(tz, start, end, first)
    clock = Clock(first)
    ledger = Ledger(path, clock=clock)
    ledger.open(start_thread=False)
    crossing = (start - 600, start + 900)
    if first < crossing[0]:
        ledger.record_outage(OutageRow(*crossing, "internet"))
        seed.internet.append(crossing)
    off_at = start + 9 * 86400 + 3 * 3600 + 17
    at = max(start, first)
    while at < until - 3600:
        if rng.random() < 0.8:
            test = SpeedTestRow(at + rng.randrange(3600), "bandwidth", rng.choice(["http",
                                "speedtest"]), "srv", rng.uniform(70e6, 105e6),
                                rng.uniform(14e6, 21e6), 0.01, rng.randrange(10**8, 3 * 10**8),
                                against_plan=True)
            ledger.record_speed_test(test)
            seed.tests.append(test)
        if rng.random() < 0.03:
            failed = SpeedTestRow(at + 120, "bandwidth", "http", "srv", None, None, None,
                                  5_000_000, ok=False, error="timed out", against_plan=True)
            ledger.record_speed_test(failed)
            seed.tests.append(failed)
        if rng.random() < 0.02:
            iperf = SpeedTestRow(at + 200, "iperf", "iperf3", "ec2", 5e8, 4e8, None, 10**9)
            ledger.record_speed_test(iperf)
            seed.tests.append(iperf)
        if rng.random() < 0.01:
            length = rng.randrange(20, 4000)
            outage = (at + 1800, at + 1800 + length)
            ledger.record_outage(OutageRow(*outage, "internet"))
            seed.internet.append(outage)
        for minute in range(at - at % 60, at + 3600, 7 * 60):
            for target in ("isp", "dns"):
                local_hour = datetime.fromtimestamp(minute, tz).hour
                mean = 0.010 + (0.02 if local_hour in (20, 21) else 0) + rng.random() * 0.005
                row = LatencyMinute(minute, target, 60, 60 - rng.choice([0, 0, 0, 1, 3]),
                                    mean, mean * 1.5, 0.001)
                ledger.record_latency_minute(row)
                seed.minutes.append(row)
        at += 3600
        if off_at - 3600 < at <= off_at and until > off_at + 7200:
            # the monitor is stopped and comes back 1 h 2 min 3 s later: a real monitor_off
            clock.now = off_at
            ledger.close()
            clock.now = off_at + 3723
            seed.off.append((off_at, off_at + 3723))
            ledger = Ledger(path, clock=clock)
            ledger.open(start_thread=False)
            # an internet outage that started while the monitor was off is known only after
            ledger.record_outage(OutageRow(off_at + 3000, off_at + 3900, "internet"))
            seed.internet.append((off_at + 3000, off_at + 3900))
            at = max(at, off_at + 3723)
        clock.now = max(clock.now, at)
        if at % 86400 < 3600:
            ledger.flush()
    clock.now = until
    ledger.close()
    return seed


def timeline(seed: Seed, until: int) -> bytearray:
    """One byte per second of the report's period: up, down or no data."""
    span = until - seed.start
    line = bytearray(span)

    def mark(a: int, b: int, value: int) -> None:
        a, b = max(a, seed.start) - seed.start, min(b, until) - seed.start
        if b > a:
            line[a:b] = bytes([value]) * (b - a)

    for a, b in seed.internet:
        mark(a, b, DOWN)
    for a, b in seed.off:
        mark(a, b, NO_DATA)
    mark(seed.start, seed.first_seen, NO_DATA)
    return line


def p10_by_counting(values: list[float]) -> float:
    """The smallest value with at least 10 % of the values at or below it."""
    return min(v for v in values if sum(1 for x in values if x <= v) >= 0.1 * len(values))


def check(report: Report, seed: Seed, until: int, plan: Plan | None) -> None:
    line = timeline(seed, until)
    assert report.period_seconds == until - seed.start
    assert report.without_data_seconds == pytest.approx(line.count(NO_DATA))
    assert report.internet_down_seconds == pytest.approx(line.count(DOWN))
    observed = len(line) - line.count(NO_DATA)
    if observed:
        assert report.availability_percent == pytest.approx(
            100 * (1 - line.count(DOWN) / observed))
    else:
        assert report.availability_percent is None

    internet_lengths = [min(b, until) - max(a, seed.start) for a, b in seed.internet
                        if a < until and b > seed.start]
    causes = {c.cause: c for c in report.outages_by_cause}
    if internet_lengths:
        assert causes["internet"].count == len(internet_lengths)
        assert causes["internet"].total_seconds == pytest.approx(sum(internet_lengths))
        assert causes["internet"].longest_seconds == pytest.approx(max(internet_lengths))
    if seed.off:
        assert causes[MONITOR_OFF].count == len(seed.off)
        assert causes[MONITOR_OFF].total_seconds == pytest.approx(
            sum(b - a for a, b in seed.off))

    in_period = [t for t in seed.tests if seed.start <= t.at < until]
    good = [t for t in in_period if t.job == "bandwidth" and t.ok]  # iperf: own server
    for direction, plan_mbps in (("download", plan and plan.download_mbps),
                                 ("upload", plan and plan.upload_mbps)):
        values = [(t.download_bps if direction == "download" else t.upload_bps) / 1e6
                  for t in good]  # type: ignore[operator]
        peak = [v for t, v in zip(good, values, strict=True)
                if datetime.fromtimestamp(t.at, seed.tz).hour in (20, 21)]
        summary = report.download if direction == "download" else report.upload
        for figures, expected in ((summary.all_hours, values), (summary.peak_hours, peak)):
            assert figures.tests == len(expected)
            if not expected:
                assert figures.median_mbps is None
                continue
            assert figures.median_mbps == pytest.approx(statistics.median(expected))
            assert figures.p10_mbps == pytest.approx(p10_by_counting(expected))
            if plan_mbps is None:
                assert figures.share_at_90 is None
            else:
                assert figures.share_at_90 == pytest.approx(
                    sum(1 for v in expected if v >= 0.9 * plan_mbps) / len(expected))
    assert report.failed_tests == sum(1 for t in in_period if not t.ok)
    assert sum(report.data_used_bytes.values()) == sum(t.bytes_used for t in in_period)

    days: dict[str, list[float]] = {}
    for t in good:
        days.setdefault(datetime.fromtimestamp(t.at, seed.tz).strftime("%Y-%m-%d"),
                        []).append(t.download_bps / 1e6)  # type: ignore[operator]
    assert [(d.day, d.tests) for d in report.days] == sorted(
        (day, len(v)) for day, v in days.items())
    if plan is not None and plan.download_mbps is not None:
        assert report.bnetza.days_reached == sum(
            1 for v in days.values() if max(v) >= 0.9 * plan.download_mbps)

    by_hour: dict[int, list[LatencyMinute]] = {}
    for m in seed.minutes:
        if seed.start <= m.minute < until:
            by_hour.setdefault(datetime.fromtimestamp(m.minute, seed.tz).hour, []).append(m)
    for hour in report.latency_by_hour:
        rows = by_hour.get(hour.hour, [])
        assert hour.minutes == len(rows)
        if rows:
            means = sorted(m.rtt_mean * 1000 for m in rows)  # type: ignore[operator]
            assert hour.p50_ms == pytest.approx(p10_like(means, 0.5))
            assert hour.p95_ms == pytest.approx(p10_like(means, 0.95))
            assert hour.loss == pytest.approx(
                sum(m.sent - m.received for m in rows) / sum(m.sent for m in rows))


def p10_like(values: list[float], fraction: float) -> float:
    return min(v for v in values if sum(1 for x in values if x <= v) >= fraction * len(values))


def test_a_month_with_the_clock_change_in_london(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    seed = seed_month(path, LONDON, 2026, 10)
    report, _ = report_for(Ledger(path), "2026-10", LONDON, PLAN, now=seed.end + 86400)
    assert report.period_seconds == 31 * 86400 + 3600  # 25 October has 25 hours
    assert report.start == "2026-10-01T00:00:00+01:00"
    assert report.end == "2026-11-01T00:00:00+00:00"
    assert len(seed.off) == 1
    assert len(seed.internet) >= 3
    check(report, seed, seed.end, PLAN)
    # the 25-hour day: its tests are all on one local date
    assert any(d.day == "2026-10-25" for d in report.days)


def test_a_partial_month_installed_on_the_10th_in_a_half_hour_zone(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    start, _ = bounds(2026, 3, KOLKATA)
    installed = start + 9 * 86400 + 5 * 3600
    now = start + 20 * 86400 + 1234
    seed = seed_month(path, KOLKATA, 2026, 3, installed=installed, until=now)
    report, _ = report_for(Ledger(path), "2026-03", KOLKATA, PLAN, now=now)
    assert report.start.endswith("+05:30")
    assert report.period_seconds == now - start
    assert report.without_data_seconds >= installed - start
    check(report, seed, now, PLAN)


def test_a_month_without_a_plan(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    seed = seed_month(path, ZoneInfo("UTC"), 2026, 2, rng_seed=5)
    report, _ = report_for(Ledger(path), "2026-02", ZoneInfo("UTC"), None, now=seed.end)
    check(report, seed, seed.end, None)
    assert report.bnetza.shortfall_indicated is None
    assert report.bnetza.days_reached is None
    assert "of tests" not in phone_text(report)


def test_an_empty_month_has_no_figures_but_a_report(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    seed_month(path, LONDON, 2026, 10)
    report, _ = report_for(Ledger(path), "2026-06", LONDON, PLAN, now=2e9)
    assert report.availability_percent is None  # the ledger did not exist yet
    assert report.without_data_seconds == report.period_seconds == 30 * 86400
    assert report.download.all_hours.tests == 0
    assert report.outages == []
    for fmt in ("html", "csv", "json"):
        _, body = render_report(Ledger(path), "2026-06", fmt, LONDON, PLAN, now=2e9)
        assert body
    assert "No data this month" in phone_text(report)


def test_bnetza_criterion_needs_three_spaced_days_and_two_misses(tmp_path: Path) -> None:
    tz = ZoneInfo("Europe/Berlin")
    start, _ = bounds(2026, 11, tz)
    path = tmp_path / "ledger.db"
    clock = Clock(start - 86400)
    ledger = Ledger(path, clock=clock)
    ledger.open(start_thread=False)
    # days 5, 7 and 9 have 10 tests 30 min apart; day 12 has 9; days 5 and 9 miss 90 Mbit/s
    speeds = {4: 80e6, 6: 95e6, 8: 85e6, 11: 99e6}
    for day, bps in speeds.items():
        for i in range(10 if day != 11 else 9):
            ledger.record_speed_test(SpeedTestRow(start + day * 86400 + 8 * 3600 + i * 1800,
                                                  "bandwidth", "http", "s", bps, 19e6,
                                                  against_plan=True))
    clock.now = start + 20 * 86400
    ledger.close()
    report, _ = report_for(Ledger(path), "2026-11", tz, PLAN, now=start + 20 * 86400)
    assert report.bnetza.measurement_days == ["2026-11-05", "2026-11-07", "2026-11-09"]
    assert report.bnetza.shortfall_indicated is True
    assert (report.bnetza.days_reached, report.bnetza.days_not_reached) == (2, 2)
    assert [d.spaced_tests for d in report.days] == [10, 10, 10, 9]
    report, _ = report_for(Ledger(path), "2026-11", tz, Plan(85.0, 20.0),
                           now=start + 20 * 86400)
    assert report.bnetza.shortfall_indicated is False  # 76.5 Mbit/s reached on all days


def test_csv_has_every_raw_row_and_json_the_figures(tmp_path: Path) -> None:
    import csv
    import io
    import json

    path = tmp_path / "ledger.db"
    seed = seed_month(path, LONDON, 2026, 10)
    content_type, body = render_report(Ledger(path), "2026-10", "csv", LONDON, PLAN, now=2e9)
    assert content_type.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    kinds = [r["record"] for r in rows]
    assert kinds.count("speed_test") == len(seed.tests)
    assert kinds.count("latency_minute") == sum(
        1 for m in seed.minutes if seed.start <= m.minute < seed.end)
    assert kinds.count("outage") == len(seed.internet) + len(seed.off)
    _, body = render_report(Ledger(path), "2026-10", "json", LONDON, PLAN, now=2e9)
    figures = json.loads(body)
    assert figures["month"] == "2026-10"
    assert len(figures["latency_by_hour"]) == 24


def test_the_monthly_phone_text_has_the_headline_figures(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    seed = seed_month(path, LONDON, 2026, 10)
    report, _ = report_for(Ledger(path), "2026-10", LONDON, PLAN, now=seed.end + 60)
    text = phone_text(report)
    lines = text.splitlines()
    assert lines[0] == "Internet report October 2026"
    internet = [c for c in report.outages_by_cause if c.cause == "internet"][0]
    assert lines[1].startswith(f"Available {report.availability_percent:.2f} %: "
                               f"{internet.count} outages")
    assert "No data (monitor off): 1 h 2 min" in text
    assert f"Download median {report.download.all_hours.median_mbps:.1f} Mbit/s of 100" in text
    assert len(text) < 500  # a notification, not the report


@pytest.mark.parametrize(("local", "last_sent", "due"), [
    ("2026-11-01T00:00:30", None, "2026-10"),
    ("2026-11-01T00:00:30", "2026-10", None),
    ("2026-11-30T23:59:00", "2026-09", "2026-10"),
    ("2026-10-31T23:59:59", "2026-09", None),  # October is not over yet (local time)
    ("2027-01-01T00:10:00", "2026-11", "2026-12"),
])
def test_the_monthly_report_is_due_once_a_month_in_local_time(
        local: str, last_sent: str | None, due: str | None) -> None:
    from monitor.ledger.render import monthly_report_due

    now = datetime.fromisoformat(local).replace(tzinfo=LONDON).timestamp()
    assert monthly_report_due(now, LONDON, last_sent) == due


def test_dns_only_outages_count_as_down_and_show_their_share(tmp_path: Path) -> None:
    tz = ZoneInfo("UTC")
    start, end = bounds(2026, 9, tz)
    path = tmp_path / "ledger.db"
    clock = Clock(start - 86400)
    ledger = Ledger(path, clock=clock)
    ledger.open(start_thread=False)
    ledger.record_outage(OutageRow(start + 3600, start + 4200, "isp"))  # 600 s
    ledger.record_outage(OutageRow(start + 86400, start + 86400 + 200, "dns"))
    ledger.record_outage(OutageRow(start + 2 * 86400, start + 2 * 86400 + 400, "dns"))
    ledger.record_outage(OutageRow(start + 3 * 86400, start + 3 * 86400 + 1000, MONITOR_OFF))
    clock.now = end + 3600
    ledger.close()
    report, _ = report_for(Ledger(path), "2026-09", tz, PLAN, now=end + 3600)
    observed = (end - start) - 1000
    assert report.internet_down_seconds == pytest.approx(1200)
    # the user had no working internet during a DNS outage: it counts against availability
    assert report.availability_percent == pytest.approx(100 * (1 - 1200 / observed))
    causes = {c.cause: c for c in report.outages_by_cause}
    assert causes["dns"].count == 2
    assert causes["dns"].total_seconds == pytest.approx(600)
    assert causes["dns"].share_of_down == pytest.approx(0.5)
    assert causes["isp"].share_of_down == pytest.approx(0.5)
    assert causes[MONITOR_OFF].share_of_down is None
    _, body = render_report(Ledger(path), "2026-09", "html", tz, PLAN, now=end + 3600)
    html = body.decode()
    assert "share of down time" in html
    assert "<tr><td>dns</td><td class=n>2</td><td class=n>10 min</td>" in html
    assert "<td class=n>50 %</td></tr>" in html
    assert "Of which DNS only: 2, 10 min (50 % of the down time)" in phone_text(report)


def test_only_tests_their_card_marks_as_against_the_plan_are_compared(tmp_path: Path) -> None:
    """The ledger goes by the flag, not by a job's name: any job may measure the line."""
    tz = ZoneInfo("UTC")
    start, end = bounds(2026, 9, tz)
    path = tmp_path / "ledger.db"
    clock = Clock(start - 86400)
    ledger = Ledger(path, clock=clock)
    ledger.open(start_thread=False)
    ledger.record_speed_test(SpeedTestRow(start + 3600, "line-check", "http", "s", 95e6, 19e6,
                                          bytes_used=10**8, against_plan=True))
    ledger.record_speed_test(SpeedTestRow(start + 7200, "lan-path", "iperf3", "own", 9e8, 9e8,
                                          bytes_used=10**9))
    clock.now = end
    ledger.close()
    report, _ = report_for(Ledger(path), "2026-09", tz, PLAN, now=end)
    assert report.download.all_hours.tests == 1
    assert report.download.all_hours.median_mbps == pytest.approx(95.0)
    assert [d.best_download_mbps for d in report.days] == [pytest.approx(95.0)]
    assert report.data_used_bytes == {"line-check": 10**8, "lan-path": 10**9}


@pytest.mark.parametrize(("p95_ms", "labels"), [
    (0.04, ["0", "0.5", "1"]),  # loopback or LAN: the axis still reads, from 1 ms up
    (37.0, ["0", "25", "50"]),
])
def test_the_hour_of_day_chart_labels_its_axis_with_distinct_figures(
        p95_ms: float, labels: list[str]) -> None:
    svg = latency_svg([HourLatency(hour, 60, p95_ms / 2, p95_ms, 0.0) for hour in range(24)])
    assert re.findall(r'text-anchor="end">([^<]+)</text>', svg) == labels
