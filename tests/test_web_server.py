"""The daemon's HTTP server on loopback: /metrics exposition, TLS and basic auth from a
web-config file, IPv6 listening, and connections that never send a request."""

from __future__ import annotations

import base64
import contextlib
import gzip
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from monitor.config import ConfigError, parse
from monitor.daemon import Daemon
from monitor.httpserver import BufferedRequestHandler, HttpServer
from tests.support.procs import free_port
from tests.support.tls import self_signed

PASSWORD = "correct horse battery staple"


@contextlib.contextmanager
def serving(tmp_path: Path, **top: Any) -> Iterator[Daemon]:
    """The daemon's real HTTP server (all jobs off) on a free loopback port."""
    data = {"listen": f"127.0.0.1:{free_port()}", "state_dir": str(tmp_path / "state"),
            "jobs": {name: {"enabled": False} for name in ("latency", "bandwidth", "iperf",
                                                            "aqi")}} | top
    instance = Daemon(parse(data, "test.yml"))
    instance.state_dir.mkdir(parents=True, exist_ok=True)
    instance.server.start()
    try:
        yield instance
    finally:
        instance.server.stop()


def get(url: str, headers: dict[str, str] | None = None,
        context: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_metrics_text_openmetrics_gzip_and_name_filter(tmp_path: Path) -> None:
    with serving(tmp_path) as daemon:
        base = f"http://127.0.0.1:{daemon.server.port}/metrics"
        status, headers, text = get(base)
        assert status == 200
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert b"homemon_build_info" in text
        assert b"homemon_disk_free_bytes" in text

        status, headers, body = get(base, {"Accept": "application/openmetrics-text; "
                                           "version=1.0.0"})
        assert headers["Content-Type"].startswith("application/openmetrics-text")
        assert body.endswith(b"# EOF\n")

        status, headers, body = get(base, {"Accept-Encoding": "gzip"})
        assert headers.get("Content-Encoding") == "gzip"
        assert b"homemon_build_info" in gzip.decompress(body)

        status, _, body = get(base + "?name[]=homemon_build_info&name[]=homemon_disk_size_bytes")
        names = {line.split()[2].decode() for line in body.splitlines()
                 if line.startswith(b"# TYPE")}
        assert names == {"homemon_build_info", "homemon_disk_size_bytes"}

    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                             timeout=30)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, b"", b"")


def test_disk_free_of_the_state_dir_is_computed_at_scrape_time(tmp_path: Path) -> None:
    import os

    with serving(tmp_path) as daemon:
        registry = daemon.metrics.registry
        path = os.path.abspath(daemon.state_dir)
        stat = os.statvfs(path)
        size = registry.get_sample_value("homemon_disk_size_bytes", {"path": path})
        free = registry.get_sample_value("homemon_disk_free_bytes", {"path": path})
        assert size == stat.f_blocks * stat.f_frsize
        assert free is not None
        assert abs(free - stat.f_bavail * stat.f_frsize) < 64 * 2 ** 20
        daemon.state_dir.rmdir()  # a path that cannot be read has no sample, not a 0
        assert registry.get_sample_value("homemon_disk_free_bytes", {"path": path}) is None


def _web_config(tmp_path: Path, **extra: Any) -> Path:
    cert, key = self_signed(tmp_path)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump({
        "tls_server_config": {"cert_file": str(cert), "key_file": str(key)},
        "http_server_config": {"headers": {"X-Content-Type-Options": "nosniff"}},
        "basic_auth_users": {"prometheus": hashed}} | extra))
    return path


def _auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_tls_and_basic_auth_from_a_web_config_file(tmp_path: Path) -> None:
    web = _web_config(tmp_path)
    client = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    with serving(tmp_path, web_config_file=str(web)) as daemon:
        url = f"https://127.0.0.1:{daemon.server.port}"
        for path in ("/metrics", "/", "/api/status", "/healthz"):
            status, headers, _ = get(url + path, context=client)
            assert status == 401, path
            assert headers["WWW-Authenticate"].startswith("Basic")
        assert get(url + "/metrics", _auth("prometheus", "wrong"), client)[0] == 401
        assert get(url + "/metrics", _auth("nobody", PASSWORD), client)[0] == 401
        assert get(url + "/metrics", {"Authorization": "Basic !!!"}, client)[0] == 401
        status, headers, body = get(url + "/metrics", _auth("prometheus", PASSWORD), client)
        assert status == 200
        assert b"homemon_build_info" in body
        assert headers["X-Content-Type-Options"] == "nosniff"
        # plain HTTP to the TLS port gets no answer, and the server keeps serving
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://127.0.0.1:{daemon.server.port}/metrics", timeout=5)
        # 503: the scheduler is not started here
        assert get(url + "/healthz", _auth("prometheus", PASSWORD), client)[0] == 503


def test_real_prometheus_scrapes_with_tls_and_basic_auth(tmp_path: Path) -> None:
    from tests.support.procs import prom_query, prometheus, wait_until

    web = _web_config(tmp_path)
    with serving(tmp_path, web_config_file=str(web)) as daemon, prometheus(tmp_path, {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{
            "job_name": "home-monitor", "scheme": "https",
            "tls_config": {"ca_file": str(tmp_path / "cert.pem")},
            "basic_auth": {"username": "prometheus", "password": PASSWORD},
            "static_configs": [{"targets": [f"127.0.0.1:{daemon.server.port}"]}]}],
    }) as url:
        up = wait_until(lambda: prom_query(url, 'up{job="home-monitor"} == 1'), 30,
                        what="up == 1 over https with basic auth")
        assert up[0]["value"][1] == "1"


