"""The daemon's HTTP endpoints: /metrics, /healthz, the status page at / and /api/status.

/metrics is prometheus_client's own exposition: the text format, OpenMetrics when the scraper
asks for it (`Accept: application/openmetrics-text`), gzip when accepted, and the `name[]`
filter. The connection handling (timeouts, the connection cap) is in monitor/httpserver.py;
TLS and basic auth come from the web-config file (monitor/webconfig.py).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted

from monitor import __version__
from monitor.httpserver import BufferedRequestHandler, HttpServer
from monitor.webconfig import BasicAuth, WebConfig, load_web_config, ssl_context
from monitor.webpage.statuspage import StatusPage

MIN_GZIP_BYTES = 1024  # smaller bodies gain nothing from it


def metrics_body(registry: CollectorRegistry, accept: str, accept_encoding: str,
                 query: str) -> tuple[bytes, list[tuple[str, str]]]:
    """The exposition prometheus_client's own handlers send, for these request headers."""
    encoder, content_type = choose_encoder(accept)
    names = parse_qs(query).get("name[]")
    source = registry.restricted_registry(names) if names else registry
    body = encoder(source)
    headers = [("Content-Type", content_type)]
    if gzip_accepted(accept_encoding) and len(body) >= MIN_GZIP_BYTES:
        body = gzip.compress(body, compresslevel=6)
        headers.append(("Content-Encoding", "gzip"))
    return body, headers


def make_handler(registry: CollectorRegistry, page: StatusPage,
                 healthy: Callable[[], tuple[bool, str]], *, auth: BasicAuth | None = None,
                 extra_headers: dict[str, str] | None = None
                 ) -> type[BufferedRequestHandler]:
    added = list((extra_headers or {}).items())

    class Handler(BufferedRequestHandler):
        server_version = f"home-monitor/{__version__}"

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if auth is not None and not auth.allows(self.headers.get("Authorization")):
                self._send(401, "text/plain; charset=utf-8", b"Unauthorized\n",
                           [("WWW-Authenticate", 'Basic realm="home-monitor"')])
                return
            path, _, query = self.path.partition("?")
            if path == "/metrics":
                body, headers = metrics_body(registry, self.headers.get("Accept", ""),
                                             self.headers.get("Accept-Encoding", ""), query)
                self._send(200, headers[0][1], body, headers[1:])
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

        def _send(self, status: int, content_type: str, body: bytes,
                  headers: list[tuple[str, str]] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in [*(headers or []), *added]:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # scrapes every 15 s would drown the job logs

    return Handler


def build_server(address: tuple[str, int], registry: CollectorRegistry, page: StatusPage,
                 healthy: Callable[[], tuple[bool, str]],
                 web_config_file: str | None = None) -> HttpServer:
    """The server for every endpoint, with TLS and basic auth when the web-config asks."""
    web = load_web_config(web_config_file) if web_config_file else WebConfig()
    auth = BasicAuth(web.basic_auth_users) if web.basic_auth_users else None
    handler = make_handler(registry, page, healthy, auth=auth,
                           extra_headers=web.http_server_config.headers)
    tls = ssl_context(web.tls_server_config) if web.tls_server_config else None
    return HttpServer(address, handler, tls=tls)
