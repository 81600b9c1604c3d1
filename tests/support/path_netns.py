"""A home-to-internet path in network namespaces, for path discovery and outage causes.

    home (the daemon) 192.168.77.10 / fd00:77::10
      | LAN 192.168.77.0/24, fd00:77::/64
    router 192.168.77.1 (and .2) / fd00:77::1    WAN 100.64.0.2 (CGNAT) / 2001:db8:64::2
      | 100.64.0.0/30, 2001:db8:64::/64 (the ISP's customer side)
    isp1 100.64.0.1 / 2001:db8:64::1             198.51.100.1 / 2001:db8:51::1
      | 198.51.100.0/30, 2001:db8:51::/64
    isp2 198.51.100.2 / 2001:db8:51::2           203.0.113.1 / 2001:db8:113::1
      | 203.0.113.0/24, 2001:db8:113::/64 ("the internet")
    net  targets 203.0.113.10, .11 / 2001:db8:113::10, a dnsmasq DNS server on 203.0.113.53

Every address exists only inside these namespaces (documentation and CGNAT ranges, never
routed outside). The home namespace's system resolver is /etc/netns/<home>/resolv.conf, which
`ip netns exec` bind-mounts over /etc/resolv.conf; it is created here and removed on close.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.procs import REPO

TARGETS = ("203.0.113.10", "203.0.113.11")
TARGETS6 = ("2001:db8:113::10",)
DNS_SERVER = "203.0.113.53"
DNS_NAME = "probe.homemon.test"
DNS_ANSWER = "203.0.113.10"
ROUTER, ROUTER_B, ROUTER6 = "192.168.77.1", "192.168.77.2", "fd00:77::1"
ISP_HOP, ISP_HOP6 = "100.64.0.1", "2001:db8:64::1"
ISP_CORE, ISP_CORE6 = "198.51.100.2", "2001:db8:51::2"

NODES = ("home", "router", "isp1", "isp2", "net")
# (left node, right node, left addresses, right addresses)
LINKS = (
    ("home", "router", ["192.168.77.10/24", "fd00:77::10/64"],
     ["192.168.77.1/24", "192.168.77.2/24", "fd00:77::1/64"]),
    ("router", "isp1", ["100.64.0.2/30", "2001:db8:64::2/64"],
     ["100.64.0.1/30", "2001:db8:64::1/64"]),
    ("isp1", "isp2", ["198.51.100.1/30", "2001:db8:51::1/64"],
     ["198.51.100.2/30", "2001:db8:51::2/64"]),
    ("isp2", "net", ["203.0.113.1/24", "2001:db8:113::1/64"],
     ["203.0.113.10/24", "203.0.113.11/24", "203.0.113.53/24", "2001:db8:113::10/64"]),
)
ROUTES = {
    "home": [["default", "via", ROUTER], ["-6", "default", "via", ROUTER6]],
    "router": [["default", "via", ISP_HOP], ["-6", "default", "via", ISP_HOP6]],
    "isp1": [["default", "via", ISP_CORE], ["-6", "default", "via", ISP_CORE6],
             ["192.168.77.0/24", "via", "100.64.0.2"],
             ["-6", "fd00:77::/64", "via", "2001:db8:64::2"]],
    "isp2": [["100.64.0.0/30", "via", "198.51.100.1"], ["192.168.77.0/24", "via", "198.51.100.1"],
             ["-6", "2001:db8:64::/64", "via", "2001:db8:51::1"],
             ["-6", "fd00:77::/64", "via", "2001:db8:51::1"]],
    "net": [["default", "via", "203.0.113.1"], ["-6", "default", "via", "2001:db8:113::1"]],
}


def _run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=30)


class PathLab:
    def __init__(self) -> None:
        self.tag = secrets.token_hex(2)
        self.ns = {node: f"hm-path-{self.tag}-{node}" for node in NODES}
        self.resolv_dir = Path("/etc/netns") / self.ns["home"]
        self.shared = Path(tempfile.mkdtemp(prefix="hm-path-"))
        self.shared.chmod(0o777)
        self.dns: subprocess.Popen[str] | None = None
        self._procs: list[subprocess.Popen[Any]] = []

    def __enter__(self) -> PathLab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def dev(self, left: str, right: str) -> str:
        """The interface in `left` facing `right`."""
        return f"hp{self.tag}{left[:2]}{right[:2]}"

    def _build(self) -> None:
        for node, ns in self.ns.items():
            _run(["ip", "netns", "add", ns])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            for setting in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                            "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"):
                if node != "home" or "forwarding" not in setting:
                    self.run(node, ["sysctl", "-qw", setting])
        for left, right, left_addresses, right_addresses in LINKS:
            dev_l, dev_r = self.dev(left, right), self.dev(right, left)
            _run(["ip", "link", "add", dev_l, "netns", self.ns[left], "type", "veth",
                  "peer", "name", dev_r, "netns", self.ns[right]])
            for node, dev, addresses in ((left, dev_l, left_addresses),
                                         (right, dev_r, right_addresses)):
                for address in addresses:
                    extra = ["nodad"] if ":" in address else []
                    self.run(node, ["ip", "addr", "add", address, "dev", dev, *extra])
                self.run(node, ["ip", "link", "set", dev, "up"])
        for node, routes in ROUTES.items():
            for route in routes:
                family = route[:1] if route[0] == "-6" else []
                self.run(node, ["ip", *family, "route", "replace", *route[len(family):]])
        self.resolv_dir.mkdir(parents=True, exist_ok=True)
        (self.resolv_dir / "resolv.conf").write_text(
            f"nameserver {DNS_SERVER}\noptions timeout:1 attempts:1\n")
        self.start_dns()

    def run(self, node: str, cmd: list[str], check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        return _run(["ip", "netns", "exec", self.ns[node], *cmd], check=check)

    def popen(self, node: str, cmd: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns[node], *cmd], **kwargs)
        self._procs.append(proc)
        return proc

    def start_dns(self) -> None:
        self.dns = self.popen("net", [
            "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
            f"--listen-address={DNS_SERVER}", "--bind-interfaces", "--port=53",
            f"--address=/{DNS_NAME}/{DNS_ANSWER}", f"--pid-file={self.shared}/dnsmasq.pid",
            "--user=root", "--log-facility=-"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)

    def stop_dns(self) -> None:
        if self.dns is not None and self.dns.poll() is None:
            self.dns.terminate()
            self.dns.wait(10)
        self.dns = None

    def link(self, left: str, right: str, up: bool) -> None:
        """Cut or restore `left`'s side of the link to `right`."""
        self.run(left, ["ip", "link", "set", self.dev(left, right), "up" if up else "down"])

    def restore_routes(self, node: str) -> None:
        """Routes over a link that went down are gone; put them back."""
        for route in ROUTES[node]:
            family = route[:1] if route[0] == "-6" else []
            self.run(node, ["ip", *family, "route", "replace", *route[len(family):]], check=False)

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for ns in self.ns.values():
            pids = _run(["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in pids:
                _run(["kill", "-9", pid], check=False)
            _run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(self.resolv_dir, ignore_errors=True)
        shutil.rmtree(self.shared, ignore_errors=True)

    # --- the daemon in `home` ---

    def write_config(self, name: str, latency: dict[str, Any], port: int) -> Path:
        config = {"listen": f"127.0.0.1:{port}", "state_dir": str(self.shared / "state"),
                  "log": {"level": "info", "format": "json"},
                  "jobs": {"latency": latency, "bandwidth": {"enabled": False},
                           "iperf": {"enabled": False}, "aqi": {"enabled": False}}}
        path = self.shared / name
        path.write_text(json.dumps(config))  # JSON is YAML
        path.chmod(0o644)
        return path

    def daemon(self, config: Path, log: Path) -> subprocess.Popen[Any]:
        with open(log, "w") as log_file:
            return self.popen("home", [sys.executable, "-m", "monitor", "run", "--config",
                                       str(config)], cwd=REPO, stdout=log_file,
                              stderr=subprocess.STDOUT)

    def metrics(self, port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        code = ("import sys, urllib.request\n"
                "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())\n")
        out = self.run("home", [sys.executable, "-c", code, f"http://127.0.0.1:{port}/metrics"])
        samples = {}
        for family in text_string_to_metric_families(out.stdout):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def add_second_lan(self) -> None:
        """A second link home <-> router (192.168.78.0/24), for a default-route change."""
        home, router = f"hp{self.tag}h2", f"hp{self.tag}r2"
        _run(["ip", "link", "add", home, "netns", self.ns["home"], "type", "veth",
              "peer", "name", router, "netns", self.ns["router"]])
        self.run("home", ["ip", "addr", "add", "192.168.78.10/24", "dev", home])
        self.run("router", ["ip", "addr", "add", "192.168.78.1/24", "dev", router])
        self.run("home", ["ip", "link", "set", home, "up"])
        self.run("router", ["ip", "link", "set", router, "up"])
        self.run("isp1", ["ip", "route", "replace", "192.168.78.0/24", "via", "100.64.0.2"])
        self.run("isp2", ["ip", "route", "replace", "192.168.78.0/24", "via", "198.51.100.1"])
