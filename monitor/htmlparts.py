"""Formatting shared by the status page's frame and the jobs' cards: numbers, durations,
clock times, tables. Plain functions of their arguments (the caller passes `now`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any


def iso(at: float | None) -> str | None:
    """Local time with its offset, to the second: what a person and Home Assistant both read."""
    if at is None:
        return None
    return datetime.fromtimestamp(at).astimezone().isoformat(timespec="seconds")


def epoch(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text).timestamp()


def clock(text: str | None, now: float, *, seconds: bool = True) -> str:
    """'14:02:05' (or '14:02') today, 'Mon 23:10' within the last 6 days (a 24 h list on a
    phone), 'Mon 30 Nov 23:10' before that; '–' for never."""
    at = epoch(text)
    if at is None:
        return "–"
    local = time.localtime(at)
    if time.strftime("%Y%m%d", local) == time.strftime("%Y%m%d", time.localtime(now)):
        return time.strftime("%H:%M:%S" if seconds else "%H:%M", local)
    return time.strftime("%a %H:%M" if now - at < 6 * 86400 else "%a %d %b %H:%M", local)


def duration(seconds: float | None) -> str:
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


def num(value: Any, unit: str, digits: int = 1) -> str:
    if value is None:
        return '<span class="muted">–</span>'
    return f"{value:,.{digits}f} {unit}".strip()


def mbps(value: float | None) -> str:
    return num(value, "Mbit/s", 0 if value is not None and value >= 100 else 1)


def data_size(value: float | None) -> str:
    if value is None:
        return "–"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value:.0f} B"


def rows(header: Sequence[str], cells: Sequence[Sequence[str]], numeric: set[int]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in cells)
    return f"<table><tr>{head}</tr>{body}</table>"



