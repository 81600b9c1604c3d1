"""Where it broke, on a real path: home -> router -> ISP (two hops, CGNAT customer side) ->
"internet" (targets, dnsmasq), all in namespaces this test makes (tests/support/path_netns.py).

Each segment is cut in turn for a few seconds; every cut must be exactly one outage, with the
right cause, as long as the cut (±1 s; ±1 DNS interval for DNS)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.latency_netns import log_lines
from tests.support.netns import requires_netns
from tests.support.path_netns import (
    DNS_NAME,
    ISP_CORE,
    ISP_CORE6,
    ISP_HOP,
    ISP_HOP6,
    ROUTER,
    ROUTER6,
    TARGETS,
    TARGETS6,
    PathLab,
)
from tests.support.procs import stop_process, wait_until

pytestmark = requires_netns
PORT = 10132
CUT = 6.0  # seconds each segment is down
DNS_INTERVAL = 1.0


def _config(lab: PathLab, name: str, targets: list[str], **extra: Any) -> Path:
    latency: dict[str, Any] = {
        "interval": "2s", "timeout": "10s", "count": 2, "packet_interval": "1s",
        "packet_timeout": "1s", "outage_after": 3,
        "targets": [{"host": host, "internet": True} for host in targets],
        "dns": {"interval": f"{DNS_INTERVAL:g}s", "timeout": "500ms", "name": DNS_NAME},
    }
    latency.update(extra)
    return lab.write_config(name, latency, PORT)


def _hops(lab: PathLab) -> dict[str, str]:
    return {dict(labels)["role"]: dict(labels)["address"]
            for (name, labels), value in lab.metrics(PORT).items()
            if name == "homemon_path_hop_info" and value == 1}


def _value(lab: PathLab, name: str, **labels: str) -> float | None:
    return lab.metrics(PORT).get((name, tuple(sorted(labels.items()))))


def _ends(log: Path) -> list[dict[str, Any]]:
    return [line for line in log_lines(log)
            if line["msg"].startswith(("internet back after", "DNS back after"))]


def _wait_steady(lab: PathLab, hops: dict[str, str]) -> None:
    wait_until(lambda: _hops(lab) == hops, 30, what=f"path discovered: {hops}")
    wait_until(lambda: (_value(lab, "homemon_path_sent_total", role="isp") or 0) >= 3
               and _value(lab, "homemon_internet_up") == 1
               and _value(lab, "homemon_dns_up", resolver="system") == 1, 30,
               what="hops probed, internet up, names resolve")


def test_each_cut_segment_is_one_outage_with_its_cause() -> None:
    """Unprivileged ICMP sockets (the default where allowed): Time Exceeded comes from the
    socket's error queue."""
    with PathLab() as lab:
        lab.run("home", ["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"])
        log = lab.shared / "where.log"
        daemon = lab.daemon(_config(lab, "where.yml", list(TARGETS)), log)
        try:
            _wait_steady(lab, {"home": ROUTER, "isp": ISP_HOP})
            assert any(line["msg"] == "latency: using unprivileged ICMP datagram sockets "
                       "(net.ipv4.ping_group_range)" for line in log_lines(log))

            def relink(left: str, right: str, *routes: str) -> Callable[[], None]:
                def restore() -> None:
                    lab.link(left, right, True)
                    for node in routes:
                        lab.restore_routes(node)
                return restore

            scenarios = [
                ("home", lambda: lab.link("router", "home", False),
                 relink("router", "home")),
                ("isp", lambda: lab.link("router", "isp1", False),
                 relink("router", "isp1", "router")),
                ("upstream", lambda: lab.link("isp2", "net", False),
                 relink("isp2", "net", "isp2", "net")),
                ("dns", lab.stop_dns, lab.start_dns),
            ]
            cuts: dict[str, tuple[float, float]] = {}
            for cause, cut, restore in scenarios:
                ended = len(_ends(log))
                began = time.time()
                cut()
                time.sleep(CUT - 1)
                if cause != "dns":  # the cause known so far, for InternetDown's text
                    assert _value(lab, "homemon_internet_outage_cause", cause=cause) == 1
                else:
                    assert _value(lab, "homemon_dns_current_outage_seconds") > 0
                time.sleep(max(0.0, began + CUT - time.time()))
                restored = time.time()
                restore()
                cuts[cause] = (began, restored)
                wait_until(lambda ended=ended: len(_ends(log)) > ended, 20,
                           what=f"the {cause} outage's end")
                _wait_steady(lab, {"home": ROUTER, "isp": ISP_HOP})
                time.sleep(2)
            recent = {dict(labels)["cause"]: value
                      for (name, labels), value in lab.metrics(PORT).items()
                      if name == "homemon_internet_recent_outage_seconds"}
        finally:
            stop_process(daemon)
        ends = _ends(log)
        for line in ends:
            print(f"{line['cause']}: {line['outage_seconds']} s - {line['detail']}")
        assert [line["cause"] for line in ends] == ["home", "isp", "upstream", "dns"]
        for line in ends:
            began, restored = cuts[line["cause"]]
            slack = DNS_INTERVAL + 0.5 if line["cause"] == "dns" else 1.0
            print(f"{line['cause']}: cut {restored - began:.2f} s, outage "
                  f"{line['outage_seconds']:.2f} s, from {line['start'] - began:+.2f} s")
            assert line["outage_seconds"] == pytest.approx(restored - began, abs=slack)
            assert line["start"] == pytest.approx(began, abs=slack)
        assert recent.keys() == {"home", "isp", "upstream", "dns"}
        downs = [line["msg"] for line in log_lines(log)
                 if line["msg"] in ("internet down", "DNS down: names do not resolve while "
                                    "pings answer")]
        assert len(downs) == 4
        isp_line = next(line for line in ends if line["cause"] == "isp")
        assert isp_line["detail"] == ("your router answered, the ISP's first hop (100.64.0.1) "
                                      "did not — the break was at your ISP")


