"""ICMP/ICMPv6 echo on a fixed schedule: `count` requests `interval` apart, replies collected
concurrently, the round over `timeout` after the last request (or once every request is
answered).

icmplib's `ping` waits for each reply (up to its timeout) before it sends the next request,
so a silent host took `count x (interval + timeout)`; here it takes
`(count - 1) x interval + timeout`, whatever the host does.

Both socket kinds Linux offers for ICMP work, for IPv4 and IPv6:
- raw (`privileged=True`, needs CAP_NET_RAW): every raw socket sees every ICMP packet the host
  receives (IPv4 with its IP header); ours are told apart by identifier, sequence and source.
- datagram (`privileged=False`, the group must be in `net.ipv4.ping_group_range`): the kernel
  replaces the identifier with the socket's own "port" and hands the socket only the replies
  carrying it, without IP header; replies are matched by sequence and source.
The kernel fills in the ICMPv6 checksum (it covers a pseudo-header) and, for datagram
sockets, the ICMPv4 one too; raw ICMPv4 requests carry ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import random
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

ECHO_REQUEST: dict[int, int] = {socket.AF_INET: 8, socket.AF_INET6: 128}
ECHO_REPLY: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 129}
PAYLOAD_SIZE = 56  # what ping and icmplib send: 64-byte ICMP messages
HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
RECEIVE_BUFFER = 65535


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return int(~total & 0xFFFF)


def echo_request(family: int, identifier: int, sequence: int, payload: bytes) -> bytes:
    """An echo request; the ICMPv6 checksum is left 0 for the kernel to fill in."""
    message = HEADER.pack(ECHO_REQUEST[family], 0, 0, identifier, sequence) + payload
    if family == socket.AF_INET6:
        return message
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


def parse_echo_reply(packet: bytes, family: int, has_ip_header: bool) -> tuple[int, int] | None:
    """(identifier, sequence) of an echo reply; None for anything else."""
    if has_ip_header:  # raw IPv4 sockets return the IPv4 header too
        if not packet or packet[0] >> 4 != 4:
            return None
        packet = packet[(packet[0] & 0x0F) * 4:]
    if len(packet) < HEADER.size:
        return None
    kind, code, _, identifier, sequence = HEADER.unpack_from(packet)
    if kind != ECHO_REPLY[family] or code != 0:
        return None
    return identifier, sequence


def family_of(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _same_host(source: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(source.partition("%")[0]) == address
    except ValueError:
        return False


def open_socket(family: int, privileged: bool) -> socket.socket:
    """A non-blocking ICMP socket; PermissionError if this process may not open that kind."""
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    sock = socket.socket(family, socket.SOCK_RAW if privileged else socket.SOCK_DGRAM, proto)
    sock.setblocking(False)
    return sock


@dataclass(frozen=True)
class EchoResult:
    sent: int
    rtts: list[float]  # seconds, of the answered requests, in sending order


class ReplyCollector:
    """Matches replies to requests on one socket; RTT = receive time - that request's send
    time, both taken with `clock` right next to the system call."""

    def __init__(self, sock: socket.socket, address: str, privileged: bool, identifier: int,
                 count: int, clock: Callable[[], int]) -> None:
        self.sock = sock
        self.family = sock.family
        self.address = ipaddress.ip_address(address.partition("%")[0])
        self.raw = privileged
        self.identifier = identifier
        self.count = count
        self.clock = clock
        self.sent_at: dict[int, int] = {}  # sequence -> send time, ns
        self.rtts: dict[int, int] = {}  # sequence -> RTT, ns
        self.all_answered = asyncio.Event()

    def send(self, sequence: int, message: bytes, destination: tuple[str, int]) -> None:
        self.sent_at[sequence] = self.clock()
        try:
            self.sock.sendto(message, destination)
        except OSError:
            del self.sent_at[sequence]
            raise

    def on_readable(self) -> None:
        while True:
            try:
                packet, source = self.sock.recvfrom(RECEIVE_BUFFER)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # a pending ICMP error report, cleared by this read; epoll calls
                return  # again if replies are queued behind it
            received = self.clock()
            self.match(packet, source[0], received)

    def match(self, packet: bytes, source: str, received: int) -> None:
        reply = parse_echo_reply(packet, self.family,
                                 self.raw and self.family == socket.AF_INET)
        if reply is None or not _same_host(source, self.address):
            return
        identifier, sequence = reply
        if self.raw and identifier != self.identifier:
            return  # another pinger's (raw sockets see every reply)
        sent = self.sent_at.get(sequence)
        if sent is None or sequence in self.rtts:
            return  # not ours (e.g. a previous round's), or a duplicate
        self.rtts[sequence] = received - sent
        if len(self.rtts) == self.count:
            self.all_answered.set()


async def echo_round(address: str, *, count: int, interval: float, timeout: float,
                     privileged: bool, clock: Callable[[], int] = time.monotonic_ns
                     ) -> EchoResult:
    """Send `count` echo requests to `address` (an IP literal) `interval` seconds apart and
    collect the replies until `timeout` after the last one was sent.

    Raises OSError (PermissionError for the socket kind, or e.g. "Network is unreachable"
    from sending) — the replies collected so far are then not reported.
    """
    loop = asyncio.get_running_loop()
    family = family_of(address)
    sock = open_socket(family, privileged)
    # a fresh identifier and first sequence every round: a late reply to an earlier round
    # does not match a request of this one
    identifier = random.getrandbits(16)
    first = random.getrandbits(16)
    collector = ReplyCollector(sock, address, privileged, identifier, count, clock)
    payload = os.urandom(PAYLOAD_SIZE)
    destination = (address, 0)
    sequences = [(first + index) & 0xFFFF for index in range(count)]
    loop.add_reader(sock.fileno(), collector.on_readable)
    try:
        start = loop.time()
        for index, sequence in enumerate(sequences):
            delay = start + index * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            collector.send(sequence, echo_request(family, identifier, sequence, payload),
                           destination)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collector.all_answered.wait(), timeout)
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
    rtts = [collector.rtts[sequence] / 1e9 for sequence in sequences
            if sequence in collector.rtts]
    return EchoResult(count, rtts)
