"""The latency job's card: RTT, jitter and loss per target, the path's hops (home router, ISP's
first hop), DNS look-ups, the internet state and the outage list with where each broke (the
shared internet concept: the page's header reads `status["internet"]`)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any, Protocol

from monitor.cards import Card, Figure, HistoryRows, JobView
from monitor.charts import Chart, Line
from monitor.entities import Entity
from monitor.htmlparts import clock, duration, iso, num, rows
from monitor.jobs.latency import entities
from monitor.jobs.latency.metrics import LatencyMetrics
from monitor.ledger.records import MONITOR_OFF
from monitor.ledger.store import Series24h
from monitor.outages import Outage, RecentOutages
from monitor.series import SeriesKey, number

MAX_OUTAGES = 500
WINDOW = 24 * 3600.0
RTT, JITTER, LOSS = "rtt_ms", "jitter_ms", "loss_ratio"
HOP_RTT, DNS_LOOKUP = "hop_rtt_ms", "dns_lookup_ms"
INTERNET_UP = SeriesKey("internet_up")
DNS = "dns"  # the cause of a DNS outage (monitor/jobs/latency/cause.py)
HOP_NAMES = {"home": "home router", "isp": "ISP's first hop"}
# where it broke, as the outage list says it (cause.py decides, its detail says what answered)
WHERE = {"home": "in your home network", "isp": "at your ISP", "upstream": "beyond your ISP",
         "dns": "in DNS", "unknown": "unknown"}
MONITOR_OFF_TEXT = "no data: monitor off (power cut or restart)"


@dataclass(frozen=True)
class Span:
    """An outage the card lists: its edges and where it broke (plain fields, as the outage log's
    items carry them)."""

    start: float
    end: float
    cause: str = "unknown"
    detail: str = ""

    @property
    def seconds(self) -> float:
        return self.end - self.start


class KnownCause(Protocol):
    """Where an outage broke (monitor/jobs/latency/cause.py's Cause)."""

    @property
    def cause(self) -> str: ...

    @property
    def detail(self) -> str: ...


def outage_sentence(cause: str | None, detail: str | None) -> str:
    """Where an outage broke, for a person: "at your ISP: your router answered, the ISP's first
    hop (100.64.0.1) did not"."""
    if cause == MONITOR_OFF:
        return MONITOR_OFF_TEXT[:1].upper() + MONITOR_OFF_TEXT[1:]
    where = WHERE.get(cause or "unknown", cause or "unknown")
    what, _, _ = (detail or "").partition(" — ")  # the tail repeats the cause in words
    if cause in (None, "unknown"):
        return what[:1].upper() + what[1:] if what else "Unknown"
    return f"{where[:1].upper()}{where[1:]}: {what}" if what else where[:1].upper() + where[1:]


class LatencyCard(Card):
    job = "latency"

    def __init__(self, outage_log: RecentOutages | None = None, window: float = WINDOW,
                 metrics: LatencyMetrics | None = None, targets: Sequence[str] = (),
                 cause_now: Callable[[], KnownCause | None] | None = None) -> None:
        self.outage_log = outage_log  # the job's outage log (monitor/outages.py)
        self.window = window
        self.metrics, self.targets = metrics, targets  # for entities(): the job's own
        self.cause_now = cause_now  # the job's verdict on the outage going on, so far
        self.dns_down_since: float | None = None
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
        for role, figures in (summary.get("path") or {}).items():
            if isinstance(figures, Mapping):
                row[SeriesKey(HOP_RTT, role)] = number(figures.get("avg_ms"))
        for resolver, figures in (summary.get("dns") or {}).items():
            if isinstance(figures, Mapping):
                row[SeriesKey(DNS_LOOKUP, resolver)] = number(figures.get("lookup_ms"))
        return row

    def observe(self, result: str, summary: Mapping[str, Any], at: float) -> None:
        up_figure = summary.get("internet_up") if result == "success" else None
        up = None if up_figure is None else bool(up_figure)
        if up is not None and up != self.internet_up:
            # a window samples the link from its start: the state changed about then
            started = at - (number(summary.get("round_seconds")) or 0.0)
            self.internet_up, self.internet_since = up, started
        if result == "success":
            down_for = number(summary.get("dns_down_seconds"))
            self.dns_down_since = None if down_for is None else at - down_for
        if self.outage_log is not None:
            self.add_outages(self.outage_log.recent())
        cutoff = at - self.window
        while self.outages and self.outages[0].end < cutoff:
            self.outages.popleft()

    def from_ledger(self, series: Series24h) -> HistoryRows:
        """The charts from the ledger's per-minute rows in 5-minute slots; the outage list
        gains the ledger's (those before a restart, and the monitor's own downtime)."""
        self.add_outages(Span(o.start, o.end, o.cause or "unknown", o.detail or "")
                         for o in series.outages if o.end is not None)
        found: list[tuple[float, dict[SeriesKey, float | None]]] = []
        for slot in series.latency:
            found.append((slot.start + 150.0, {
                SeriesKey(RTT, slot.target): _ms(slot.rtt_mean),
                SeriesKey(JITTER, slot.target): _ms(slot.jitter),
                SeriesKey(LOSS, slot.target): 1 - slot.received / slot.sent if slot.sent
                else None}))
        return found

    def add_outages(self, found: Iterable[Outage | Span]) -> None:
        for outage in sorted(found, key=lambda o: o.start):
            self.add_outage(outage.start, outage.end, outage.cause, outage.detail)

    def add_outage(self, start: float, end: float, cause: str = "unknown",
                   detail: str = "") -> None:
        key = (round(start, 3), round(end, 3))
        if key in self._seen:
            return
        if len(self._seen) > 4 * MAX_OUTAGES:
            self._seen = {(round(o.start, 3), round(o.end, 3)) for o in self.outages}
        self._seen.add(key)
        self.outages.append(Span(start, end, cause, detail))
        if len(self.outages) > 1 and self.outages[-2].start > start:
            self.outages = deque(sorted(self.outages, key=lambda o: o.start),
                                 maxlen=MAX_OUTAGES)

    def status(self, view: JobView, now: float) -> dict[str, Any]:
        outages, up, since = list(self.outages), self.internet_up, self.internet_since
        listed = _outages(outages, now)
        ongoing = self._ongoing(now)
        if ongoing is not None:
            listed.insert(0, ongoing)
        return {"internet": _internet(up, since, outages, now), "targets": _targets(view),
                "path": _hops(view), "dns": _dns(view), "outages": listed}

    def _ongoing(self, now: float) -> dict[str, Any] | None:
        """The outage going on now (the internet's, else DNS's) with its cause so far."""
        if self.internet_up is False and self.internet_since is not None:
            start = self.internet_since
            known = self.cause_now() if self.cause_now is not None else None
            cause = known if known is not None and known.cause != DNS else None
        elif self.internet_up and self.dns_down_since is not None:
            start = self.dns_down_since
            cause = self.cause_now() if self.cause_now is not None else None
            if cause is None or cause.cause != DNS:
                return None  # names resolve again by now
        else:
            return None
        return {"start": iso(start), "end": None, "seconds": round(max(0.0, now - start), 1),
                "cause": cause.cause if cause else "unknown",
                "detail": cause.detail if cause else ""}

    def figures(self, view: JobView) -> list[Figure]:
        found = [Figure("internet_up", None if self.internet_up is None
                        else float(self.internet_up))]
        for label, target in _targets(view).items():
            found += [Figure(f"{label} rtt", target["rtt_ms"], "ms", "duration"),
                      Figure(f"{label} loss", target["loss_ratio"])]
        for role, hop in _hops(view).items():
            found += [Figure(f"{HOP_NAMES.get(role, role)} rtt", hop["rtt_ms"], "ms", "duration"),
                      Figure(f"{HOP_NAMES.get(role, role)} loss", hop["loss_ratio"])]
        for resolver, dns in _dns(view).items():
            found.append(Figure(f"dns {resolver} lookup", dns["lookup_ms"], "ms", "duration"))
        return found

    def entities(self) -> list[Entity]:
        return [] if self.metrics is None else entities.declare(self.metrics, self.targets)

    def charts(self, view: JobView) -> list[Chart]:
        table = view.table
        labels = sorted({key.label for key in table.series_keys() if key.figure == RTT})
        lines = [Line(label, f"s{i % 6}", table.points(SeriesKey(RTT, label)))
                 for i, label in enumerate(labels)]
        roles = [role for role in HOP_NAMES if SeriesKey(HOP_RTT, role) in table.series_keys()]
        lines += [Line(HOP_NAMES[role], f"s{(len(labels) + i) % 6}",
                       table.points(SeriesKey(HOP_RTT, role))) for i, role in enumerate(roles)]
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
                   escape(duration(o["seconds"])),
                   escape(outage_sentence(o.get("cause"), o.get("detail"))))
                  for o in status.get("outages", [])]
        outages = _outage_table(listed) if listed else \
            '<p class="muted">none in the last 24 h</p>'
        return (f'<section id="latency"><h2>Latency now</h2>{table}'
                f'{_path_table(status.get("path") or {})}{_dns_table(status.get("dns") or {})}'
                f'{"".join(charts)}</section>'
                f'<section id="outages"><h2>Outages (24 h)</h2>{outages}</section>')


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _path_table(hops: Mapping[str, Any]) -> str:
    if not hops:
        return ""
    found = [(escape(HOP_NAMES.get(role, role)), escape(str(hop.get("address") or "–")),
              num(hop.get("rtt_ms"), "ms"),
              num(None if hop.get("loss_ratio") is None else hop["loss_ratio"] * 100, "%", 0))
             for role, hop in hops.items()]
    return rows(("path hop", "address", "RTT", "loss"), found, {2, 3})


