"""ICMP echo: checksums, building requests, recognising replies and matching them to requests."""

from __future__ import annotations

import socket
import struct

import pytest

from monitor.icmp_echo import ReplyCollector, checksum, echo_request, parse_echo_reply

V4, V6 = socket.AF_INET, socket.AF_INET6


@pytest.mark.parametrize(("data", "expected"), [
    (b"", 0xFFFF),
    (b"\x00\x01\xf2\x03\xf4\xf5\xf6\xf7", 0x220D),  # RFC 1071's example, sum 0xDDF2
    (b"\xff", 0x00FF),  # odd length: padded with a zero byte
])
def test_checksum(data, expected):
    assert checksum(data) == expected


def test_ipv4_request_carries_a_valid_checksum_and_our_fields():
    message = echo_request(V4, 0xBEEF, 0x1234, b"x" * 56)
    assert len(message) == 64
    assert struct.unpack("!BBHHH", message[:8])[0:2] == (8, 0)
    assert struct.unpack("!HH", message[4:8]) == (0xBEEF, 0x1234)
    assert checksum(message) == 0  # a message including its checksum sums to zero


def test_ipv6_request_leaves_the_checksum_to_the_kernel():
    message = echo_request(V6, 1, 2, b"abc")
    assert message == bytes([128, 0, 0, 0, 0, 1, 0, 2]) + b"abc"


def _reply(kind: int, ident: int, seq: int, code: int = 0) -> bytes:
    return struct.pack("!BBHHH", kind, code, 0, ident, seq) + b"payload"


IP_HEADER = bytes([0x45]) + bytes(19)
IP_HEADER_WITH_OPTIONS = bytes([0x46]) + bytes(23)


@pytest.mark.parametrize(("packet", "family", "has_ip_header", "expected"), [
    (_reply(0, 7, 9), V4, False, (7, 9)),  # datagram socket: ICMP only
    (IP_HEADER + _reply(0, 7, 9), V4, True, (7, 9)),  # raw IPv4: the IP header first
    (IP_HEADER_WITH_OPTIONS + _reply(0, 7, 9), V4, True, (7, 9)),
    (IP_HEADER + _reply(8, 7, 9), V4, True, None),  # our own request, seen on loopback
    (IP_HEADER + _reply(3, 7, 9, code=1), V4, True, None),  # destination unreachable
    (_reply(0, 7, 9, code=1), V4, False, None),
    (_reply(129, 7, 9), V6, False, (7, 9)),
    (_reply(128, 7, 9), V6, False, None),
    (_reply(0, 7, 9), V6, False, None),  # an ICMPv4 type on an ICMPv6 socket
    (b"\x00\x00\x00", V4, False, None),  # truncated
    (b"", V4, True, None),
    (b"\x60" + bytes(19) + _reply(0, 7, 9), V4, True, None),  # not IPv4
])
def test_parse_echo_reply(packet, family, has_ip_header, expected):
    assert parse_echo_reply(packet, family, has_ip_header) == expected


def test_replies_are_matched_by_sequence_identifier_and_source_late_and_foreign_ignored():
    """Raw-socket matching: only a first reply, from the target, with our identifier, to a
    request we sent counts; its RTT is receive time - that request's send time."""
    clock = iter([1_000_000, 1_200_000]).__next__  # send times of sequences 10 and 11, ns
    with socket.socket(V4, socket.SOCK_DGRAM) as sock:  # only its family is used
        collector = ReplyCollector(sock, "192.0.2.7", True, identifier=77, count=2, clock=clock)
        collector.sent_at.update({10: clock(), 11: clock()})

        def arrive(ident: int, seq: int, source: str, at: int, kind: int = 0) -> None:
            collector.match(IP_HEADER + _reply(kind, ident, seq), source, at)

        arrive(77, 10, "192.0.2.8", 2_000_000)  # another host
        arrive(78, 10, "192.0.2.7", 2_000_000)  # another pinger's identifier
        arrive(77, 12, "192.0.2.7", 2_000_000)  # a request we never sent (an earlier round)
        arrive(77, 10, "192.0.2.7", 2_000_000, kind=8)  # a request, not a reply
        assert collector.rtts == {}
        arrive(77, 11, "192.0.2.7", 3_200_000)
        arrive(77, 11, "192.0.2.7", 9_000_000)  # duplicate: the first one counts
        assert collector.rtts == {11: 2_000_000}
        assert not collector.all_answered.is_set()
        arrive(77, 10, "192.0.2.7", 4_000_000)
        assert collector.rtts == {11: 2_000_000, 10: 3_000_000}
        assert collector.all_answered.is_set()


def test_datagram_sockets_match_without_the_identifier_the_kernel_rewrote():
    with socket.socket(V6, socket.SOCK_DGRAM) as sock:
        collector = ReplyCollector(sock, "fd77::2", False, identifier=1, count=1,
                               clock=lambda: 0)
        collector.sent_at[5] = 100
        collector.match(_reply(129, 4242, 5), "fd77:0::2", 600)  # same address, other spelling
        assert collector.rtts == {5: 500}
