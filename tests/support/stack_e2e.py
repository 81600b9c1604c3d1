"""The whole alert path in the topology of a real home, on a NetnsPair:

    namespace a = home: daemon (latency job pinging b) -> Prometheus (repo config + rules)
        -> Alertmanager (repo routing, config rendered by the shipped renderer)
        -> the local ntfy server stand-in (secrets/home_ntfy_url), on a's loopback
    namespace b = the internet, beyond the cut: the ping target (b's kernel answers) and one
        webhook sink standing in for the cloud phone app (secrets/ntfy_url, path /phone) and
        the dead-man's switch (secrets/heartbeat_url, path /heartbeat)

The host reaches everything through `ip netns exec` (netns_http_get). Cutting the veth
(pair.link(False)) is the outage: it cuts the pings *and* Alertmanager's way to the phone
services, as a real outage does.

What is rewritten, and nothing else: the addresses in prometheus.yml (the compose service names
become loopback ports; targets that don't exist here become a closed port), the secret files
the renderer reads (the sinks' URLs) and, when a caller asks for faster timing (the test does,
the benchmark doesn't), the intervals given in `Timing`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.netns import NetnsPair
from tests.support.procs import stop_process, wait_until, write_config
from tests.support.stack_configs import REPO, load_yaml, write_alertmanager_copy

PROM_PORT, AM_PORT, MONITOR_PORT, SINK_PORT, CLOSED_PORT = 9090, 9093, 10132, 8099, 1
HOME_SINK_PORT = 8098
DAEMON_TZ = "America/St_Johns"  # UTC-03:30: an offset a wrong local-time conversion can't hide

_GET = """
import json, sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as r:
        print(json.dumps([r.status, r.read().decode(errors="replace")]))
except urllib.error.HTTPError as e:
    print(json.dumps([e.code, e.read().decode(errors="replace")]))
"""


def netns_http_get(ns: str, url: str, timeout: float = 5.0) -> tuple[int, str]:
    """GET from inside namespace `ns`; raises OSError when nothing answers."""
    result = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", _GET, url,
                             str(timeout)], capture_output=True, text=True,
                            timeout=timeout + 10)
    if result.returncode != 0:
        raise OSError(result.stderr.strip().splitlines()[-1] if result.stderr else url)
    status, body = json.loads(result.stdout)
    return int(status), body


def netns_prom_query(ns: str, base_url: str, expr: str) -> list[dict[str, Any]]:
    status, body = netns_http_get(ns, f"{base_url}/api/v1/query?"
                                  + urllib.parse.urlencode({"query": expr}), 10)
    payload = json.loads(body)
    if status != 200 or payload.get("status") != "success":
        raise AssertionError(f"query {expr!r} failed: {payload.get('error', body[:200])}")
    return payload["data"]["result"]


@dataclass(frozen=True)
class Timing:
    """The intervals of the alert path. The defaults are what the repo ships."""

    ping_interval: str | None = None            # None: keep config/home-monitor.yml's
    ping_timeout: str | None = None
    ping_count: int | None = None
    scrape_interval: str | None = None         # None: keep prometheus.yml's
    evaluation_interval: str | None = None
    critical_group_interval: str | None = None  # None: keep alertmanager.yml's


def prometheus_config_here(timing: Timing) -> dict[str, Any]:
    """The repo's prometheus.yml with compose service addresses mapped to loopback ports."""
    config = load_yaml("prometheus/prometheus.yml")
    addresses = {"monitor:10132": f"127.0.0.1:{MONITOR_PORT}",
                 "localhost:9090": f"127.0.0.1:{PROM_PORT}",
                 "alertmanager:9093": f"127.0.0.1:{AM_PORT}"}
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [addresses.get(t, f"127.0.0.1:{CLOSED_PORT}")
                                 for t in static["targets"]]
    for manager in config["alerting"]["alertmanagers"]:
        for static in manager["static_configs"]:
            static["targets"] = [addresses[t] for t in static["targets"]]
    if timing.scrape_interval:
        config["global"]["scrape_interval"] = timing.scrape_interval
        config["global"]["scrape_timeout"] = timing.scrape_interval
        for job in config["scrape_configs"]:
            job.pop("scrape_interval", None)
    if timing.evaluation_interval:
        config["global"]["evaluation_interval"] = timing.evaluation_interval
    return config


