"""The iperf job's card: the last iperf3 test, throughput per test and, with an EC2 instance,
its state, running time and egress cost since the daemon started (from the job's metrics)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from monitor.cards import Card, Figure, HistoryRows, JobView
from monitor.charts import Chart, Line
from monitor.entities import Entity
from monitor.htmlparts import clock, data_size, duration, iso, mbps, rows
from monitor.jobs.iperf import entities
from monitor.jobs.iperf.config import Ec2Config
from monitor.jobs.iperf.metrics import IperfMetrics
from monitor.ledger.records import SpeedTestRow
from monitor.ledger.store import Series24h
from monitor.series import SeriesKey, number

DIRECTIONS = ("download", "upload")
# docs/iperf.md "What it costs": data leaving AWS to the internet, most regions
EGRESS_USD_PER_GB = 0.09


class IperfCard(Card):
    job = "iperf"

    def __init__(self, ec2: Ec2Config | None, metrics: IperfMetrics,
                 directions: Sequence[str] = DIRECTIONS) -> None:
        self.ec2, self.metrics = ec2, metrics
        self.directions = directions  # the configured ones, for entities()

    def series(self, summary: Mapping[str, Any]) -> dict[SeriesKey, float | None]:
        return {SeriesKey("mbps", d): _mbps(summary, d) for d in DIRECTIONS}

    def ledger_rows(self, result: str, summary: Mapping[str, Any],
                    at: float) -> list[SpeedTestRow]:
        if result not in ("success", "failure"):
            return []
        used = sum(int(number(summary.get(f"{d}_bytes")) or 0) for d in DIRECTIONS)
        return [SpeedTestRow(at, self.job, "iperf3", str(summary.get("server") or ""),
                             number(summary.get("download_bits_per_second")),
                             number(summary.get("upload_bits_per_second")), None, used,
                             ok=result == "success",
                             error=None if result == "success" else "failed",
                             # iperf measures the path to the user's own server, not the contract
                             against_plan=False)]

    def from_ledger(self, series: Series24h) -> HistoryRows:
        return [(test.at, {SeriesKey("mbps", "download"): _round_mbps(test.download_bps),
                           SeriesKey("mbps", "upload"): _round_mbps(test.upload_bps)})
                for test in series.speed_tests if test.job == self.job and test.ok]

    def status(self, view: JobView, now: float) -> dict[str, Any]:
        return {"iperf": _latest(view), "ec2": self._ec2()}

    def figures(self, view: JobView) -> list[Figure]:
        summary = view.latest.summary if view.latest else {}
        return [Figure(f"iperf {d}", _mbps(summary, d), "Mbit/s", "data_rate")
                for d in DIRECTIONS]

    def entities(self) -> list[Entity]:
        return entities.declare(self.directions, self.ec2, self.metrics)

    def charts(self, view: JobView) -> list[Chart]:
        lines = [Line(f"iperf {d}", f"s{2 + i}", view.table.points(SeriesKey("mbps", d)),
                      dots=True) for i, d in enumerate(DIRECTIONS)]
        return [Chart("Throughput per iperf test", "Mbit/s", lines, floor_max=10.0)]

    def section(self, status: Mapping[str, Any], charts: Sequence[str], now: float) -> str:
        test = status.get("iperf")
        table = rows(("last test", "down", "up", "at"), [(
            "iperf", mbps(test.get("download_mbps")), mbps(test.get("upload_mbps")),
            escape(clock(test["at"], now, seconds=False)))], {1, 2, 3}) if test else \
            '<p class="muted">no test yet</p>'
        return (f'<section id="iperf"><h2>iperf</h2>{table}{"".join(charts)}</section>'
                f'{_ec2(status.get("ec2"))}')

    def _ec2(self) -> dict[str, Any] | None:
        if self.ec2 is None:
            return None
        instance_id = self.ec2.instance_id
        running = _sample(self.metrics.instance_running, instance_id=instance_id)
        seconds = _sample(self.metrics.instance_running_seconds, instance_id=instance_id)
        egress = _sample(self.metrics.bytes, direction="download") or 0.0
        return {"instance_id": instance_id,
                "state": None if running is None else ("running" if running else "stopped"),
                "running_seconds": None if seconds is None else round(seconds),
                "egress_bytes": int(egress),
                "estimated_egress_usd": round(egress / 1e9 * EGRESS_USD_PER_GB, 2),
                "since": "daemon start"}


def _mbps(summary: Mapping[str, Any], direction: str) -> float | None:
    return _round_mbps(number(summary.get(f"{direction}_bits_per_second")))


def _round_mbps(bps: float | None) -> float | None:
    return None if bps is None else round(bps / 1e6, 2)


def _latest(view: JobView) -> dict[str, Any] | None:
    if view.latest is None:
        return None
    summary = view.latest.summary
    figures: dict[str, Any] = {"at": iso(view.latest.at), "server": summary.get("server")}
    for direction in DIRECTIONS:
        figures[f"{direction}_mbps"] = _mbps(summary, direction)
        figures[f"{direction}_retransmits"] = summary.get(f"{direction}_retransmits")
    figures["ec2_start_seconds"] = summary.get("ec2_start_seconds")
    return figures


def _sample(metric: Any, **labels: str) -> float | None:
    """One sample of one of the job's own metric objects (no exposition, no registry walk)."""
    for family in metric.collect():
        for sample in family.samples:
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def _ec2(ec2: Mapping[str, Any] | None) -> str:
    if ec2 is None:
        return ""
    state = ec2.get("state") or "not seen yet"
    listed = [("instance", escape(ec2["instance_id"])), ("state", escape(state)),
              ("running time", escape(duration(ec2.get("running_seconds")))),
              ("data out", escape(data_size(ec2.get("egress_bytes")))),
              ("egress cost", f'≈ ${ec2.get("estimated_egress_usd", 0):.2f}')]
    return (f'<section id="ec2"><h2>EC2 (since the daemon started)</h2>'
            f'{rows(("", ""), listed, {1})}</section>')
