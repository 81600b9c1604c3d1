"""The status page: HTML rendered from the /api/status dict plus the history charts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from monitor.jobs.aqi.indices import DAQI_COLOURS
from monitor.units import format_duration
from monitor.webpage.style import STYLE

REFRESH_SECONDS = 30
FAVICON_SVG = ("<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>"
               "<circle cx='8' cy='8' r='7' fill='{colour}'/></svg>")
COLOURS = {True: "#1f9d55", False: "#d64545", None: "#8a8f98"}



def render(status: dict[str, Any], charts: Sequence[str], now: float | None = None) -> str:
    now = time.time() if now is None else now
    internet = status.get("internet") or {}
    up = internet.get("up")
    favicon = FAVICON_SVG.format(colour=COLOURS[up]).replace("#", "%23")
    sections = [_latency(status, charts), _outages(status), _speed(status, charts),
                _air(status, charts), _budget(status), _ec2(status), _jobs(status)]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:image/svg+xml,{favicon}">
<title>{_title(up)} · home-monitor</title><style>{STYLE}</style></head>
<body><header><h1>home-monitor</h1>{_internet(internet, now)}</header>
<main>{''.join(s for s in sections if s)}</main>
<footer>home-monitor {escape(status.get("version", ""))} · {escape(_clock(status.get(
        "generated_at"), now))} · refreshes every {REFRESH_SECONDS} s ·
<a href="/api/status">/api/status</a> · <a href="/metrics">/metrics</a> ·
<a href="/healthz">/healthz</a></footer></body></html>
"""


# --- formatting ----------------------------------------------------------------------------


def _title(up: bool | None) -> str:
    return {True: "Internet up", False: "Internet DOWN", None: "Internet unknown"}[up]


def _epoch(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text).timestamp()


def _clock(text: str | None, now: float, *, seconds: bool = True) -> str:
    """'14:02:05' (or '14:02') today, 'Mon 30 Nov 23:10' otherwise; '–' for never."""
    at = _epoch(text)
    if at is None:
        return "–"
    local = time.localtime(at)
    if time.strftime("%Y%m%d", local) == time.strftime("%Y%m%d", time.localtime(now)):
        return time.strftime("%H:%M:%S" if seconds else "%H:%M", local)
    return time.strftime("%a %d %b %H:%M", local)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec} s" if sec else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


def _num(value: Any, unit: str, digits: int = 1) -> str:
    if value is None:
        return '<span class="muted">–</span>'
    return f"{value:,.{digits}f} {unit}".strip()


def _mbps(value: float | None) -> str:
    return _num(value, "Mbit/s", 0 if value is not None and value >= 100 else 1)


def _bytes(value: float | None) -> str:
    if value is None:
        return "–"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value:.0f} B"


