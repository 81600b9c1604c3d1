"""A namespace pair set up for the latency job: b answers ICMP only through our responder.

Extra addresses on b's loopback (routed from a through the veth) give each scenario its own
target, so several scenarios and socket modes run at the same time against one responder.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.netns import NetnsPair
from tests.support.procs import REPO, wait_until

RESPONDER = REPO / "tests" / "support" / "icmp_responder.py"
# run as nobody: no CAP_NET_RAW, so only the unprivileged datagram socket can work
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
NOBODY_GID = 65534


class LatencyLab:
    def __init__(self, pair: NetnsPair, addresses: Sequence[str]) -> None:
        self.pair = pair
        pair.sysctl("b", "net.ipv4.icmp_echo_ignore_all=1")  # the kernel no longer answers
        pair.sysctl("b", "net.ipv6.icmp.echo_ignore_all=1")
        for address in addresses:
            prefix = 128 if ":" in address else 32
            pair.run_b(["ip", "addr", "add", f"{address}/{prefix}", "dev", "lo"])
        pair.run_a(["ip", "route", "add", "10.77.0.0/16", "via", pair.ip_b])
        if any(":" in address for address in addresses):
            pair.run_a(["ip", "-6", "route", "add", "fd77:77::/64", "via", pair.ip6_b])
        # a directory nobody may write to: configs, state, records
        self.shared = Path(tempfile.mkdtemp(prefix="hm-latency-"))
        self.shared.chmod(0o777)

    def close(self) -> None:
        shutil.rmtree(self.shared, ignore_errors=True)

    def wait_ipv6_ready(self, timeout: float = 10.0) -> None:
        """Wait until no IPv6 address in either namespace is tentative. The veth's link-local
        addresses go through duplicate address detection (~1-2 s after link-up); until then
        neighbour discovery stalls and every echo request sent meanwhile waits in the kernel's
        queue — a fixed-schedule pinger would report that wait as RTT."""
        show = ["ip", "-6", "addr", "show", "tentative"]

        def settled() -> bool:
            return not any(run(show).stdout.strip()
                           for run in (self.pair.run_a, self.pair.run_b))

        wait_until(settled, timeout, what="IPv6 duplicate address detection")

    def ping_group_range(self, low: int, high: int) -> None:
        self.pair.sysctl("a", f"net.ipv4.ping_group_range={low} {high}")

    @contextmanager
    def responder(self, name: str, profiles: Sequence[str], seed: int = 7
                  ) -> Iterator[Responder]:
        responder = Responder(self.pair, self.shared / f"{name}.json", profiles, seed)
        try:
            yield responder
        finally:
            responder.stop()

    def command_a(self, args: Sequence[str], *, as_nobody: bool = False) -> list[str]:
        return ["ip", "netns", "exec", self.pair.ns_a, *(AS_NOBODY if as_nobody else []), *args]

    def monitor_a(self, args: Sequence[str], *, as_nobody: bool = False,
                  **kwargs: Any) -> subprocess.Popen[str]:
        cmd = self.command_a([sys.executable, "-m", "monitor", *args], as_nobody=as_nobody)
        return subprocess.Popen(cmd, cwd=REPO, text=True, **kwargs)

    def metrics_a(self, port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Scrape the daemon listening on 127.0.0.1:port inside namespace a."""
        text = self.http_a(f"http://127.0.0.1:{port}/metrics")[1]
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def http_a(self, url: str) -> tuple[int, str]:
        code = ("import sys, urllib.request, urllib.error\n"
                "try:\n    r = urllib.request.urlopen(sys.argv[1], timeout=5)\n"
                "    print(r.status); print(r.read().decode())\n"
                "except urllib.error.HTTPError as e:\n"
                "    print(e.code); print(e.read().decode())\n")
        out = subprocess.run(self.command_a([sys.executable, "-c", code, url]),
                             capture_output=True, text=True, timeout=20)
        if out.returncode != 0:
            raise ConnectionError(out.stderr.strip()[-300:])
        status, _, body = out.stdout.partition("\n")
        return int(status), body

    def write_config(self, name: str, latency: dict[str, Any], port: int = 1) -> Path:
        config = {"listen": f"127.0.0.1:{port}", "state_dir": str(self.shared / "state"),
                  "log": {"level": "info", "format": "json"},
                  # the path and DNS checks have their own tests (test_where_netns.py); here
                  # they would only add requests the responder's record does not expect
                  "jobs": {"latency": {"dns": False, "path": {"discover": False}, **latency},
                           "bandwidth": {"enabled": False},
                           "iperf": {"enabled": False}, "aqi": {"enabled": False}}}
        path = self.shared / name
        path.write_text(json.dumps(config))  # JSON is YAML
        path.chmod(0o644)
        return path


class Responder:
    def __init__(self, pair: NetnsPair, record: Path, profiles: Sequence[str],
                 seed: int) -> None:
        self.record_path = record
        ready = Path(f"{record}.ready")
        ready.unlink(missing_ok=True)
        self.proc = pair.popen_b([sys.executable, str(RESPONDER), "--record", str(record),
                                  "--seed", str(seed),
                                  *(arg for profile in profiles for arg in ("--profile", profile))])
        wait_until(lambda: ready.exists() or self.proc.poll() is not None, 10,
                   what="icmp responder ready")
        if self.proc.poll() is not None:
            raise RuntimeError(f"icmp responder exited with {self.proc.returncode}")
        self.started = ready.stat().st_mtime  # when it began answering, not when we polled
        self.record: dict[str, Any] = {}

    def silence(self) -> None:
        """Toggle silence: every request is dropped until the next call."""
        self.proc.send_signal(signal.SIGUSR1)

    def drop_next(self) -> None:
        """Drop the next request to each address."""
        self.proc.send_signal(signal.SIGUSR2)

    def stop(self) -> dict[str, Any]:
        """Stop answering; returns what it did (per address, per request)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
            self.record = json.loads(self.record_path.read_text())
        return self.record


# --- ground truth from the responder's own record ---------------------------------------------


def applied_delays(entries: Sequence[dict[str, Any]]) -> list[float]:
    """Delays of the answered requests, in the order the pinger sent them."""
    ordered = sorted(entries, key=lambda entry: (entry["id"], entry["seq"]))
    return [entry["delay"] for entry in ordered if not entry["dropped"]]


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def consecutive_jitter(values: Sequence[float]) -> float:
    return mean([abs(b - a) for a, b in zip(values, values[1:], strict=False)])


def binomial_interval(n: int, p: float, level: float = 0.95) -> tuple[int, int]:
    """Central interval of Binomial(n, p) holding at least `level` of the probability."""
    tail = (1 - level) / 2
    cdf, low, high = 0.0, None, n
    for k in range(n + 1):
        cdf += math.comb(n, k) * p ** k * (1 - p) ** (n - k)
        if low is None and cdf >= tail - 1e-12:
            low = k
        if cdf >= 1 - tail - 1e-12:
            high = k
            break
    return (low or 0), high


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return lines


def parse_ts(text: str) -> float:
    """The JSON log's UTC timestamp -> Unix seconds."""
    import calendar

    whole, _, millis = text.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + int(millis) / 1000


def is_root() -> bool:
    return os.geteuid() == 0