def test_discovery_raw_sockets_ipv6_and_a_route_change() -> None:
    """Raw sockets, an IPv6-only target list, then the default route moves to a second link."""
    with PathLab() as lab:
        log = lab.shared / "v6.log"
        daemon = lab.daemon(_config(lab, "v6.yml", list(TARGETS6), privileged=True,
                                    dns=False), log)
        try:
            wait_until(lambda: _hops(lab) == {"home": ROUTER6, "isp": ISP_HOP6}, 30,
                       what="IPv6 path")
            wait_until(lambda: (_value(lab, "homemon_path_received_total", role="home")
                                or 0) >= 2, 20, what="IPv6 router probed")
        finally:
            stop_process(daemon)
        # a second link between home and the router, then the default route moves onto it
        lab.add_second_lan()
        log = lab.shared / "route.log"
        daemon = lab.daemon(_config(lab, "route.yml", list(TARGETS), privileged=True,
                                    dns=False), log)
        try:
            wait_until(lambda: _hops(lab) == {"home": ROUTER, "isp": ISP_HOP}, 30,
                       what="IPv4 path")
            lab.run("home", ["ip", "route", "replace", "default", "via", "192.168.78.1"])
            wait_until(lambda: _hops(lab) == {"home": "192.168.78.1", "isp": ISP_HOP}, 15,
                       what="the path after the route change")
        finally:
            stop_process(daemon)
        assert any(line["msg"] == "latency: path discovered"
                   and line["reason"] == "the default route changed" for line in log_lines(log))


def test_a_hop_that_ignores_echo_is_skipped_not_guessed() -> None:
    """The ISP's first hop sends Time Exceeded but ignores echo requests: it is skipped with
    a log line and the next hop (the ISP core) is probed as the ISP hop."""
    with PathLab() as lab:
        lab.run("isp1", ["sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1"])
        log = lab.shared / "silent.log"
        daemon = lab.daemon(_config(lab, "silent.yml", list(TARGETS), privileged=True,
                                    dns=False), log)
        try:
            wait_until(lambda: _hops(lab) == {"home": ROUTER, "isp": ISP_CORE}, 30,
                       what="the path past a silent hop")
        finally:
            stop_process(daemon)
        assert any(line["msg"] == f"latency: path: hop 2 ({ISP_HOP}) does not answer echo "
                   "requests; skipped" for line in log_lines(log))
        assert ISP_CORE6  # (the IPv6 core exists too; the IPv6 test covers that family)


def test_discovery_off_uses_the_pins_and_probes_them() -> None:
    with PathLab() as lab:
        log = lab.shared / "pinned.log"
        daemon = lab.daemon(_config(lab, "pinned.yml", list(TARGETS), privileged=True,
                                    dns=False, path={"discover": False, "gateway": ROUTER,
                                                     "isp_hop": ISP_CORE}), log)
        try:
            wait_until(lambda: _hops(lab) == {"home": ROUTER, "isp": ISP_CORE}, 30,
                       what="the pinned hops")
            wait_until(lambda: (_value(lab, "homemon_path_received_total", role="isp")
                                or 0) >= 2, 20, what="the pinned ISP hop probed")
        finally:
            stop_process(daemon)


def test_a_hop_without_time_exceeded_is_skipped_not_guessed() -> None:
    """The ISP's first hop forwards but sends no Time Exceeded: it is logged as silent, and
    the next hop that answers (the ISP core) takes the ISP role; nothing is made up for hop 2."""
    with PathLab() as lab:
        lab.run("isp1", ["iptables", "-A", "OUTPUT", "-p", "icmp", "--icmp-type",
                         "time-exceeded", "-j", "DROP"])
        log = lab.shared / "nottl.log"
        daemon = lab.daemon(_config(lab, "nottl.yml", list(TARGETS), privileged=True,
                                    dns=False), log)
        try:
            wait_until(lambda: _hops(lab) == {"home": ROUTER, "isp": ISP_CORE}, 30,
                       what="the path past a hop without Time Exceeded")
        finally:
            stop_process(daemon)
        lines = log_lines(log)
        assert any(line["msg"] == "latency: path: hop 2 did not answer (no Time Exceeded); "
                   "skipped, not guessed" for line in lines)
        discovered = next(line for line in lines if line["msg"] == "latency: path discovered")
        assert discovered["hops"][:3] == [ROUTER, "*", ISP_CORE]


def test_a_path_with_no_public_hop_has_a_router_and_no_isp_hop() -> None:
    """Traced towards an address inside home space behind the router: the router is found,
    the ISP hop is not (and is not guessed)."""
    with PathLab() as lab:
        lab.run("isp1", ["ip", "addr", "add", "10.99.0.1/32", "dev", "lo"])
        lab.run("router", ["ip", "route", "add", "10.99.0.0/24", "via", ISP_HOP])
        lab.run("isp2", ["ip", "route", "add", "10.99.0.0/24", "via", "198.51.100.1"])
        log = lab.shared / "private.log"
        daemon = lab.daemon(_config(lab, "private.yml", list(TARGETS), privileged=True,
                                    dns=False, path={"trace_to": "10.99.0.1"}), log)
        try:
            wait_until(lambda: _hops(lab) == {"home": ROUTER}, 30, what="the router alone")
            wait_until(lambda: (_value(lab, "homemon_path_discoveries_total", result="partial")
                                or 0) >= 1, 10, what="a partial discovery counted")
        finally:
            stop_process(daemon)
        assert any(line["msg"] == "latency: path: no hop outside home address space answered "
                   "(no public hop)" for line in log_lines(log))
