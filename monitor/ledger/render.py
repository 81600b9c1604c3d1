"""The ISP report as HTML (self-contained: inline CSS and SVG, no script, no request), CSV (the
raw rows) or JSON (the figures), and the monthly phone text. The daemon's /report and the
`report` command both call render_report()."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from html import escape
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.charts import axis_label, nice_max
from monitor.htmlparts import duration
from monitor.ledger.report import (
    DirectionSummary,
    HourLatency,
    Plan,
    Report,
    build_report,
    local_iso,
    month_bounds,
)
from monitor.ledger.store import MonthRows, Reader

DNS_ONLY = "dns"  # the latency job's cause: the line answered, names did not resolve

FORMATS = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8",
           "json": "application/json"}


def local_zone() -> ZoneInfo:
    """$TZ, else the system's zone (/etc/localtime's target or /etc/timezone), else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text().strip())
    for name in candidates:
        if name:
            # an unknown name raises ZoneInfoNotFoundError, a KeyError
            with contextlib.suppress(ValueError, OSError, KeyError):
                return ZoneInfo(name)
    return ZoneInfo("UTC")


def current_month(tz: ZoneInfo, now: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if now is None else now, tz).strftime("%Y-%m")


def previous_month(month: str) -> str:
    year, number = (int(part) for part in month.split("-"))
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def monthly_report_due(now: float, tz: ZoneInfo, last_sent: str | None) -> str | None:
    """The month whose phone report is due: the previous month, once a new local month has
    begun and until it was sent (`last_sent`, kept by the caller); None when nothing is due."""
    finished = previous_month(current_month(tz, now))
    return None if last_sent is not None and last_sent >= finished else finished


def report_for(ledger: Reader, month: str, tz: ZoneInfo, plan: Plan | None = None,
               now: float | None = None, full: bool = False) -> tuple[Report, MonthRows]:
    """The month's figures and its rows (`full`: with every latency minute, for the CSV)."""
    start, end = month_bounds(month, tz)
    rows = ledger.month_rows(start, end, full)
    now = time.time() if now is None else now
    return build_report(rows, month, tz, plan, now=now, first_seen=ledger.first_seen()), rows


