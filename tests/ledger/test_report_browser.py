"""The HTML report in Debian's Chromium (Playwright): no console error, no request anywhere,
fits a 390 px phone and A4 print, and the printed PDF carries the outage table."""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from monitor.ledger import Ledger
from monitor.ledger.render import render_report
from tests.ledger.test_report import LONDON, PLAN, seed_month
from tests.support.web_lab import CHROMIUM

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")]

A4_WIDTH_PX = 794  # 210 mm at 96 px per inch


def test_the_report_in_chromium_fits_a_phone_and_a4_and_prints_the_outages(
        tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader

    path = tmp_path / "ledger.db"
    seed = seed_month(path, LONDON, 2026, 10)
    _, body = render_report(Ledger(path), "2026-10", "html", LONDON, PLAN, now=2e9)
    page_file = tmp_path / "report.html"
    page_file.write_bytes(body)
    url = page_file.as_uri()
    found: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            for width in (390, A4_WIDTH_PX):
                page = browser.new_page(viewport={"width": width, "height": 900})
                console: list[str] = []
                requests: list[str] = []
                page.on("console", lambda m, c=console: c.append(f"{m.type}: {m.text}"))
                page.on("pageerror", lambda e, c=console: c.append(f"pageerror: {e}"))
                page.on("request", lambda r, q=requests: q.append(r.url))
                if width == A4_WIDTH_PX:
                    page.emulate_media(media="print")
                page.goto(url, wait_until="load")
                page.wait_for_timeout(300)
                found[str(width)] = {
                    "console": console, "requests": requests,
                    "scroll_width": page.evaluate("document.documentElement.scrollWidth"),
                    "outage_rows": page.eval_on_selector_all(
                        "#outages + div tbody tr", "rows => rows.length"),
                    "svg_width": page.eval_on_selector(
                        "svg", "s => s.getBoundingClientRect().width")}
                if width == A4_WIDTH_PX:
                    pdf = page.pdf(format="A4", print_background=True)
                page.close()
        finally:
            browser.close()
    for width, figures in found.items():
        assert figures["console"] == [], width
        assert figures["requests"] == [url], width  # the file itself, nothing else
        assert figures["scroll_width"] <= int(width), width
        assert figures["outage_rows"] == len(seed.internet) + len(seed.off), width
        assert 0 < figures["svg_width"] <= int(width), width
    # NFKC: the PDF's text has the font's "ﬀ" ligature where the page has "ff"
    text = unicodedata.normalize("NFKC", "\n".join(
        p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages))
    assert "Outage list" in text
    assert "monitor_off" in text
    assert "2026-10-10 03:00:17" in text  # the monitor_off row's start, local time
