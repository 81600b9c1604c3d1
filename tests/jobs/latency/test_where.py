"""The pure parts of "where it broke": home space, routing tables, hop roles, causes, DNS."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.config import ConfigError, parse
from monitor.jobs.latency.cause import HopLog, decide
from monitor.jobs.latency.config import LatencyConfig, PingTarget
from monitor.jobs.latency.dns import (
    DnsOutageTracker,
    build_query,
    parse_answer,
    query_resolver,
)
from monitor.jobs.latency.job import LatencyJob
from monitor.jobs.latency.metrics import LatencyMetrics
from monitor.jobs.latency.path import classify, default_gateways, in_container, is_home


@pytest.mark.parametrize(("address", "home"), [
    ("192.168.1.1", True), ("10.0.0.1", True), ("172.16.0.1", True), ("172.32.0.1", False),
    ("169.254.1.1", True), ("100.64.0.1", False), ("100.127.255.254", False),
    ("203.0.113.1", False), ("fe80::1", True), ("fd00::1", True), ("2001:db8::1", False),
])
def test_home_space_is_rfc1918_link_local_and_ula_but_not_cgnat(address, home):
    assert is_home(address) is home


ROUTE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wlan0\t00000000\t0201A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth1\t00000000\t0A0A0A0A\t0001\t0\t0\t0\t00000000\t0\t0\t0
"""
IPV6_ROUTE = (
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "fe800000000000000000000000000001 00000400 00000001 00000000 00450003     eth0\n"
    "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n")


def test_default_gateways_from_proc_net_route_lowest_metric_first():
    # the route without RTF_GATEWAY (eth1) and the on-link one are not default gateways
    assert default_gateways(ROUTE, IPV6_ROUTE) == ["192.168.1.1", "192.168.1.2", "fe80::1"]
    assert default_gateways("", "") == []


def _answers(*silent: str):
    return lambda address: address not in silent


@pytest.mark.parametrize(("hops", "container", "silent", "router", "isp"), [
    # home router, then the ISP's CGNAT customer side
    (["192.168.1.1", "100.64.0.1", "203.0.113.1"], False, (), "192.168.1.1", "100.64.0.1"),
    # a mesh point and the router: the last home hop is the router
    (["10.0.0.2", "192.168.1.1", "198.51.100.1"], False, (), "192.168.1.1", "198.51.100.1"),
    # no Time Exceeded from hop 2: it is skipped, the next answering hop is the ISP's
    (["192.168.1.1", None, "198.51.100.9"], False, (), "192.168.1.1", "198.51.100.9"),
    # the ISP's first hop ignores echo: skipped, not guessed
    (["192.168.1.1", "100.64.0.1", "198.51.100.2"], False, ("100.64.0.1",), "192.168.1.1",
     "198.51.100.2"),
    # a path with no public hop
    (["192.168.1.1", "10.10.0.1"], False, (), "10.10.0.1", None),
    # in a container on a Docker bridge: the Docker host first, the router after it
    (["172.18.0.1", "192.168.1.1", "100.64.0.1"], True, (), "192.168.1.1", "100.64.0.1"),
    # in a container, only the Docker host inside home space: the router is unknown
    (["172.17.0.1", "100.64.0.1"], True, (), None, "100.64.0.1"),
    # nothing answered
    ([], False, (), None, None),
])
def test_roles_from_a_traced_path(hops, container, silent, router, isp):
    path = classify(hops, _answers(*silent), container=container)
    assert (path.router, path.isp) == (router, isp)


def test_a_silent_hop_is_named_in_the_notes():
    path = classify(["192.168.1.1", None, "198.51.100.9"], _answers())
    assert "hop 2 did not answer (no Time Exceeded); skipped, not guessed" in path.notes


def test_pins_win_over_discovery():
    path = classify(["192.168.1.1", "100.64.0.1"], _answers(), pinned_router="192.168.1.254",
                    pinned_isp="100.64.0.9")
    assert (path.router, path.isp) == ("192.168.1.254", "100.64.0.9")


def test_a_container_is_not_detected_without_its_marker(tmp_path: Path):
    assert in_container(tmp_path) is False


@pytest.mark.parametrize(("router", "router_ok", "isp", "isp_ok", "cause"), [
    ("192.168.1.1", False, "100.64.0.1", False, "home"),
    ("192.168.1.1", True, "100.64.0.1", False, "isp"),
    ("192.168.1.1", True, "100.64.0.1", True, "upstream"),
    (None, None, None, None, "unknown"),
    ("192.168.1.1", None, "100.64.0.1", None, "unknown"),  # nothing sent during the outage
    ("192.168.1.1", True, None, None, "unknown"),  # no public hop known: never a guess
    ("192.168.1.1", False, None, None, "home"),
])
def test_cause_from_what_answered(router, router_ok, isp, isp_ok, cause):
    assert decide(router, router_ok, isp, isp_ok).cause == cause


def test_the_isp_cause_reads_like_the_report():
    assert decide("192.168.1.1", True, "100.64.0.1", False).detail == (
        "your router answered, the ISP's first hop (100.64.0.1) did not — the break was at "
        "your ISP")


