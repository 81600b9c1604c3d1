"""The HTTP server: /metrics, /healthz and a small status page at /."""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitor import __version__
from monitor.logs import human
from monitor.runner import JobRunner
from monitor.units import format_duration


def status_page(runners: Sequence[JobRunner]) -> str:
    rows = []
    for runner in runners:
        last = runner.last
        success = (time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(runner.last_success))
                   if runner.last_success else "never")
        figures = ""
        if last is not None:
            figures = human(last.summary)
            if last.error:
                figures = last.error
        rows.append(
            "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in (
                runner.name, format_duration(runner.interval),
                last.result if last else "not run yet", success, figures)) + "</tr>")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>home-monitor</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.3em 1em;text-align:left;
border-bottom:1px solid #ddd}}</style></head>
<body><h1>home-monitor {html.escape(__version__)}</h1>
<table><tr><th>job</th><th>interval</th><th>last result</th><th>last success</th>
<th>key figures</th></tr>
{''.join(rows) or '<tr><td colspan="5">no job enabled</td></tr>'}
</table>
<p><a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a></p></body></html>
"""


def make_handler(registry: CollectorRegistry, runners: Sequence[JobRunner],
                 healthy: Callable[[], tuple[bool, str]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"home-monitor/{__version__}"

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path == "/healthz":
                ok, why = healthy()
                self._send(200 if ok else 503, "text/plain; charset=utf-8",
                           (why + "\n").encode())
            elif path == "/":
                self._send(200, "text/html; charset=utf-8", status_page(runners).encode())
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # scrapes every 15 s would drown the job logs

    return Handler


class MetricsServer:
    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        family_server = _server_class(address[0])
        self.httpd = family_server(address, handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="http",
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _server_class(host: str) -> type[ThreadingHTTPServer]:
    if ":" not in host:
        return ThreadingHTTPServer
    import socket

    class V6Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6

    return V6Server
