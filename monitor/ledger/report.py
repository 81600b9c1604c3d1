"""The ISP report: pure computation from one month of ledger rows (docs/ledger.md defines
every figure). Times are epoch seconds; days, hours and the month's edges are local to `tz`."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import combinations
from zoneinfo import ZoneInfo

from monitor.ledger.latency import nearest_rank
from monitor.ledger.records import MONITOR_OFF, OutageRow, SpeedTestRow
from monitor.ledger.store import MonthRows

PEAK_HOURS = (20, 21)  # 20:00-22:00 local, Ofcom's peak
PLAN_SHARE = 0.9  # a test "reaches the plan" at 90 % of it (BNetzA's and common use)
BNETZA_TESTS_PER_DAY = 10
BNETZA_MIN_SPACING = 300.0
BNETZA_WINDOW_DAYS = 14


@dataclass(frozen=True)
class Plan:
    download_mbps: float | None = None
    upload_mbps: float | None = None


@dataclass(frozen=True)
class CauseSummary:
    cause: str
    count: int
    total_seconds: float
    longest_seconds: float
    # of the month's internet-down time, the part this cause was going on (dns: the line
    # worked but names did not resolve, counted as down); None for monitor_off (no data)
    share_of_down: float | None = None


@dataclass(frozen=True)
class OutageEntry:
    start: str  # local ISO-8601 with offset
    end: str | None
    seconds: float  # within the month
    cause: str


@dataclass(frozen=True)
class SpeedFigures:
    tests: int
    median_mbps: float | None
    p10_mbps: float | None
    share_at_90: float | None  # of tests >= 90 % of the plan; None without a plan


@dataclass(frozen=True)
class DirectionSummary:
    direction: str
    plan_mbps: float | None
    all_hours: SpeedFigures
    peak_hours: SpeedFigures


@dataclass(frozen=True)
class DayFigures:
    day: str  # YYYY-MM-DD local
    tests: int
    spaced_tests: int  # at least 5 minutes apart, counted greedily (BNetzA's spacing)
    best_download_mbps: float | None
    reached_90: bool | None  # None without a plan


@dataclass(frozen=True)
class BnetzaView:
    days_with_tests: int
    days_reached: int | None
    days_not_reached: int | None
    measurement_days: list[str]  # the three days the check found (worst case), if any
    shortfall_indicated: bool | None  # None: no plan or not three qualifying days


@dataclass(frozen=True)
class HourLatency:
    hour: int
    minutes: int
    p50_ms: float | None
    p95_ms: float | None
    loss: float | None


@dataclass
class Report:
    month: str
    tz: str
    start: str
    end: str  # the month's end, or now for the running month
    period_seconds: float
    without_data_seconds: float
    observed_seconds: float
    internet_down_seconds: float
    availability_percent: float | None
    outages_by_cause: list[CauseSummary]
    outages: list[OutageEntry]
    plan: Plan
    download: DirectionSummary
    upload: DirectionSummary
    failed_tests: int
    days: list[DayFigures]
    bnetza: BnetzaView
    latency_by_hour: list[HourLatency]
    data_used_bytes: dict[str, int] = field(default_factory=dict)  # by the job that tested


# --- time helpers ------------------------------------------------------------------------------


def month_bounds(month: str, tz: ZoneInfo) -> tuple[float, float]:
    """'2026-10' -> the epoch seconds of its first and the next month's first local midnight."""
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=tz)
    following = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=tz)
    return start.timestamp(), following.timestamp()


