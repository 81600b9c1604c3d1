"""The icmplib layer (monitor.icmp_echo) and the prober's matching and slot ordering."""

from __future__ import annotations

import asyncio
import os
import socket
import time

import pytest

from monitor.icmp_echo import EchoSocket, Reply, canonical, echo_round, family_of
from monitor.jobs.latency.prober import Prober, ProbeTarget, Slot

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets need root")


@pytest.mark.parametrize(("spelling", "expected"), [
    ("192.0.2.7", "192.0.2.7"),
    ("fd77:0::2", "fd77::2"),
    ("FD77::0002", "fd77::2"),
    ("fe80::1%veth0", "fe80::1"),
])
def test_one_spelling_per_address(spelling, expected):
    assert canonical(spelling) == expected


@needs_root
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_icmplib_raw_socket_round_trip_on_loopback(address):
    result = asyncio.run(echo_round(address, count=3, interval=0.01, timeout=1.0,
                                    privileged=True))
    assert result.sent == 3
    assert len(result.rtts) == 3
    assert all(0 < rtt < 0.5 for rtt in result.rtts)


@needs_root
def test_raw_socket_filter_lets_only_echo_replies_through():
    """Our own request to loopback arrives as an echo request too; the kernel filter drops
    it, so the next packet the socket reads is the reply."""
    echo = EchoSocket(socket.AF_INET, privileged=True)
    try:
        echo.icmp.sock.settimeout(2)
        sent_at, identifier = echo.send("127.0.0.1", 4242, 7, b"x" * 56)
        reply = echo.receive()
    finally:
        echo.close()
    assert reply is not None
    assert (reply.source, reply.identifier, reply.sequence) == ("127.0.0.1", identifier, 7)
    assert 0 <= reply.received - sent_at < 0.5


@needs_root
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_a_reply_read_late_keeps_the_kernels_arrival_time(address):
    """The RTT ends when the reply arrived, not when the reader got round to it (the prober
    reads on its own wake-ups)."""
    echo = EchoSocket(family_of(address), privileged=True)
    try:
        assert echo.kernel_time, "SO_TIMESTAMPNS and icmplib's parser are available"
        sent_at, identifier = echo.send(address, 4243, 9, b"x" * 56)
        time.sleep(0.3)
        read_at = time.time()
        replies = echo.receive_all(16)
    finally:
        echo.close()
    ours = [reply for reply in replies if (reply.identifier, reply.sequence) == (identifier, 9)]
    assert len(ours) == 1
    assert 0 <= ours[0].received - sent_at < 0.15 < read_at - sent_at


@needs_root
def test_without_kernel_times_icmplibs_receive_and_time_are_used():
    """The fallback for a kernel or icmplib without SO_TIMESTAMPNS/_parse_reply."""
    echo = EchoSocket(socket.AF_INET, privileged=True)
    try:
        echo.kernel_time = False
        sent_at, identifier = echo.send("127.0.0.1", 4244, 11, b"x" * 56)
        time.sleep(0.3)
        replies = echo.receive_all(16)
    finally:
        echo.close()
    ours = [reply for reply in replies if (reply.identifier, reply.sequence) == (identifier, 11)]
    assert len(ours) == 1
    assert ours[0].received - sent_at >= 0.3  # icmplib stamps when it reads


def _prober(targets: list[ProbeTarget], down: list[bool]) -> tuple[Prober, list]:
    verdicts: list[tuple[int, float, float | None]] = []
    prober = Prober(targets, interval=1.0, timeout=2.0, privileged=True,
                    on_slot=lambda *verdict: verdicts.append(verdict),
                    down=lambda: down[0])
    return prober, verdicts


def test_slots_are_reported_in_order_and_an_answer_while_down_comes_at_once():
    isp = ProbeTarget("isp", "192.0.2.1", internet=True)
    down = [False]
    prober, verdicts = _prober([isp], down)
    state = prober.targets[0]
    for slot in range(4):
        prober.slots[slot] = Slot(100.0 + slot, pending=1, counted=True, complete=True)
    prober.slots_sent = 4
    prober._internet_decided(state, 1, 101.05)  # slot 1 answered before slot 0 timed out
    assert verdicts == []
    prober._internet_decided(state, 0, None)  # slot 0 lost
    assert verdicts == [(0, 100.0, None), (1, 101.0, 101.05)]
    down[0] = True  # say slot 2 and 3 were lost and the tracker declared an outage
    prober._internet_decided(state, 3, 103.02)  # slot 3 answered: reported before slot 2
    assert verdicts[-1] == (3, 103.0, 103.02)
    prober._internet_decided(state, 2, None)  # slot 2's late timeout is not reported
    assert verdicts[-1] == (3, 103.0, 103.02)
    assert prober.next_verdict == 4


def test_replies_match_by_source_sequence_and_on_raw_sockets_identifier():
    isp = ProbeTarget("isp", "192.0.2.1", internet=True)
    decided: list[tuple[str, float | None]] = []
    prober = Prober([isp], interval=1.0, timeout=2.0, privileged=True,
                    on_probe=lambda label, rtt: decided.append((label, rtt)))

    class FakeSocket:  # only what _match reads
        family = socket.AF_INET
        privileged = True

    prober.pending[(socket.AF_INET, "192.0.2.1", 10)] = (0, 0, 50.0, 77)
    prober.targets[0].order.append([0, None, False])
    prober.slots[0] = Slot(50.0, pending=1, counted=True, complete=True)
    prober.slots_sent = 1
    for source, ident, seq in [("192.0.2.9", 77, 10), ("192.0.2.1", 78, 10),
                               ("192.0.2.1", 77, 11)]:
        prober._match(FakeSocket(), Reply(source, ident, seq, 50.01))  # type: ignore[arg-type]
    assert decided == []
    prober._match(FakeSocket(), Reply("192.0.2.1", 77, 10, 50.01))  # type: ignore[arg-type]
    prober._match(FakeSocket(), Reply("192.0.2.1", 77, 10, 50.02))  # type: ignore[arg-type]
    assert decided == [("isp", pytest.approx(0.01))]
    assert prober.take()[0][1] == [(0, pytest.approx(0.01))]
