"""The HTTP server: /metrics, /healthz, the status page at / and /api/status."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitor import __version__
from monitor.webpage.statuspage import StatusPage


def make_handler(registry: CollectorRegistry, page: StatusPage,
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
                self._send(200, "text/html; charset=utf-8", page.html())
            elif path == "/api/status":
                self._send(200, "application/json", page.api())
            elif path == "/favicon.ico":  # the page links an inline icon; this is for others
                self._send(200, "image/svg+xml", page.favicon())
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