def render_report(ledger: Reader, month: str, fmt: str, tz: ZoneInfo, plan: Plan | None = None,
                  now: float | None = None) -> tuple[str, bytes]:
    """(content type, body) of the month's report in `fmt` (html, csv or json)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "csv":
        start, end = month_bounds(month, tz)
        return FORMATS[fmt], to_csv(ledger.month_rows(start, end, full=True), tz).encode()
    report, _ = report_for(ledger, month, tz, plan, now)
    if fmt == "json":
        return FORMATS[fmt], json.dumps(asdict(report), indent=1).encode()
    return FORMATS[fmt], to_html(report).encode()


# --- CSV: one table of raw rows, a `record` column says which kind ------------------------------

CSV_COLUMNS = ("record", "start", "end", "seconds", "cause", "job", "backend", "server",
               "ok", "download_mbps", "upload_mbps", "latency_ms", "bytes", "target", "sent",
               "received", "rtt_mean_ms", "rtt_p95_ms", "jitter_ms", "sensor", "pm25", "pm10",
               "detail", "against_plan")  # appended: columns keep their place


def quarter_iso(tz: ZoneInfo) -> Callable[[int], str]:
    """Whole epoch seconds -> local ISO-8601, one tz lookup per quarter hour (offsets and their
    changes fall on quarter hours, so the rest is arithmetic)."""
    cache: dict[int, tuple[str, int, str]] = {}

    def iso(epoch: int) -> str:
        quarter, into = divmod(epoch, 900)
        if quarter not in cache:
            text = datetime.fromtimestamp(quarter * 900, tz).isoformat(timespec="seconds")
            cache[quarter] = (text[:14], int(text[14:16]), text[19:])
        prefix, minute, offset = cache[quarter]
        return f"{prefix}{minute + into // 60:02d}:{into % 60:02d}{offset}"

    return iso


def _num(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "" if value is None else f"{value * scale:.{digits}f}"


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:.3f}"


def to_csv(rows: MonthRows, tz: ZoneInfo) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for outage in rows.outages:
        writer.writerow({"record": "outage", "start": local_iso(outage.start, tz),
                         "end": "" if outage.end is None else local_iso(outage.end, tz),
                         "seconds": _num(outage.seconds), "cause": outage.cause or "",
                         "detail": outage.detail or ""})
    for test in rows.speed_tests:
        writer.writerow({"record": "speed_test", "start": local_iso(test.at, tz),
                         "job": test.job, "backend": test.backend, "server": test.server,
                         "ok": int(test.ok), "download_mbps": _num(test.download_bps, 1e-6),
                         "upload_mbps": _num(test.upload_bps, 1e-6),
                         "latency_ms": _num(test.latency_seconds, 1e3), "bytes": test.bytes_used,
                         "cause": test.error or "", "against_plan": int(test.against_plan)})
    plain = csv.writer(out, lineterminator="\n")
    iso = quarter_iso(tz)
    plain.writerows(  # a month of three targets: 134 000 rows, written plainly
        ("latency_minute", iso(m.minute), "", "60", "", "", "", "", "", "", "", "", "",
         m.target, m.sent, m.received, _ms(m.rtt_mean), _ms(m.rtt_p95), _ms(m.jitter),
         "", "", "", "", "") for m in rows.latency)
    for hour in rows.air_quality:
        writer.writerow({"record": "air_quality_hour", "start": local_iso(hour.hour, tz),
                         "seconds": "3600", "sensor": hour.sensor, "pm25": _num(hour.pm25),
                         "pm10": _num(hour.pm10)})
    for daemon in rows.daemon_events:
        writer.writerow({"record": f"daemon_{daemon.kind}", "start": local_iso(daemon.at, tz),
                         "server": daemon.version})
    return out.getvalue()


# --- text helpers ------------------------------------------------------------------------------


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.0f} %"


def _mbit(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _bytes(count: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def month_title(month: str) -> str:
    return datetime.strptime(month + "-01", "%Y-%m-%d").strftime("%B %Y")


def phone_text(report: Report) -> str:
    """The monthly notification: the headline figures in a few lines."""
    lines = [f"Internet report {month_title(report.month)}"]
    if report.availability_percent is None:
        lines.append("No data this month.")
    else:
        internet = [c for c in report.outages_by_cause if c.cause != "monitor_off"]
        count = sum(c.count for c in internet)
        longest = max((c.longest_seconds for c in internet), default=0.0)
        lines.append(f"Available {report.availability_percent:.2f} %: {count} outages, "
                     f"{duration(report.internet_down_seconds)} in all"
                     + (f", longest {duration(longest)}" if count else ""))
        lines += [f"Of which DNS only: {c.count}, {duration(c.total_seconds)} "
                  f"({_pct(c.share_of_down)} of the down time)"
                  for c in internet if c.cause == DNS_ONLY]
    if report.without_data_seconds >= 1:
        lines.append(f"No data (monitor off): {duration(report.without_data_seconds)}")
    for summary in (report.download, report.upload):
        figures = summary.all_hours
        if figures.tests:
            plan = "" if summary.plan_mbps is None else (
                f" of {summary.plan_mbps:g}; {_pct(figures.share_at_90)} of tests ≥ 90 %, "
                f"peak hours {_pct(summary.peak_hours.share_at_90)}")
            lines.append(f"{summary.direction.capitalize()} median "
                         f"{_mbit(figures.median_mbps)} Mbit/s{plan}")
    if report.bnetza.shortfall_indicated:
        lines.append("BNetzA-style check: a shortfall is indicated")
    return "\n".join(lines)


# --- HTML --------------------------------------------------------------------------------------

CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;
background:#fff}
main{max-width:60rem;margin:0 auto;padding:1rem}
h1{font-size:1.35rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.6rem 0 .4rem;
border-bottom:1px solid #ccd;padding-bottom:.2rem}
p.sub{color:#555;margin:.1rem 0 1rem}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(10rem,1fr));gap:.5rem}
.kpi{border:1px solid #ccd;border-radius:.4rem;padding:.5rem .7rem}
.kpi b{display:block;font-size:1.3rem}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.25rem .4rem;border-bottom:1px solid #e3e3ea;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
svg{width:100%;height:auto;display:block}
.bad{color:#a40000}.good{color:#0a6b2a}
.note{font-size:.85rem;color:#555}
@media print{
 @page{size:A4;margin:14mm}
 body{font-size:10.5pt}
 main{max-width:none;padding:0}
 h2{break-after:avoid}
 tr,.kpi,svg{break-inside:avoid}
 .scroll{overflow:visible}
}
"""


