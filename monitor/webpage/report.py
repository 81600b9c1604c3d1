"""`/report?month=YYYY-MM[&format=html|csv|json]`: the ISP report of `home-monitor report`,
from the same code (monitor/ledger/render.py), read from the daemon's ledger."""

from __future__ import annotations

import re
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from monitor.ledger.render import FORMATS, current_month, local_zone, render_report
from monitor.ledger.report import Plan
from monitor.ledger.store import Reader

MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
TEXT = "text/plain; charset=utf-8"


class ReportRoute:
    def __init__(self, ledger: Reader, plan: Plan, tz: ZoneInfo | None = None) -> None:
        self.ledger, self.plan, self.tz = ledger, plan, tz or local_zone()

    def __call__(self, query: str) -> tuple[int, str, bytes]:
        """(HTTP status, content type, body) for the query string after `/report?`."""
        args = parse_qs(query)
        month = (args.get("month") or [current_month(self.tz)])[0]
        fmt = (args.get("format") or ["html"])[0]
        if not MONTH.fullmatch(month):
            return 400, TEXT, f"month: expected YYYY-MM, got {month!r}\n".encode()
        if fmt not in FORMATS:
            return 400, TEXT, (f"format: expected one of {', '.join(FORMATS)}, "
                               f"got {fmt!r}\n").encode()
        content_type, body = render_report(self.ledger, month, fmt, self.tz, self.plan)
        return 200, content_type, body