def local_iso(epoch: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(round(epoch), tz).isoformat(timespec="seconds")


def union_seconds(spans: Iterable[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


def _clip(outage: OutageRow, start: float, end: float) -> tuple[float, float]:
    return max(outage.start, start), min(end if outage.end is None else outage.end, end)


# --- the figures -------------------------------------------------------------------------------


def build_report(rows: MonthRows, month: str, tz: ZoneInfo, plan: Plan | None = None, *,
                 now: float, first_seen: float | None) -> Report:
    """`first_seen`: the ledger's first sign of life ever (before it: no data either)."""
    plan = plan or Plan()
    start = rows.start
    end = min(rows.end, max(now, start))
    off = [_clip(o, start, end) for o in rows.outages if o.cause == MONITOR_OFF]
    # before the ledger's first sign of life ever there is no data either
    never_end = end if first_seen is None else min(end, first_seen)
    never = [(start, never_end)] if never_end > start else []
    without_data = union_seconds([*off, *never])
    down_spans = [_clip(o, start, end) for o in rows.outages if o.cause != MONITOR_OFF]
    # internet down while the monitor was off is not known: count only the observed part
    down = union_seconds([*down_spans, *off, *never]) - without_data
    observed = (end - start) - without_data
    availability = None if observed <= 0 else 100.0 * (1 - down / observed)

    by_cause: dict[str, list[tuple[float, float]]] = {}
    entries = []
    for outage in rows.outages:
        cause = outage.cause or "unknown"
        clip_start, clip_end = _clip(outage, start, end)
        by_cause.setdefault(cause, []).append((clip_start, clip_end))
        entries.append(OutageEntry(local_iso(outage.start, tz),
                                   None if outage.end is None else local_iso(outage.end, tz),
                                   max(0.0, clip_end - clip_start), cause))
    causes = [_cause_summary(cause, spans, [*off, *never], without_data, down)
              for cause, spans in sorted(by_cause.items())]

    tests = [t for t in rows.speed_tests if start <= t.at < end]
    # only tests of the contracted line (their card said so) are compared with the plan
    line_tests = [t for t in tests if t.against_plan and t.ok]
    data_used: dict[str, int] = {}
    for test in tests:
        data_used[test.job] = data_used.get(test.job, 0) + test.bytes_used
    days = _days(line_tests, tz, plan.download_mbps)
    return Report(
        month=month, tz=str(tz), start=local_iso(start, tz), end=local_iso(end, tz),
        period_seconds=end - start, without_data_seconds=without_data,
        observed_seconds=max(0.0, observed), internet_down_seconds=down,
        availability_percent=availability, outages_by_cause=causes, outages=entries,
        plan=plan,
        download=_direction("download", line_tests, plan.download_mbps, tz),
        upload=_direction("upload", line_tests, plan.upload_mbps, tz),
        failed_tests=sum(1 for t in tests if not t.ok), days=days,
        bnetza=_bnetza(days, plan.download_mbps),
        latency_by_hour=_latency_by_hour(rows, tz, start, end),
        data_used_bytes=data_used)


def _cause_summary(cause: str, spans: list[tuple[float, float]],
                   no_data: list[tuple[float, float]], without_data: float,
                   down: float) -> CauseSummary:
    lengths = [max(0.0, clip_end - clip_start) for clip_start, clip_end in spans]
    share = None
    if cause != MONITOR_OFF and down > 0:
        # the observed part only, as for the availability
        share = (union_seconds([*spans, *no_data]) - without_data) / down
    return CauseSummary(cause, len(lengths), sum(lengths), max(lengths), share)


def _mbps(test: SpeedTestRow, direction: str) -> float | None:
    bps = test.download_bps if direction == "download" else test.upload_bps
    return None if bps is None else bps / 1e6


def figures(values: list[float], plan_mbps: float | None) -> SpeedFigures:
    if not values:
        return SpeedFigures(0, None, None, None)
    ordered = sorted(values)
    share = (None if plan_mbps is None
             else sum(1 for v in values if v >= PLAN_SHARE * plan_mbps) / len(values))
    return SpeedFigures(len(values), statistics.median(ordered), nearest_rank(ordered, 0.10),
                        share)


def _direction(direction: str, tests: list[SpeedTestRow], plan_mbps: float | None,
               tz: ZoneInfo) -> DirectionSummary:
    measured = [(t.at, v) for t in tests if (v := _mbps(t, direction)) is not None]
    peak = [v for at, v in measured if datetime.fromtimestamp(at, tz).hour in PEAK_HOURS]
    return DirectionSummary(direction, plan_mbps, figures([v for _, v in measured], plan_mbps),
                            figures(peak, plan_mbps))


def _days(tests: list[SpeedTestRow], tz: ZoneInfo, plan_mbps: float | None) -> list[DayFigures]:
    by_day: dict[date, list[tuple[float, float]]] = {}
    for test in tests:
        value = _mbps(test, "download")
        if value is not None:
            by_day.setdefault(datetime.fromtimestamp(test.at, tz).date(), []).append(
                (test.at, value))
    days = []
    for day, measured in sorted(by_day.items()):
        spaced, last = 0, float("-inf")
        for at, _ in sorted(measured):
            if at - last >= BNETZA_MIN_SPACING:
                spaced, last = spaced + 1, at
        best = max(value for _, value in measured)
        reached = None if plan_mbps is None else best >= PLAN_SHARE * plan_mbps
        days.append(DayFigures(day.isoformat(), len(measured), spaced, best, reached))
    return days


def _bnetza(days: list[DayFigures], plan_mbps: float | None) -> BnetzaView:
    """Criterion 1 of BNetzA's Vfg. 99/2021: a shortfall when 90 % of the contracted maximum
    is not reached (at least once a day) on at least 2 of 3 measurement days; the days have 10
    measurements each, lie within 14 days and have at least one day between them."""
    if plan_mbps is None:
        return BnetzaView(len(days), None, None, [], None)
    reached = sum(1 for d in days if d.reached_90)
    qualifying = [d for d in days if d.spaced_tests >= BNETZA_TESTS_PER_DAY]
    worst: tuple[DayFigures, ...] = ()
    for triple in combinations(qualifying, 3):
        dates = [date.fromisoformat(d.day) for d in triple]
        if (dates[1] - dates[0] < timedelta(days=2) or dates[2] - dates[1] < timedelta(days=2)
                or dates[2] - dates[0] >= timedelta(days=BNETZA_WINDOW_DAYS)):
            continue
        misses = sum(1 for d in triple if not d.reached_90)
        if not worst or misses > sum(1 for d in worst if not d.reached_90):
            worst = triple
    shortfall = None if not worst else sum(1 for d in worst if not d.reached_90) >= 2
    return BnetzaView(len(days), reached, len(days) - reached, [d.day for d in worst],
                      shortfall)


def local_hour_of(tz: ZoneInfo) -> Callable[[float], int]:
    """epoch -> local hour of day, one tz lookup per quarter hour (every zone's offset and
    every change of it falls on a quarter hour), so a month of minutes costs little."""
    cache: dict[int, int] = {}

    def hour(epoch: float) -> int:
        quarter = int(epoch // 900)
        if quarter not in cache:
            cache[quarter] = datetime.fromtimestamp(quarter * 900, tz).hour
        return cache[quarter]

    return hour


def _latency_by_hour(rows: MonthRows, tz: ZoneInfo, start: float,
                     end: float) -> list[HourLatency]:
    means: dict[int, list[float]] = {hour: [] for hour in range(24)}
    sent = dict.fromkeys(range(24), 0)
    received = dict.fromkeys(range(24), 0)
    minutes = dict.fromkeys(range(24), 0)
    hour_of = local_hour_of(tz)
    for minute, minute_sent, minute_received, rtt_mean in rows.latency_points:
        if not start <= minute < end:
            continue
        hour = hour_of(minute)
        minutes[hour] += 1
        sent[hour] += minute_sent
        received[hour] += minute_received
        if rtt_mean is not None:
            means[hour].append(rtt_mean)
    result = []
    for hour in range(24):
        ordered = sorted(means[hour])
        result.append(HourLatency(
            hour, minutes[hour],
            nearest_rank(ordered, 0.5) * 1000 if ordered else None,
            nearest_rank(ordered, 0.95) * 1000 if ordered else None,
            1 - received[hour] / sent[hour] if sent[hour] else None))
    return result