def _row(cells: list[str], numeric: set[int] | None = None, head: bool = False) -> str:
    tag = "th" if head else "td"
    numeric = numeric or set()
    return "<tr>" + "".join(
        f'<{tag}{" class=n" if i in numeric else ""}>{escape(c)}</{tag}>'
        for i, c in enumerate(cells)) + "</tr>"


def _table(head: list[str], rows: list[list[str]], numeric: set[int], caption: str = "") -> str:
    body = "".join(_row(r, numeric) for r in rows) or _row(["none"] + [""] * (len(head) - 1))
    cap = f"<caption class=note>{escape(caption)}</caption>" if caption else ""
    return (f'<div class=scroll><table>{cap}<thead>{_row(head, numeric, True)}</thead>'
            f"<tbody>{body}</tbody></table></div>")


def latency_svg(hours: list[HourLatency]) -> str:
    """Bars: p50 per hour of day; a tick: p95. Scaled to the month's highest p95."""
    width, height, left, bottom = 480, 160, 34, 18
    # an axis of whole numbers from 1 ms up: loopback or LAN RTTs of 0.04 ms still read
    top = nice_max(max([1.0] + [h.p95_ms or 0.0 for h in hours]))
    bar = (width - left) / 24
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="Latency per hour of day: median bars, 95th percentile ticks">']
    plot = height - bottom
    for fraction in (0.0, 0.5, 1.0):
        y = plot - fraction * (plot - 8)
        parts.append(f'<line x1="{left}" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#dde" stroke-width="1"/><text x="{left - 4}" y="{y + 4:.1f}" '
                     f'font-size="10" text-anchor="end">{axis_label(top * fraction)}</text>')
    for h in hours:
        x = left + h.hour * bar
        if h.p50_ms is not None:
            bar_height = h.p50_ms / top * (plot - 8)
            parts.append(f'<rect x="{x + 2:.1f}" y="{plot - bar_height:.1f}" '
                         f'width="{bar - 4:.1f}" height="{bar_height:.1f}" fill="#4a78c2"/>')
        if h.p95_ms is not None:
            y = plot - h.p95_ms / top * (plot - 8)
            parts.append(f'<line x1="{x + 2:.1f}" x2="{x + bar - 2:.1f}" y1="{y:.1f}" '
                         f'y2="{y:.1f}" stroke="#c0392b" stroke-width="2"/>')
        if h.hour % 3 == 0:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - 4}" font-size="10" '
                         f'text-anchor="middle">{h.hour:02d}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _speed_rows(summary: DirectionSummary) -> list[list[str]]:
    rows = []
    for label, figures in (("all hours", summary.all_hours),
                           ("peak 20:00–22:00", summary.peak_hours)):
        rows.append([f"{summary.direction} {label}", str(figures.tests),
                     _mbit(figures.median_mbps), _mbit(figures.p10_mbps),
                     _pct(figures.share_at_90)])
    return rows


def _when(iso: str, same_day_as: str | None = None) -> str:
    """'2026-10-10T03:00:17+01:00' -> '2026-10-10 03:00:17', or '03:00:17' on the same day as
    `same_day_as` (the zone is in the page's header)."""
    day, _, rest = iso.partition("T")
    clock = rest[:8]
    if same_day_as is not None and same_day_as.startswith(day):
        return clock
    return f"{day} {clock}"


