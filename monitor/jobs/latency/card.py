"""The latency job's card: RTT, jitter and loss per target, the internet state and the outage
list (the shared internet concept: the page's header reads `status["internet"]`)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from monitor.cards import Card, Figure, JobView
from monitor.charts import Chart, Line
from monitor.entities import Entity
from monitor.htmlparts import clock, duration, iso, num, rows
from monitor.jobs.latency import entities
from monitor.jobs.latency.metrics import LatencyMetrics
from monitor.outages import Outage, RecentOutages
from monitor.series import SeriesKey, number

MAX_OUTAGES = 500
WINDOW = 24 * 3600.0
RTT, JITTER, LOSS = "rtt_ms", "jitter_ms", "loss_ratio"
INTERNET_UP = SeriesKey("internet_up")


@dataclass(frozen=True)
class Span:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


class LatencyCard(Card):
    job = "latency"

    def __init__(self, outage_log: RecentOutages | None = None, window: float = WINDOW,
                 metrics: LatencyMetrics | None = None, targets: Sequence[str] = ()) -> None:
        self.outage_log = outage_log  # the job's outage log (monitor/outages.py)
        self.window = window
        self.metrics, self.targets = metrics, targets  # for entities(): the job's own
        self.outages: deque[Span] = deque(maxlen=MAX_OUTAGES)
        self._seen: set[tuple[float, float]] = set()
        self.internet_up: bool | None = None
        self.internet_since: float | None = None  # when the current state was first seen

    def series(self, summary: Mapping[str, Any]) -> dict[SeriesKey, float | None]:
        row: dict[SeriesKey, float | None] = {INTERNET_UP: number(summary.get("internet_up"))}
        for label, figures in (summary.get("targets") or {}).items():
            if isinstance(figures, Mapping):
                row[SeriesKey(RTT, label)] = number(figures.get("avg_ms"))
                row[SeriesKey(JITTER, label)] = number(figures.get("jitter_ms"))
                row[SeriesKey(LOSS, label)] = number(figures.get("loss"))
        return row

    def observe(self, result: str, summary: Mapping[str, Any], at: float) -> None:
        up_figure = summary.get("internet_up") if result == "success" else None
        up = None if up_figure is None else bool(up_figure)
        if up is not None and up != self.internet_up:
            # a window samples the link from its start: the state changed about then
            started = at - (number(summary.get("round_seconds")) or 0.0)
            self.internet_up, self.internet_since = up, started
        if self.outage_log is not None:
            self.add_outages(self.outage_log.recent())
        cutoff = at - self.window
        while self.outages and self.outages[0].end < cutoff:
            self.outages.popleft()

    def add_outages(self, found: Iterable[Outage | Span]) -> None:
        for outage in sorted(found, key=lambda o: o.start):
            self.add_outage(outage.start, outage.end)

    def add_outage(self, start: float, end: float) -> None:
        key = (round(start, 3), round(end, 3))
        if key in self._seen:
            return
        if len(self._seen) > 4 * MAX_OUTAGES:
            self._seen = {(round(o.start, 3), round(o.end, 3)) for o in self.outages}
        self._seen.add(key)
        self.outages.append(Span(start, end))
        if len(self.outages) > 1 and self.outages[-2].start > start:
            self.outages = deque(sorted(self.outages, key=lambda o: o.start),
                                 maxlen=MAX_OUTAGES)

    def status(self, view: JobView, now: float) -> dict[str, Any]:
        outages, up, since = list(self.outages), self.internet_up, self.internet_since
        return {"internet": _internet(up, since, outages, now),
                "targets": _targets(view), "outages": _outages(up, since, outages, now)}

    def figures(self, view: JobView) -> list[Figure]:
        found = [Figure("internet_up", None if self.internet_up is None
                        else float(self.internet_up))]
        for label, target in _targets(view).items():
            found += [Figure(f"{label} rtt", target["rtt_ms"], "ms", "duration"),
                      Figure(f"{label} loss", target["loss_ratio"])]
        return found

    def entities(self) -> list[Entity]:
        return [] if self.metrics is None else entities.declare(self.metrics, self.targets)

    def charts(self, view: JobView) -> list[Chart]:
        table = view.table
        labels = sorted({key.label for key in table.series_keys() if key.figure == RTT})
        lines = [Line(label, f"s{i % 6}", table.points(SeriesKey(RTT, label)))
                 for i, label in enumerate(labels)]
        marks: dict[float, float] = {}
        for label in labels:
            for at, loss in table.points(SeriesKey(LOSS, label), how="max"):
                if loss > 0:
                    marks[at] = max(marks.get(at, 0.0), loss)
        return [Chart("Round-trip time (red marks: packet loss)", "ms", lines,
                      marks=sorted(marks.items()), floor_max=5.0)] if labels else []

    def section(self, status: Mapping[str, Any], charts: Sequence[str], now: float) -> str:
        found = []
        for label, t in status.get("targets", {}).items():
            loss = t.get("loss_ratio")
            found.append((escape(label), num(t.get("rtt_ms"), "ms"), num(t.get("jitter_ms"), "ms"),
                          num(None if loss is None else loss * 100, "%", 0)))
        table = rows(("target", "RTT", "jitter", "loss"), found, {1, 2, 3}) if found else \
            '<p class="muted">no window yet</p>'
        listed = [(escape(clock(o["start"], now)),
                   escape(clock(o["end"], now)) if o["end"] else '<b class="down">ongoing</b>',
                   escape(duration(o["seconds"]))) for o in status.get("outages", [])]
        outages = rows(("start", "end", "duration"), listed, {2}) if listed else \
            '<p class="muted">none in the last 24 h</p>'
        return (f'<section id="latency"><h2>Latency now</h2>{table}{"".join(charts)}</section>'
                f'<section id="outages"><h2>Outages (24 h)</h2>{outages}</section>')


def _internet(up: bool | None, since: float | None, outages: list[Span],
              now: float) -> dict[str, Any]:
    if up and outages and since is not None and outages[-1].end >= since - 60:
        since = outages[-1].end  # the outage log knows the first reply to the probe slot
    return {"up": up, "since": iso(since),
            "for_seconds": None if since is None else round(max(0.0, now - since))}


def _targets(view: JobView) -> dict[str, Any]:
    if view.latest is None:
        return {}
    at, summary = view.latest.at, view.latest.summary
    targets = {}
    for label, figures in (summary.get("targets") or {}).items():
        targets[label] = {"rtt_ms": figures.get("avg_ms"), "jitter_ms": figures.get("jitter_ms"),
                          "loss_ratio": figures.get("loss"), "at": iso(at)}
        if figures.get("error"):
            targets[label]["error"] = figures["error"]
    return targets


def _outages(up: bool | None, since: float | None, outages: list[Span],
             now: float) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = [
        {"start": iso(o.start), "end": iso(o.end), "seconds": round(float(o.end - o.start), 1)}
        for o in reversed(outages)]
    if up is False and since is not None:  # going on now
        listed.insert(0, {"start": iso(since), "end": None,
                          "seconds": round(max(0.0, now - since), 1)})
    return listed