def alertmanager_copy_here(directory: Path, secrets: dict[str, str], timing: Timing) -> Path:
    path = write_alertmanager_copy(directory, secrets)
    if timing.critical_group_interval:
        config = yaml.safe_load(path.read_text())
        for route in config["route"]["routes"]:
            if 'severity="critical"' in route["matchers"]:
                route["group_interval"] = timing.critical_group_interval
        path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


class AlertPath:
    def __init__(self, pair: NetnsPair, home: Path, timing: Timing | None = None) -> None:
        self.pair, self.home, self.timing = pair, home, timing or Timing()
        self.ns = pair.ns_a
        self.prometheus_url = f"http://127.0.0.1:{PROM_PORT}"
        self.alertmanager_url = f"http://127.0.0.1:{AM_PORT}"
        self.sink_files = {"beyond": home / "beyond.jsonl", "home": home / "home-ntfy.jsonl"}
        self._stack = contextlib.ExitStack()

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> AlertPath:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _background(self, cmd: list[str], log_name: str, side: str = "a",
                    env: dict[str, str] | None = None) -> None:
        log = self._stack.enter_context((self.home / log_name).open("wb"))
        proc = self.pair.popen(side, cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.home,
                               env=env)
        self._stack.callback(stop_process, proc)

    def _wait_http(self, url: str, what: str, timeout: float = 30, ns: str | None = None
                   ) -> None:
        wait_until(lambda: netns_http_get(ns or self.ns, url, 2)[0] == 200, timeout,
                   interval=0.5, what=what)

    def _start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        # what docker-compose.yml sets for the monitor container: unprivileged ping sockets
        self.pair.sysctl("a", "net.ipv4.ping_group_range=0 2147483647")

        sink = [sys.executable, str(Path(__file__).with_name("stack_sink.py"))]
        self._background([*sink, "--host", self.pair.ip_b, "--port", str(SINK_PORT),
                          "--out", str(self.sink_files["beyond"])], "sink-beyond.log", "b")
        self._background([*sink, "--port", str(HOME_SINK_PORT),
                          "--out", str(self.sink_files["home"])], "sink-home.log")
        for path in self.sink_files.values():
            path.touch()
        beyond = f"http://{self.pair.ip_b}:{SINK_PORT}"
        secrets = {"ntfy_url": f"{beyond}/phone", "heartbeat_url": f"{beyond}/heartbeat",
                   "home_ntfy_url": f"http://127.0.0.1:{HOME_SINK_PORT}/home-ntfy"}

        shipped = load_yaml("config/home-monitor.yml")
        # no DNS server in this topology: the DNS check would report a DNS outage of its own
        # (tests/jobs/latency/test_where_netns.py covers it); here only the internet is cut
        latency = shipped["jobs"]["latency"] | {
            "targets": [{"host": self.pair.ip_b, "name": "b", "internet": True}], "dns": False}
        for key, value in (("interval", self.timing.ping_interval),
                           ("timeout", self.timing.ping_timeout),
                           ("count", self.timing.ping_count)):
            if value is not None:
                latency[key] = value
        config = {"listen": f"127.0.0.1:{MONITOR_PORT}", "state_dir": str(self.home / "state"),
                  "log": shipped["log"], "jobs": {
                      "latency": latency, "bandwidth": {"enabled": False},
                      "iperf": {"enabled": False}, "aqi": {"enabled": False}}}
        config_path = write_config(self.home / "home-monitor.yml", config)
        # as compose runs it: TZ set, so the outage labels are local time
        env = os.environ | {"TZ": DAEMON_TZ, "PYTHONPATH": str(REPO)}
        self._background([sys.executable, "-m", "monitor", "run", "--config", str(config_path)],
                         "daemon.log", env=env)

        am_dir = self.home / "alertmanager"
        am_config = alertmanager_copy_here(am_dir, secrets, self.timing)
        self._background(["prometheus-alertmanager", f"--config.file={am_config}",
                          f"--storage.path={am_dir / 'data'}",
                          f"--web.listen-address=127.0.0.1:{AM_PORT}",
                          "--cluster.listen-address="], "alertmanager.log")

        prom_dir = self.home / "prometheus"
        shutil.copytree(REPO / "prometheus" / "rules", prom_dir / "rules")
        (prom_dir / "prometheus.yml").write_text(
            yaml.safe_dump(prometheus_config_here(self.timing), sort_keys=False))
        self._background(["prometheus", f"--config.file={prom_dir / 'prometheus.yml'}",
                          f"--storage.tsdb.path={prom_dir / 'data'}",
                          f"--web.listen-address=127.0.0.1:{PROM_PORT}",
                          "--storage.tsdb.retention.time=1h"], "prometheus.log")

        self._wait_http(f"{beyond}/", "phone sink beyond the cut", ns=self.pair.ns_b)
        self._wait_http(f"http://127.0.0.1:{HOME_SINK_PORT}/", "local ntfy sink")
        self._wait_http(f"http://127.0.0.1:{MONITOR_PORT}/healthz", "daemon /healthz")
        self._wait_http(f"{self.alertmanager_url}/-/ready", "alertmanager ready")
        self._wait_http(f"{self.prometheus_url}/-/ready", "prometheus ready")

    # --- use ---------------------------------------------------------------------------------

    def query(self, expr: str) -> list[dict[str, Any]]:
        return netns_prom_query(self.ns, self.prometheus_url, expr)

    def wait_internet_up(self, timeout: float = 120) -> None:
        """Until Prometheus has scraped the daemon and the rules see the internet up."""
        wait_until(lambda: self.query('up{job="home-monitor"} == 1')
                   and self.query("homemon_internet_up == 1")
                   and not self.query('ALERTS{alertname="InternetDown"}'),
                   timeout, interval=1, what="internet up as Prometheus sees it")

    def cut(self) -> float:
        self.pair.link(False)
        return time.time()

    def restore(self) -> float:
        self.pair.link(True)
        return time.time()

    def received(self, sink: str, path: str) -> list[tuple[float, dict[str, Any]]]:
        """(time, body) of every POST to `path` at `sink` ("beyond" the cut, or "home")."""
        found = []
        for line in self.sink_files[sink].read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record.get("path", "").split("?")[0] == path:
                found.append((record["received"], record.get("body", {})))
        return found

    def notifications(self, alertname: str, status: str | None = None, *, after: float = 0.0,
                      where: str = "phone") -> list[tuple[float, dict[str, Any]]]:
        """At the cloud phone app ("phone", beyond the cut) or the local ntfy ("home")."""
        sink, path = ("home", "/home-ntfy") if where == "home" else ("beyond", "/phone")
        return [(when, body) for when, body in self.received(sink, path)
                if when >= after and status in (None, body.get("status"))
                and body.get("commonLabels", {}).get("alertname") == alertname]

    def wait_notification(self, alertname: str, status: str, *, after: float,
                          timeout: float, where: str = "phone") -> tuple[float, dict[str, Any]]:
        return wait_until(lambda: self.notifications(alertname, status, after=after,
                                                     where=where),
                          timeout, interval=0.25, what=f"{alertname} {status} at {where}")[0]

    def heartbeats(self, after: float = 0.0) -> list[float]:
        return [when for when, body in self.received("beyond", "/heartbeat")
                if when >= after and body.get("commonLabels", {}).get("alertname") == "Watchdog"]

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
                         for path in sorted(self.home.glob("*.log")))


@contextlib.contextmanager
def alert_path(tag: str, home: Path, timing: Timing | None = None) -> Iterator[AlertPath]:
    with NetnsPair(tag) as pair, AlertPath(pair, home, timing) as path:
        yield path