def to_html(report: Report) -> str:
    title = f"Internet report {month_title(report.month)}"
    availability = ("no data" if report.availability_percent is None
                    else f"{report.availability_percent:.3f} %")
    plan = report.plan
    plan_text = ("no plan set (ledger.plan, or the speed-test job's plan)"
                 if plan.download_mbps is None and plan.upload_mbps is None else
                 f"download {plan.download_mbps or '–'} / upload {plan.upload_mbps or '–'} Mbit/s")
    used = sum(report.data_used_bytes.values())
    kpis = [("Available", availability),
            ("Internet down", duration(report.internet_down_seconds)),
            ("No data", duration(report.without_data_seconds)),
            ("Download median", f"{_mbit(report.download.all_hours.median_mbps)} Mbit/s"),
            ("Upload median", f"{_mbit(report.upload.all_hours.median_mbps)} Mbit/s"),
            ("Data used by tests", _bytes(used))]
    bnetza = report.bnetza
    verdict = {None: "not decidable (needs a plan and three measurement days with 10 tests "
                     "each, 5 min apart, a day between them, within 14 days)",
               True: "indicated: 90 % of the plan was missed on at least 2 of 3 such days",
               False: "not indicated"}[bnetza.shortfall_indicated]
    html = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{escape(title)}</h1>",
        f"<p class=sub>{escape(_when(report.start))} to {escape(_when(report.end))} "
        f"({escape(report.tz)}, the zone of every time here). "
        f"Plan: {escape(plan_text)}.</p>",
        "<div class=kpis>" + "".join(f"<div class=kpi>{escape(k)}<b>{escape(v)}</b></div>"
                                     for k, v in kpis) + "</div>",
        "<h2>Outages by cause</h2>",
        _table(["cause", "count", "total", "longest", "share of down time"],
               [[c.cause, str(c.count), duration(c.total_seconds),
                 duration(c.longest_seconds), _pct(c.share_of_down)]
                for c in report.outages_by_cause], {1, 2, 3, 4},
               "dns: the line worked but names did not resolve; it counts as down (nothing "
               "could be used), its share is shown here. monitor_off: no data, not down time"),
        "<h2 id=outages>Outage list</h2>",
        _table(["start", "end", "length", "cause"],
               [[_when(o.start), "ongoing" if o.end is None else _when(o.end, o.start),
                 duration(o.seconds), o.cause]
                for o in report.outages], {2},
               "monitor_off: no data, the monitor was off (power cut or restart)"),
        "<h2>Speed against the plan</h2>",
        _table(["tests", "count", "median Mbit/s", "10th pct Mbit/s", "≥ 90 % of plan"],
               _speed_rows(report.download) + _speed_rows(report.upload), {1, 2, 3, 4}),
        f"<p class=note>Failed tests: {report.failed_tests}. Data used: "
        + escape(", ".join(f"{k} {_bytes(v)}" for k, v in sorted(report.data_used_bytes.items()))
                 or "none") + ".</p>",
        "<h2>Days (BNetzA-style view)</h2>",
        f"<p>Days with tests: {bnetza.days_with_tests}; 90 % of the plan reached at least once: "
        f"{'–' if bnetza.days_reached is None else bnetza.days_reached}; "
        f"not reached: {'–' if bnetza.days_not_reached is None else bnetza.days_not_reached}. "
        f"Shortfall (criterion 1 of Vfg. 99/2021): <b>{escape(verdict)}</b>"
        + (f" (days {escape(', '.join(bnetza.measurement_days))})"
           if bnetza.measurement_days else "") + ".</p>",
        _table(["day", "tests", "5 min apart", "best download", "90 % reached"],
               [[d.day, str(d.tests), str(d.spaced_tests), _mbit(d.best_download_mbps),
                 {None: "–", True: "yes", False: "no"}[d.reached_90]] for d in report.days],
               {1, 2, 3}),
        "<p class=note>Not a certified measurement (Germany: breitbandmessung.de is); it shows "
        "whether one would likely find a shortfall. Tests here run over whatever link the "
        "monitor uses.</p>",
        "<h2>Latency and loss per hour of day</h2>",
        latency_svg(report.latency_by_hour),
        "<p class=note>Bars: median of the per-minute mean RTTs (ms); red ticks: their 95th "
        "percentile.</p>",
        _table(["hour", "minutes", "p50 ms", "p95 ms", "loss"],
               [[f"{h.hour:02d}:00", str(h.minutes), _mbit(h.p50_ms), _mbit(h.p95_ms),
                 "–" if h.loss is None else f"{100 * h.loss:.2f} %"]
                for h in report.latency_by_hour if h.minutes], {1, 2, 3, 4}),
        "</main></body></html>",
    ]
    return "\n".join(html)