def _rows(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _charts(charts: Sequence[str], *captions: str) -> str:
    return "".join(c for c in charts if any(f"<figcaption>{cap}" in c for cap in captions))


# --- sections ------------------------------------------------------------------------------


def _internet(internet: dict[str, Any], now: float) -> str:
    if not internet:
        return '<div><span class="state unknown" id="internet">Internet not measured</span>' \
               ' <span class="muted">(latency job off)</span></div>'
    up = internet.get("up")
    css = {True: "up", False: "down", None: "unknown"}[up]
    text = {True: "Internet up", False: "Internet down", None: "Internet: no data yet"}[up]
    since = internet.get("since")
    detail = ""
    if since is not None:
        detail = (f' <span class="muted">since {escape(_clock(since, now))} '
                  f'({_duration(internet.get("for_seconds"))})</span>')
    return f'<div><span class="state {css}" id="internet">{text}</span>{detail}</div>'


def _latency(status: dict[str, Any], charts: Sequence[str]) -> str:
    if status.get("internet") is None:
        return ""
    rows = []
    for label, t in status.get("targets", {}).items():
        loss = t.get("loss_ratio")
        rows.append((escape(label), _num(t.get("rtt_ms"), "ms"), _num(t.get("jitter_ms"), "ms"),
                     _num(None if loss is None else loss * 100, "%", 0)))
    table = _rows(("target", "RTT", "jitter", "loss"), rows, {1, 2, 3}) if rows else \
        '<p class="muted">no round yet</p>'
    return f'<section id="latency"><h2>Latency now</h2>{table}' \
           f'{_charts(charts, "Round-trip")}</section>'


def _outages(status: dict[str, Any]) -> str:
    if status.get("internet") is None:
        return ""
    now = time.time()
    rows = [(escape(_clock(o["start"], now)),
             escape(_clock(o["end"], now)) if o["end"] else '<b class="down">ongoing</b>',
             escape(_duration(o["seconds"]))) for o in status.get("outages", [])]
    table = _rows(("start", "end", "duration"), rows, {2}) if rows else \
        '<p class="muted">none in the last 24 h</p>'
    return f'<section id="outages"><h2>Outages (24 h)</h2>{table}</section>'


def _speed(status: dict[str, Any], charts: Sequence[str]) -> str:
    enabled = {job["name"] for job in status.get("jobs", [])}
    if not ({"bandwidth", "iperf"} & enabled or status.get("speedtest") or status.get("iperf")):
        return ""
    now = time.time()
    rows = []
    for name, key in (("speed&nbsp;test", "speedtest"), ("iperf", "iperf")):
        test = status.get(key)
        if test:
            if key == "speedtest" and test.get("backend"):  # which backend made the figure
                name = f"{name} ({escape(str(test['backend']))})"
            rows.append((name, _mbps(test.get("download_mbps")), _mbps(test.get("upload_mbps")),
                         escape(_clock(test["at"], now, seconds=False))))
    table = _rows(("last test", "down", "up", "at"), rows, {1, 2, 3}) if rows else \
        '<p class="muted">no test yet</p>'
    return f'<section id="speed"><h2>Speed</h2>{table}{_charts(charts, "Throughput")}</section>'


def _air(status: dict[str, Any], charts: Sequence[str]) -> str:
    air = status.get("air")
    if air is None:
        return ""
    daqi = air.get("uk_daqi")
    chip = ""
    if isinstance(daqi, int) and 1 <= daqi <= 10:
        chip = (f'<span class="chip" style="background:{DAQI_COLOURS[daqi - 1]}">DAQI {daqi} '
                f'{escape(air.get("uk_daqi_band") or "")}</span>')
    figures = (f'<p><span class="big">{_num(air.get("pm2_5"), "µg/m³")}</span> PM2.5 · '
               f'<span class="big">{_num(air.get("pm10"), "µg/m³")}</span> PM10 {chip}</p>'
               if air.get("at") else '<p class="muted">no reading yet</p>')
    return f'<section id="air"><h2>Air</h2>{figures}{_charts(charts, "PM2.5", "PM10")}</section>'


def _budget(status: dict[str, Any]) -> str:
    budget = status.get("budget")
    if budget is None:
        return ""
    used, limit = budget.get("used_bytes"), budget.get("budget_bytes")
    if limit:
        text = (f'{_bytes(used)} of {_bytes(limit)} ({(used or 0) / limit:.0%})'
                f'<meter min="0" max="{limit}" value="{used or 0}"></meter>')
    else:
        text = f"{_bytes(used)} used, no budget set"
    month = escape(budget.get("month") or "this month")
    return f'<section id="budget"><h2>Data budget {month}</h2><p>{text}</p></section>'


def _ec2(status: dict[str, Any]) -> str:
    ec2 = status.get("ec2")
    if ec2 is None:
        return ""
    state = ec2.get("state") or "not seen yet"
    rows = [("instance", escape(ec2["instance_id"])), ("state", escape(state)),
            ("running time", escape(_duration(ec2.get("running_seconds")))),
            ("data out", escape(_bytes(ec2.get("egress_bytes")))),
            ("egress cost", f'≈ ${ec2.get("estimated_egress_usd", 0):.2f}')]
    return (f'<section id="ec2"><h2>EC2 (since the daemon started)</h2>'
            f'{_rows(("", ""), rows, {1})}</section>')


def _jobs(status: dict[str, Any]) -> str:
    now = time.time()
    rows = []
    for job in status.get("jobs", []):
        health = job["health"]
        note = escape(job.get("error") or "") if health != "ok" else ""
        rows.append((escape(job["name"]), f'<span class="{health}">{health}</span>',
                     escape(_clock(job.get("last_run"), now)),
                     escape(format_duration(job["interval_seconds"])), note))
    table = _rows(("job", "health", "last run", "every", "note"), rows, set()) if rows else \
        '<p class="muted">no job enabled</p>'
    return f'<section id="jobs"><h2>Jobs</h2>{table}</section>'
