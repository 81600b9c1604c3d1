"""Test hosts in network namespaces that the test itself creates and removes.

    with NetnsPair("lat") as pair:          # namespaces hm-lat-XXXX-a and hm-lat-XXXX-b
        pair.run_b(["sysctl", "-w", "net.ipv4.icmp_echo_ignore_all=1"])
        pair.shape("b", rate_mbit=40)        # traffic leaving b (a's download) at 40 Mbit/s
        proc = pair.popen_b(["iperf3", "-s"])
        pair.run_a(["ping", "-c1", pair.ip_b])

Addresses live only inside the pair: a = 10.77.0.1 / fd77::1, b = 10.77.0.2 / fd77::2.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from typing import Any

import pytest

IP_A, IP_B = "10.77.0.1", "10.77.0.2"
IP6_A, IP6_B = "fd77::1", "fd77::2"


def netns_available() -> bool:
    if os.geteuid() != 0 or not shutil.which("ip"):
        return False
    probe = f"hm-probe-{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode == 0
    if made:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return made


requires_netns = pytest.mark.skipif(not netns_available(),
                                    reason="needs root and `ip netns` (CI runs as root)")


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)


class NetnsPair:
    def __init__(self, tag: str) -> None:
        suffix = secrets.token_hex(2)
        self.ns_a = f"hm-{tag}-{suffix}-a"
        self.ns_b = f"hm-{tag}-{suffix}-b"
        self.veth_a = f"hm{suffix}a"
        self.veth_b = f"hm{suffix}b"
        self.ip_a, self.ip_b, self.ip6_a, self.ip6_b = IP_A, IP_B, IP6_A, IP6_B
        self._procs: list[subprocess.Popen[Any]] = []

    def __enter__(self) -> NetnsPair:
        try:
            for ns in (self.ns_a, self.ns_b):
                _run(["ip", "netns", "add", ns])
                _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            _run(["ip", "link", "add", self.veth_a, "netns", self.ns_a, "type", "veth",
                  "peer", "name", self.veth_b, "netns", self.ns_b])
            for ns, dev, ip4, ip6 in ((self.ns_a, self.veth_a, IP_A, IP6_A),
                                      (self.ns_b, self.veth_b, IP_B, IP6_B)):
                _run(["ip", "-n", ns, "addr", "add", f"{ip4}/24", "dev", dev])
                _run(["ip", "-n", ns, "addr", "add", f"{ip6}/64", "dev", dev, "nodad"])
                _run(["ip", "-n", ns, "link", "set", dev, "up"])
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for ns in (self.ns_a, self.ns_b):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                  text=True).stdout.split()
            for pid in pids:
                subprocess.run(["kill", "-9", pid], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def _ns(self, side: str) -> str:
        return {"a": self.ns_a, "b": self.ns_b}[side]

    def dev(self, side: str) -> str:
        return {"a": self.veth_a, "b": self.veth_b}[side]

    def run(self, side: str, cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return _run(["ip", "netns", "exec", self._ns(side), *cmd], **kwargs)

    def run_a(self, cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run("a", cmd, **kwargs)

    def run_b(self, cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run("b", cmd, **kwargs)

    def popen(self, side: str, cmd: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """A background process inside the namespace, killed when the pair closes."""
        proc = subprocess.Popen(["ip", "netns", "exec", self._ns(side), *cmd], **kwargs)
        self._procs.append(proc)
        return proc

    def popen_a(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        return self.popen("a", cmd, **kwargs)

    def popen_b(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        return self.popen("b", cmd, **kwargs)

    def sysctl(self, side: str, setting: str) -> None:
        self.run(side, ["sysctl", "-qw", setting])

    def shape(self, side: str, rate_mbit: float, *, latency_ms: float = 50,
              burst_bytes: int | None = None) -> None:
        """Token-bucket limit on traffic *leaving* `side` (b -> a is a's download)."""
        burst = burst_bytes or max(32_000, int(rate_mbit * 1e6 / 8 / 250))
        self.run(side, ["tc", "qdisc", "replace", "dev", self.dev(side), "root", "tbf",
                        "rate", f"{rate_mbit}mbit", "burst", str(burst),
                        "latency", f"{latency_ms}ms"])

    def unshape(self, side: str) -> None:
        subprocess.run(["ip", "netns", "exec", self._ns(side), "tc", "qdisc", "del", "dev",
                        self.dev(side), "root"], capture_output=True)

    def link(self, up: bool) -> None:
        """Cut or restore the wire (both ends)."""
        for side in ("a", "b"):
            self.run(side, ["ip", "link", "set", self.dev(side), "up" if up else "down"])