def test_hop_log_needs_half_the_requests_answered_within_the_window():
    log = HopLog()
    for second, ok in enumerate([True, False, False, False, True, True]):
        log.add("home", 100.0 + second, ok)
    assert log.answered("home", 101, 104) is False  # the router came back at 104: not counted
    assert log.answered("home", 101, 106) is False  # 2 of 5
    assert log.answered("home", 103, 106) is True
    assert log.answered("home", 200, 300) is None
    assert log.answered("isp", 0, 1000) is None


def test_the_job_decides_the_cause_from_the_requests_sent_during_the_outage():
    now = [1000.0]
    config = LatencyConfig(targets=[PingTarget("192.0.2.1", internet=True)],
                           packet_timeout=1.0)
    job = LatencyJob(config, LatencyMetrics(CollectorRegistry()), clock=lambda: now[0])
    job.path = classify(["192.168.1.1", "100.64.0.1"], _answers())
    for second in range(10):  # the router answers throughout, the ISP hop stops at 1003
        job.hop_log.add("home", 1000.0 + second, True)
        job.hop_log.add("isp", 1000.0 + second, second < 3 or second > 8)
    assert job.cause(1003.0, 1009.0).cause == "isp"
    assert job.cause(1003.0, 1009.0).detail.startswith("your router answered")


def test_dns_outage_needs_consecutive_failures_while_pings_answer():
    tracker = DnsOutageTracker(threshold=2)
    assert tracker.check(0, False, internet_down=False) is None
    assert tracker.check(1, True, internet_down=False) is None  # one failure: no outage
    assert tracker.check(2, False, internet_down=False) is None
    down = tracker.check(3, False, internet_down=False)
    assert down is not None
    assert down.down
    assert down.start == 2
    assert tracker.current(4.5) == 2.5
    back = tracker.check(5, True, internet_down=False)
    assert back is not None
    assert (back.start, back.end) == (2, 5)
    assert tracker.check(6, False, internet_down=True) is None  # the internet's outage
    assert tracker.check(7, False, internet_down=True) is None
    assert tracker.outages == 1


def test_dns_query_and_answer_parsing():
    query = build_query("probe.example.test", 0x1234)
    assert query[:12] == struct.pack("!6H", 0x1234, 0x0100, 1, 0, 0, 0)
    assert query[12:] == b"\x05probe\x07example\x04test\x00\x00\x01\x00\x01"
    ok = struct.pack("!6H", 0x1234, 0x8180, 1, 1, 0, 0)
    assert parse_answer(ok, 0x1234) is None
    assert parse_answer(struct.pack("!6H", 0x1234, 0x8183, 1, 0, 0, 0), 0x1234) == "NXDOMAIN"
    assert parse_answer(struct.pack("!6H", 0x1234, 0x8180, 1, 0, 0, 0), 0x1234) == "no records"
    assert parse_answer(ok, 0x9999) == "not our reply"
    assert parse_answer(b"\x00", 0x1234) == "short reply"


@pytest.fixture
def udp_dns() -> Iterator[tuple[str, int, list[str]]]:
    """A resolver on loopback: answers 'good.test' with one record, anything else NXDOMAIN."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(0.2)
    mode: list[str] = ["answer"]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                packet, peer = server.recvfrom(512)
            except TimeoutError:
                continue
            if mode[0] == "silent":
                continue
            ident = struct.unpack("!H", packet[:2])[0]
            found = b"\x04good\x04test\x00" in packet
            header = struct.pack("!6H", ident, 0x8180 if found else 0x8183, 1, int(found), 0, 0)
            server.sendto(header + packet[12:], peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.getsockname()[1], mode
    finally:
        stop.set()
        thread.join()
        server.close()


def test_a_configured_resolver_is_asked_directly(udp_dns):
    address, port, mode = udp_dns
    assert query_resolver(address, "good.test", 1.0, port).ok
    assert query_resolver(address, "bad.test", 1.0, port).error == "NXDOMAIN"
    mode[0] = "silent"
    assert query_resolver(address, "good.test", 0.3, port).error == "no answer within 0.3 s"


@pytest.mark.parametrize(("latency", "problem"), [
    ({"path": {"gateway": "router"}}, "jobs.latency.path.gateway: expected an IP address"),
    ({"dns": {"resolvers": ["1.1.1.1", "dns.example"]}}, "jobs.latency.dns.resolvers[1]"),
    ({"dns": {"system": False}}, "jobs.latency.dns.resolvers: needs a resolver"),
    ({"dns": {"interval": "2s", "timeout": "3s"}}, "jobs.latency.dns.timeout: must be shorter"),
    ({"path": {"refresh": "1s"}}, "jobs.latency.path.refresh"),
])
def test_bad_path_and_dns_config_names_the_key(latency, problem):
    with pytest.raises(ConfigError) as error:
        parse({"jobs": {"latency": latency}}, "home-monitor.yml")
    assert problem in str(error.value)


def test_path_and_dns_defaults():
    latency = parse({}, "home-monitor.yml").jobs.latency
    assert latency.path.discover is True
    assert latency.path.refresh == 3600
    assert latency.dns.enabled is True
    assert latency.dns.interval <= 5
    assert parse({"jobs": {"latency": {"dns": False}}}, "x").jobs.latency.dns.enabled is False
