"""ICMP/ICMPv6 echo over icmplib's sockets.

icmplib builds the requests (header, checksum, payload), sends them, reads and parses the
replies: `ICMPv4Socket`/`ICMPv6Socket`, raw (`privileged=True`, needs CAP_NET_RAW) or
datagram (`privileged=False`, the group must be in `net.ipv4.ping_group_range`), and
`ICMPRequest`. We receive without a request (`receive(None, …)`) and match replies to requests
ourselves, so requests go out on a fixed schedule and never wait for a reply.

What icmplib leaves to us (see docs/latency.md, "icmplib"):
- matching (identifier, sequence, source) across many targets on one socket;
- a kernel filter on raw sockets (`ICMP_FILTER`, `ICMP6_FILTER`) so that they only wake up for
  echo replies: without it a raw socket sees every ICMP packet the host gets (neighbour
  discovery, errors, other pingers), and icmplib's `receive` keeps waiting on a packet it cannot
  parse;
- the event loop: icmplib's `receive` blocks (with a timeout) and its `AsyncSocket` drops the
  source address, so we wait for readability ourselves and then call `receive` once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import random
import select
import socket
import struct
from dataclasses import dataclass
from typing import Any

from icmplib import ICMPRequest, ICMPv4Socket, ICMPv6Socket
from icmplib.exceptions import ICMPSocketError, SocketPermissionError

ECHO_REPLY = {socket.AF_INET: 0, socket.AF_INET6: 129}
PAYLOAD_SIZE = 56  # what ping and icmplib send: 64-byte ICMP messages
# receive() is only called on a readable socket, so this bounds nothing but a packet the
# filter let through and icmplib could not parse
RECEIVE_TIMEOUT = 0.01
# Linux: setsockopt(SOL_RAW, ICMP_FILTER) and setsockopt(IPPROTO_ICMPV6, ICMP6_FILTER); a set
# bit blocks that ICMP type. Python's socket module has neither constant.
SOL_RAW = 255
ICMP_FILTER = 1
ICMP6_FILTER = 1

IcmpSocket = ICMPv4Socket | ICMPv6Socket


def family_of(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def canonical(address: str) -> str:
    """One spelling per address (replies may write an IPv6 address differently)."""
    address = address.partition("%")[0]
    if ":" not in address:
        return address
    return ipaddress.ip_address(address).compressed


def _only_echo_replies(icmp: IcmpSocket) -> None:
    raw = icmp.sock
    if isinstance(icmp, ICMPv4Socket):
        raw.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", 0xFFFFFFFF & ~(1 << 0)))
    else:
        blocked = [0xFFFFFFFF] * 8
        blocked[129 >> 5] &= ~(1 << (129 & 31))
        raw.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("8I", *blocked))


def open_socket(family: int, privileged: bool) -> IcmpSocket:
    """An icmplib socket; PermissionError if this process may not open that kind."""
    kind = ICMPv4Socket if family == socket.AF_INET else ICMPv6Socket
    try:
        icmp = kind(privileged=privileged)
    except SocketPermissionError as exc:
        raise PermissionError(str(exc)) from None
    except ICMPSocketError as exc:
        raise OSError(str(exc)) from None
    if privileged:
        with contextlib.suppress(OSError):  # an optimisation, not a must
            _only_echo_replies(icmp)
    return icmp


@dataclass(frozen=True, slots=True)
class Reply:
    source: str  # canonical()
    identifier: int
    sequence: int
    received: float  # time.time() right after recvfrom (icmplib's timestamp)


class EchoSocket:
    """One icmplib socket of one family and kind, for many targets."""

    def __init__(self, family: int, privileged: bool) -> None:
        self.family = family
        self.privileged = privileged
        self.icmp = open_socket(family, privileged)
        self.fileno = self.icmp.sock.fileno()
        self._poll = select.poll()
        self._poll.register(self.fileno, select.POLLIN)

    def readable(self) -> bool:
        """Is another packet waiting? (One poll(2), no waiting.)"""
        return bool(self._poll.poll(0))

    def send(self, address: str, identifier: int, sequence: int, payload: bytes
             ) -> tuple[float, int]:
        """(send time as time.time(), the identifier on the wire: a datagram socket's is
        the kernel's). Raises OSError, e.g. "Network is unreachable"."""
        request = ICMPRequest(address, identifier, sequence, payload=payload)
        try:
            self.icmp.send(request)
        except ICMPSocketError as exc:
            raise OSError(str(exc)) from None
        return request.time, request.id

    def receive(self) -> Reply | None:
        """The next packet of a readable socket if it is an echo reply, else None."""
        try:
            reply = self.icmp.receive(None, timeout=RECEIVE_TIMEOUT)
        except ICMPSocketError:  # nothing parseable in time, or a pending ICMP error report
            return None
        if reply.type != ECHO_REPLY[self.family] or reply.code != 0:
            return None
        return Reply(canonical(reply.source), reply.id, reply.sequence, reply.time)

    def close(self) -> None:
        self.icmp.close()


@dataclass(frozen=True)
class EchoResult:
    sent: int
    rtts: list[float]  # seconds, of the answered requests, in sending order


async def echo_round(address: str, *, count: int, interval: float, timeout: float,
                     privileged: bool) -> EchoResult:
    """Send `count` echo requests to `address` (an IP literal) `interval` seconds apart and
    collect the replies until `timeout` after the last one was sent (the bandwidth job's
    loaded-RTT pings; the latency job probes continuously, see monitor/icmp_prober.py).

    Raises OSError (PermissionError for the socket kind, or e.g. "Network is unreachable").
    """
    loop = asyncio.get_running_loop()
    echo = EchoSocket(family_of(address), privileged)
    target = canonical(address)
    identifier, first = random.getrandbits(16), random.getrandbits(16)
    payload = os.urandom(PAYLOAD_SIZE)
    sent: dict[int, tuple[float, int]] = {}  # sequence -> (send time, identifier on the wire)
    rtts: dict[int, float] = {}
    done = asyncio.Event()

    def readable() -> None:
        reply = echo.receive()
        if reply is None or reply.source != target:
            return
        request: Any = sent.get(reply.sequence)
        if request is None or reply.sequence in rtts:
            return
        if echo.privileged and reply.identifier != request[1]:
            return  # another pinger's (raw sockets see every echo reply)
        rtts[reply.sequence] = reply.received - request[0]
        if len(rtts) == count:
            done.set()

    sequences = [(first + index) & 0xFFFF for index in range(count)]
    loop.add_reader(echo.fileno, readable)
    try:
        start = loop.time()
        for index, sequence in enumerate(sequences):
            delay = start + index * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[sequence] = echo.send(address, identifier, sequence, payload)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout)
    finally:
        loop.remove_reader(echo.fileno)
        echo.close()
    return EchoResult(count, [rtts[sequence] for sequence in sequences if sequence in rtts])