def _dns_table(resolvers: Mapping[str, Any]) -> str:
    if not resolvers:
        return ""
    found = [(escape(f"DNS ({resolver})"), num(dns.get("lookup_ms"), "ms"),
              "resolves" if dns.get("up") else
              f'<b class="down">fails</b> {escape(str(dns.get("error") or ""))}')
             for resolver, dns in resolvers.items()]
    return rows(("look-up", "time", "state"), found, {1})


def _internet(up: bool | None, since: float | None, outages: list[Span],
              now: float) -> dict[str, Any]:
    internet = [outage for outage in outages if outage.cause not in (DNS, MONITOR_OFF)]
    # DNS's: pings answered; monitor_off: no data
    if up and internet and since is not None and internet[-1].end >= since - 60:
        since = internet[-1].end  # the outage log knows the first reply to the probe slot
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


def _hops(view: JobView) -> dict[str, Any]:
    if view.latest is None:
        return {}
    at, summary = view.latest.at, view.latest.summary
    return {role: {"address": figures.get("address"), "rtt_ms": figures.get("avg_ms"),
                   "loss_ratio": figures.get("loss"), "at": iso(at)}
            for role, figures in (summary.get("path") or {}).items()}


def _dns(view: JobView) -> dict[str, Any]:
    if view.latest is None:
        return {}
    at, summary = view.latest.at, view.latest.summary
    return {resolver: {"up": bool(figures.get("ok")), "lookup_ms": figures.get("lookup_ms"),
                       "error": figures.get("error"), "at": iso(at)}
            for resolver, figures in (summary.get("dns") or {}).items()}


def _outage_table(listed: Sequence[tuple[str, str, str, str]]) -> str:
    """Times and duration on one row, where it broke on the row below across the table: a
    sentence squeezed into a fourth column of a phone-wide table breaks every other word."""
    body = "".join(f'<tr class="outage"><td class="n">{start}</td><td class="n">{end}</td>'
                   f'<td class="n">{length}</td></tr>'
                   f'<tr class="why"><td colspan="3">{why}</td></tr>'
                   for start, end, length, why in listed)
    return f"<table><tr><th>start</th><th>end</th><th>duration</th></tr>{body}</table>"


def _outages(outages: list[Span], now: float) -> list[dict[str, Any]]:
    return [{"start": iso(o.start), "end": iso(o.end), "seconds": round(float(o.end - o.start), 1),
             "cause": o.cause, "detail": o.detail} for o in reversed(outages)]
