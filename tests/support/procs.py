"""Real local processes for tests: the daemon, Prometheus, Alertmanager. No mocks."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from monitor.config import Config

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(predicate: Any, timeout: float, interval: float = 0.2, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last one
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what or predicate}"
                       + (f" (last error: {last_error})" if last_error else ""))


def wait_http(url: str, timeout: float = 20.0) -> None:
    wait_until(lambda: http_get(url, 1.0)[0] == 200, timeout, what=url)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def minimal_config(tmp_path: Path, port: int, **jobs: Any) -> dict[str, Any]:
    """All registered jobs off unless given; the caller adds what the test needs."""
    off = {name: {"enabled": False} for name in Config().job_configs()}
    return {"listen": f"127.0.0.1:{port}", "state_dir": str(tmp_path / "state"),
            "log": {"level": "debug", "format": "json"}, "jobs": off | jobs}


@contextlib.contextmanager
def daemon(config_path: Path, *, netns: str | None = None, log_path: Path | None = None,
           port: int | None = None, command: list[str] | None = None
           ) -> Iterator[subprocess.Popen[Any]]:
    """`home-monitor run` (or `command`) as a real process; waits for /healthz when `port` is
    given."""
    cmd = command or [sys.executable, "-m", "monitor", "run", "--config", str(config_path)]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    log_file = open(log_path or os.devnull, "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        if port is not None:
            wait_until(lambda: proc.poll() is None and http_get(
                f"http://127.0.0.1:{port}/healthz", 1.0)[0] in (200, 503), 20,
                what="daemon /healthz")
        yield proc
    finally:
        stop_process(proc)
        log_file.close()


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if not found:
        raise RuntimeError("prometheus is not installed; `make test` installs it")
    return found


@contextlib.contextmanager
def _ready_server(name: str, home: Path, cmd: list[str], url: str) -> Iterator[str]:
    """Start `cmd` with its log in `home`, wait for `url`/-/ready, stop it afterwards."""
    log = open(home / f"{name}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=home)
    try:
        wait_until(lambda: proc.poll() is None and http_get(f"{url}/-/ready", 1.0)[0] == 200,
                   30, what=f"{name} ready")
        yield url
    finally:
        stop_process(proc)
        log.close()


@contextlib.contextmanager
def prometheus(tmp_path: Path, config: dict[str, Any], *,
               extra_files: dict[str, str] | None = None) -> Iterator[str]:
    """Debian's real Prometheus on a free loopback port; yields its base URL."""
    home = tmp_path / "prometheus"
    home.mkdir(exist_ok=True)
    for name, text in (extra_files or {}).items():
        (home / name).write_text(text)
    (home / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    with _ready_server("prometheus", home, [
            prometheus_binary(), f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h", "--web.enable-lifecycle"],
            f"http://127.0.0.1:{port}") as url:
        yield url


@contextlib.contextmanager
def alertmanager(tmp_path: Path, config_text: str) -> Iterator[str]:
    """Debian's real Alertmanager on a free loopback port; yields its base URL."""
    home = tmp_path / "alertmanager"
    home.mkdir(exist_ok=True)
    (home / "alertmanager.yml").write_text(config_text)
    port, cluster = free_port(), free_port()
    with _ready_server("alertmanager", home, [
            "prometheus-alertmanager", f"--config.file={home / 'alertmanager.yml'}",
            f"--storage.path={home / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
            f"--cluster.listen-address=127.0.0.1:{cluster}"],
            f"http://127.0.0.1:{port}") as url:
        yield url


def prom_query(base_url: str, expr: str) -> list[dict[str, Any]]:
    """Instant query; raises on an API error (a bad expression fails the test)."""
    query = urllib.parse.urlencode({"query": expr})
    status, body = http_get(f"{base_url}/api/v1/query?{query}", 10)
    payload = json.loads(body)
    if status != 200 or payload.get("status") != "success":
        raise AssertionError(f"query {expr!r} failed: {payload.get('error', body[:200])}")
    return payload["data"]["result"]


def scrape_config(job: str, target: str, interval: str = "1s") -> dict[str, Any]:
    return {"job_name": job, "scrape_interval": interval, "scrape_timeout": interval,
            "static_configs": [{"targets": [target]}]}
