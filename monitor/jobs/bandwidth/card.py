"""The bandwidth job's card: the last speed test (with the backend that measured it and those
that failed before it), the last cross-check, throughput per test and the month's data budget
(read from the job's usage file, which survives restarts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from monitor.cards import Card, Figure, HistoryRows, JobView
from monitor.charts import Chart, Line
from monitor.entities import Entity
from monitor.htmlparts import clock, data_size, iso, mbps, rows
from monitor.jobs.bandwidth import entities
from monitor.jobs.bandwidth.budget import UsageStore, current_month
from monitor.ledger.records import SpeedTestRow
from monitor.ledger.store import Series24h
from monitor.series import SeriesKey, number

DIRECTIONS = ("download", "upload")
LATEST_KEYS = ("download_mbps", "upload_mbps", "latency_ms", "idle_rtt_ms",
               "loaded_rtt_download_ms", "loaded_rtt_upload_ms", "backend", "server",
               "failed_backends")


class BandwidthCard(Card):
    job = "bandwidth"

    def __init__(self, usage: UsageStore, budget_bytes: int | None,
                 cross_checked: bool = False) -> None:
        self.usage, self.budget_bytes = usage, budget_bytes
        self.cross_checked = cross_checked  # a cross_check is configured: declare its ratios
        self.month = current_month()
        self.used_bytes: int | None = usage.used(self.month)
        # the last cross-check since start: it runs once a day or so, the tests in between have
        # none, and its ratio is what a reader wants to see until the next one
        self.cross_check: dict[str, Any] | None = None

    def series(self, summary: Mapping[str, Any]) -> dict[SeriesKey, float | None]:
        return {SeriesKey("mbps", d): number(summary.get(f"{d}_mbps")) for d in DIRECTIONS}

    def observe(self, result: str, summary: Mapping[str, Any], at: float) -> None:
        self.month = current_month(at)  # any run may have used data, a failed one too
        self.used_bytes = self.usage.used(self.month)
        check = summary.get("cross_check")
        if result == "success" and isinstance(check, Mapping):
            self.cross_check = {"at": iso(at), "reference": summary.get("backend"), **check}

    def ledger_rows(self, result: str, summary: Mapping[str, Any],
                    at: float) -> list[SpeedTestRow]:
        if result not in ("success", "failure"):
            return []
        def bps(key: str) -> float | None:
            value = number(summary.get(key))
            return None if value is None else value * 1e6

        latency = number(summary.get("latency_ms"))
        used = sum(int(number(summary.get(f"bytes_{d}")) or 0) for d in DIRECTIONS)
        return [SpeedTestRow(at, self.job, str(summary.get("backend") or ""),
                             str(summary.get("server") or ""), bps("download_mbps"),
                             bps("upload_mbps"), None if latency is None else latency / 1000,
                             used, ok=result == "success",
                             error=None if result == "success" else "failed",
                             # a speed test measures the contracted line: the report compares it
                             against_plan=True)]

    def from_ledger(self, series: Series24h) -> HistoryRows:
        return [(test.at, {SeriesKey("mbps", "download"): _mbps(test.download_bps),
                           SeriesKey("mbps", "upload"): _mbps(test.upload_bps)})
                for test in series.speed_tests if test.job == self.job and test.ok]

    def status(self, view: JobView, now: float) -> dict[str, Any]:
        latest = view.latest
        test = None if latest is None else {
            "at": iso(latest.at), **{key: latest.summary.get(key) for key in LATEST_KEYS},
            "cross_check": self.cross_check}
        used, budget = self.used_bytes, self.budget_bytes
        return {"speedtest": test,
                "budget": {"month": self.month, "used_bytes": used, "budget_bytes": budget,
                           "used_ratio": round(used / budget, 4)
                           if budget and used is not None else None}}

    def figures(self, view: JobView) -> list[Figure]:
        summary = view.latest.summary if view.latest else {}
        return [Figure(f"{d} speed", number(summary.get(f"{d}_mbps")), "Mbit/s", "data_rate")
                for d in DIRECTIONS] + [
            Figure("data used this month", None if self.used_bytes is None
                   else float(self.used_bytes), "B", "data_size")]

    def entities(self) -> list[Entity]:
        return entities.declare(self.usage, self.budget_bytes, self.cross_checked)

    def charts(self, view: JobView) -> list[Chart]:
        lines = [Line(f"speed test {d}", f"s{i}", view.table.points(SeriesKey("mbps", d)),
                      dots=True) for i, d in enumerate(DIRECTIONS)]
        return [Chart("Throughput per speed test", "Mbit/s", lines, floor_max=10.0)]

    def section(self, status: Mapping[str, Any], charts: Sequence[str], now: float) -> str:
        test = status.get("speedtest")
        if test:
            check = test.get("cross_check")
            table = rows(("last test", "down", "up", "at"), [
                _test_row("speed&nbsp;test", test, now),
                *([_test_row("cross-check", check, now)] if check else [])], {1, 2, 3})
            notes = "".join(f'<p class="muted">{escape(note)}</p>' for note in (
                _failed_note(test.get("failed_backends") or []), _ratio_note(check)) if note)
        else:
            table, notes = '<p class="muted">no test yet</p>', ""
        return (f'<section id="speed"><h2>Speed</h2>{table}{notes}{"".join(charts)}</section>'
                f'{_budget(status.get("budget") or {})}')


def _mbps(bps: float | None) -> float | None:
    return None if bps is None else round(bps / 1e6, 3)


def _test_row(name: str, test: Mapping[str, Any], now: float) -> tuple[str, str, str, str]:
    if test.get("backend"):  # which backend made the figure
        name = f"{name} ({escape(str(test['backend']))})"
    return (name, mbps(test.get("download_mbps")), mbps(test.get("upload_mbps")),
            escape(clock(test.get("at"), now, seconds=False)))


def _failed_note(failed: Sequence[Mapping[str, Any]]) -> str:
    return "failed first: " + ", ".join(
        f"{f.get('backend')} ({f.get('reason')})" for f in failed) if failed else ""


def _ratio_note(check: Mapping[str, Any] | None) -> str:
    if not check:
        return ""
    ratios = [f"{d} ×{check[f'{d}_ratio']:.2f}" for d in DIRECTIONS
              if isinstance(check.get(f"{d}_ratio"), (int, float))]
    if not ratios:
        return f"cross-check {check.get('backend')}: {check.get('failure') or 'no ratio'}"
    return (f"cross-check {check.get('backend')} ÷ {check.get('reference')}: "
            + ", ".join(ratios))


def _budget(budget: Mapping[str, Any]) -> str:
    used, limit = budget.get("used_bytes"), budget.get("budget_bytes")
    if limit:
        text = (f'{data_size(used)} of {data_size(limit)} ({(used or 0) / limit:.0%})'
                f'<meter min="0" max="{limit}" value="{used or 0}"></meter>')
    else:
        text = f"{data_size(used)} used, no budget set"
    month = escape(budget.get("month") or "this month")
    return f'<section id="budget"><h2>Data budget {month}</h2><p>{text}</p></section>'