@pytest.mark.parametrize(("web", "words"), [
    ({"basic_auth_users": {"alice": "plain-text-password"}},
     ["web_config_file", "basic_auth_users.alice", "bcrypt"]),
    ({"tls_server_config": {"cert_file": "/nonexistent/c.pem", "key_file": "/nonexistent/k"}},
     ["web_config_file", "tls_server_config", "cannot load"]),
    ({"tls_server_config": {"cert_file": "c", "key_file": "k", "cipher_suites": ["X"]}},
     ["tls_server_config.cipher_suites", "unknown key"]),
    ({"http_server_config": {"headers": {"Server": "x"}}},
     ["http_server_config.headers.Server", "cannot be set"]),
])
def test_a_bad_web_config_is_a_config_error_that_shows_no_password(
        tmp_path: Path, web: dict[str, Any], words: list[str]) -> None:
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(web))
    with pytest.raises(ConfigError) as caught:
        parse({"web_config_file": str(path)}, "test.yml")
    text = "\n".join(caught.value.problems)
    for word in words:
        assert word in text, text
    assert "plain-text-password" not in text


def test_ipv6_listening_is_decided_from_the_parsed_address(tmp_path: Path) -> None:
    port = free_port()
    with serving(tmp_path, listen=f"[::]:{port}") as daemon:
        assert daemon.server.listener.family == socket.AF_INET6
        assert get(f"http://[::1]:{port}/healthz")[0] in (200, 503)
        assert get(f"http://127.0.0.1:{port}/healthz")[0] in (200, 503)  # dual stack
    with serving(tmp_path, listen=f"[::1]:{free_port()}") as daemon:
        assert daemon.server.listener.family == socket.AF_INET6
        assert get(f"http://[::1]:{daemon.server.port}/healthz")[0] in (200, 503)


def test_the_bare_daemon_listens_on_loopback_by_default() -> None:
    assert parse({}, "test.yml").listen_address == ("127.0.0.1", 10132)


def test_a_client_that_sends_nothing_is_dropped_and_others_are_served(tmp_path: Path) -> None:
    with serving(tmp_path) as daemon:
        daemon.server.read_timeout = 1.0
        port = daemon.server.port
        silent = socket.create_connection(("127.0.0.1", port))
        dribbling = socket.create_connection(("127.0.0.1", port))
        dribbling.sendall(b"GET /metrics HTTP/1.1\r\n")
        started = time.monotonic()
        assert get(f"http://127.0.0.1:{port}/healthz")[0] in (200, 503)
        silent.settimeout(5)
        dribbling.settimeout(5)
        assert silent.recv(1) == b""  # closed by the server
        dribbling.sendall(b"X-Slow: 1\r\n")
        assert dribbling.recv(1) == b""
        assert time.monotonic() - started < 3
        silent.close()
        dribbling.close()
        assert daemon.server.dropped["read_timeout"] >= 2
        dropped = daemon.metrics.registry.get_sample_value(
            "homemon_http_connections_dropped_total", {"reason": "read_timeout"})
        assert dropped is not None
        assert dropped >= 2


def test_at_the_connection_cap_the_oldest_waiting_one_makes_room(tmp_path: Path) -> None:
    with serving(tmp_path) as daemon:
        daemon.server.max_connections = 8
        port = daemon.server.port
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        try:
            for _ in range(5):
                assert get(f"http://127.0.0.1:{port}/healthz")[0] in (200, 503)
            assert daemon.server.dropped["evicted"] >= 12
        finally:
            for sock in idle:
                sock.close()


class _BigOrSmall(BufferedRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b"x" * (16 * 2**20) if self.path == "/big" else b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_large_response_to_a_slow_but_steady_reader_is_sent_whole() -> None:
    """A month's CSV report over slow Wi-Fi: longer than write_timeout, but never stalled."""
    server = HttpServer(("127.0.0.1", 0), _BigOrSmall, write_timeout=1.0)
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            sock.sendall(b"GET /big HTTP/1.0\r\n\r\n")
            received, started = 0, time.monotonic()
            while chunk := sock.recv(64 * 1024):
                received += len(chunk)
                time.sleep(0.01)  # ~6 MB/s at most: the 16 MB take ~3 s, past write_timeout
        assert time.monotonic() - started > 1.0
        assert received > 16 * 2**20  # the head and every byte of the body
        assert server.dropped["write_timeout"] == 0
    finally:
        server.stop()


def test_clients_that_do_not_read_their_response_hold_no_worker() -> None:
    server = HttpServer(("127.0.0.1", 0), _BigOrSmall, write_timeout=2.0)
    server.start()
    stuck = []
    try:
        for _ in range(12):  # three times the worker threads, each with 16 MB unread
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(b"GET /big HTTP/1.0\r\n\r\n")
            stuck.append(sock)
        time.sleep(0.5)
        started = time.monotonic()
        status, _, body = get(f"http://127.0.0.1:{server.port}/small")
        assert (status, body) == (200, b"ok\n")
        assert time.monotonic() - started < 1.5  # not behind 12 blocked writes
        for sock in stuck:
            sock.settimeout(10)
        deadline = time.monotonic() + 6
        while server.dropped["write_timeout"] < 12 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.dropped["write_timeout"] == 12
    finally:
        for sock in stuck:
            sock.close()
        server.stop()
