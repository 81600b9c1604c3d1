"""Helpers the status-page browser test runs inside its network namespaces.

    python -m tests.support.web_lab aqi --port 8081
        a Sensor.Community / airrohr stand-in (tests.support.aqi_server) serving one local
        device at /balcony/data.json whose PM figures drift a little per request
    python -m tests.support.web_lab browse URL OUTDIR
        loads URL in headless Chromium (Debian's /usr/bin/chromium driven by Playwright, no
        browser download) at 390 px and 1280 px, writes a screenshot of each width to OUTDIR
        and prints what it saw as JSON
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
WIDTHS = (390, 1280)


def serve_aqi(port: int) -> None:
    """An airrohr device's data.json (the format tests.support.aqi_server builds)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tests.support.aqi_server import device_json

    steps = itertools.count()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if self.path != "/balcony/data.json":
                self.send_error(404)
                return
            with lock:
                step = next(steps) % 5
            body = json.dumps(device_json({
                "SDS_P1": f"{21 + 3 * step}.0", "SDS_P2": f"{9 + 2 * step}.5",
                "BME280_temperature": "19.5"}, age=10)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104 - inside a namespace
    print("ready", flush=True)
    server.serve_forever()


def browse(url: str, outdir: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    outdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"widths": {}}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        report["browser_version"] = browser.version
        try:
            for width in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": 900})
                console: list[str] = []
                bad_responses: list[str] = []
                page.on("console", lambda m, c=console: c.append(f"{m.type}: {m.text}"))
                page.on("pageerror", lambda e, c=console: c.append(f"pageerror: {e}"))
                page.on("requestfailed", lambda r, b=bad_responses: b.append(f"failed {r.url}"))
                page.on("response", lambda r, b=bad_responses: r.status >= 400 and b.append(
                    f"{r.status} {r.url}"))
                page.goto(url, wait_until="load")
                page.wait_for_timeout(500)  # late favicon requests and console messages
                shot = outdir / f"status-{width}.png"
                page.screenshot(path=str(shot), full_page=True)
                report["widths"][str(width)] = {
                    "console": console, "bad_responses": bad_responses,
                    "screenshot": str(shot),
                    "scroll_width": page.evaluate("document.documentElement.scrollWidth"),
                    "inner_width": page.evaluate("window.innerWidth"),
                    "title": page.title(),
                    "internet": page.inner_text("#internet"),
                    "charts": page.eval_on_selector_all(
                        "figure", """els => els.map(f => ({
                            caption: f.querySelector('figcaption').textContent,
                            width: f.querySelector('svg').getBoundingClientRect().width,
                            points: [...f.querySelectorAll('path.series')].map(
                                p => Number(p.dataset.points)),
                            dots: f.querySelectorAll('circle.dot').length,
                            loss_marks: f.querySelectorAll('rect.loss-mark').length,
                            bands: f.querySelectorAll('rect.band').length}))"""),
                    "outage_rows": page.eval_on_selector_all(
                        "#outages tr.outage", "rows => rows.map(r => [...r.cells].map("
                        "c => c.textContent).concat(r.nextElementSibling.textContent))"),
                    "jobs": page.eval_on_selector_all(
                        "#jobs tr", "rows => rows.slice(1).map(r => [...r.cells].map("
                                    "c => c.textContent))"),
                    "sections": page.eval_on_selector_all("section", "s => s.map(e => e.id)"),
                }
                page.close()
        finally:
            browser.close()
    return report


def main() -> int:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    aqi = commands.add_parser("aqi")
    aqi.add_argument("--port", type=int, required=True)
    page = commands.add_parser("browse")
    page.add_argument("url")
    page.add_argument("outdir", type=Path)
    args = parser.parse_args()
    if args.command == "aqi":
        serve_aqi(args.port)
        return 0
    print(json.dumps(browse(args.url, args.outdir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
