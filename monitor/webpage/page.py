"""The status page's frame: header with the internet state, the cards' sections, the jobs
table and the footer, rendered from the /api/status dict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from monitor.htmlparts import clock, duration, rows
from monitor.units import format_duration
from monitor.webpage.style import STYLE

REFRESH_SECONDS = 30
FAVICON_SVG = ("<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>"
               "<circle cx='8' cy='8' r='7' fill='{colour}'/></svg>")
COLOURS = {True: "#1f9d55", False: "#d64545", None: "#8a8f98"}


def render(status: Mapping[str, Any], sections: Sequence[str], now: float) -> str:
    """`sections`: the enabled jobs' sections (their cards'), in registry order."""
    internet = status.get("internet") or {}
    up = internet.get("up")
    favicon = FAVICON_SVG.format(colour=COLOURS[up]).replace("#", "%23")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:image/svg+xml,{favicon}">
<title>{_title(up)} · home-monitor</title><style>{STYLE}</style></head>
<body><header><h1>home-monitor</h1>{_internet(internet, now)}</header>
<main>{''.join(s for s in sections if s)}{_jobs(status, now)}</main>
<footer>home-monitor {escape(status.get("version", ""))} · {escape(clock(status.get(
        "generated_at"), now))} · refreshes every {REFRESH_SECONDS} s ·
<a href="/api/status">/api/status</a> · <a href="/metrics">/metrics</a> ·
<a href="/healthz">/healthz</a></footer></body></html>
"""


def _title(up: bool | None) -> str:
    return {True: "Internet up", False: "Internet DOWN", None: "Internet unknown"}[up]


def _internet(internet: Mapping[str, Any], now: float) -> str:
    if not internet:
        return '<div><span class="state unknown" id="internet">Internet not measured</span>' \
               ' <span class="muted">(latency job off)</span></div>'
    up = internet.get("up")
    css = {True: "up", False: "down", None: "unknown"}[up]
    text = {True: "Internet up", False: "Internet down", None: "Internet: no data yet"}[up]
    since = internet.get("since")
    detail = ""
    if since is not None:
        detail = (f' <span class="muted">since {escape(clock(since, now))} '
                  f'({duration(internet.get("for_seconds"))})</span>')
    return f'<div><span class="state {css}" id="internet">{text}</span>{detail}</div>'


def _jobs(status: Mapping[str, Any], now: float) -> str:
    found = []
    for job in status.get("jobs", []):
        health = job["health"]
        note = escape(job.get("error") or "") if health != "ok" else ""
        found.append((escape(job["name"]), f'<span class="{health}">{health}</span>',
                      escape(clock(job.get("last_run"), now)),
                      escape(format_duration(job["interval_seconds"])), note))
    table = rows(("job", "health", "last run", "every", "note"), found, set()) if found else \
        '<p class="muted">no job enabled</p>'
    return f'<section id="jobs"><h2>Jobs</h2>{table}</section>'
