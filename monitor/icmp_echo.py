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
  source address, so we wait for readability ourselves;
- the receive time: icmplib reads with recvfrom and stamps a reply with time() afterwards, so
  its RTT includes how long the process took to wake up (0.3-1 ms on a busy machine). We ask
  the kernel for each packet's arrival time (SO_TIMESTAMPNS), read with recvmsg and hand the
  bytes and that time to icmplib's own reply parser (`_parse_reply`, which `receive` calls);
  if that socket option or the parser is missing, icmplib's `receive` and its time are used.
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
import time
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from icmplib import ICMPRequest, ICMPv4Socket, ICMPv6Socket
from icmplib.exceptions import ICMPSocketError, SocketPermissionError

ECHO_REPLY: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 129}
PAYLOAD_SIZE = 56  # what ping and icmplib send: 64-byte ICMP messages
# receive() is only called on a readable socket, so this bounds nothing but a packet the
# filter let through and icmplib could not parse
RECEIVE_TIMEOUT = 0.01
# Linux: setsockopt(SOL_RAW, ICMP_FILTER) and setsockopt(IPPROTO_ICMPV6, ICMP6_FILTER); a set
# bit blocks that ICMP type. Python's socket module has neither constant.
SOL_RAW = 255
ICMP_FILTER = 1
ICMP6_FILTER = 1

# Linux (x86, arm): SO_TIMESTAMPNS; the control message SCM_TIMESTAMPNS has the same number and
# carries a struct timespec of native longs. Python's socket module lacks both constants.
SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("@ll")
ANCILLARY_SIZE = socket.CMSG_SPACE(TIMESPEC.size)

IcmpSocket: TypeAlias = ICMPv4Socket | ICMPv6Socket


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
    received: float  # time.time() scale: the kernel's arrival time, else icmplib's


class EchoSocket:
    """One icmplib socket of one family and kind, for many targets."""

    def __init__(self, family: int, privileged: bool) -> None:
        self.family = family
        self.privileged = privileged
        self.icmp = open_socket(family, privileged)
        self.fileno = self.icmp.sock.fileno()
        self._poll = select.poll()
        self._poll.register(self.fileno, select.POLLIN)
        self.kernel_time = hasattr(self.icmp, "_parse_reply")
        if self.kernel_time:
            try:
                self.icmp.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            except OSError:
                self.kernel_time = False
        if self.kernel_time:
            # reads never wait (we only read a readable socket) and cost one syscall each
            self.icmp.sock.setblocking(False)

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
        if self.kernel_time:
            reply = self._receive_stamped()
            return None if reply is _EMPTY else reply
        try:
            reply = self.icmp.receive(None, timeout=RECEIVE_TIMEOUT)
        except ICMPSocketError:  # nothing parseable in time, or a pending ICMP error report
            return None
        return self._reply(reply)

    def receive_all(self, limit: int) -> list[Reply]:
        """Up to `limit` echo replies waiting on the socket (a wake-up costs more than a read)."""
        replies = []
        for _ in range(limit):
            if self.kernel_time:
                reply = self._receive_stamped()
                if reply is _EMPTY:
                    break
            else:
                reply = self.receive()
            if reply is not None:
                replies.append(reply)
            if not self.kernel_time and not self.readable():
                break
        return replies

    def _receive_stamped(self) -> Reply | None:
        try:
            packet, ancillary, _, source = self.icmp.sock.recvmsg(1024, ANCILLARY_SIZE)
        except BlockingIOError:
            return _EMPTY
        except OSError:  # e.g. a pending ICMP error report
            return None
        received = None
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= TIMESPEC.size:
                seconds, nanoseconds = TIMESPEC.unpack_from(data)
                received = seconds + nanoseconds / 1e9
        reply = self.icmp._parse_reply(packet, source[0], received or time.time())
        return None if reply is None else self._reply(reply)

    def _reply(self, reply: Any) -> Reply | None:
        if reply.type != ECHO_REPLY[self.family] or reply.code != 0:
            return None
        return Reply(canonical(reply.source), reply.id, reply.sequence, reply.time)

    def close(self) -> None:
        self.icmp.close()


_EMPTY = Reply("", -1, -1, 0.0)  # receive_all's "nothing more to read"


@dataclass(frozen=True)
class EchoResult:
    sent: int
    rtts: list[float]  # seconds, of the answered requests, in sending order


async def echo_round(address: str, *, count: int, interval: float, timeout: float,
                     privileged: bool) -> EchoResult:
    """Send `count` echo requests to `address` (an IP literal) `interval` seconds apart and
    collect the replies until `timeout` after the last one was sent (a job's short bursts, such
    as RTT under load; continuous probing is monitor/jobs/latency/prober.py).

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


# --- which socket kind the process may open -------------------------------------------------

NO_ICMP_MESSAGE = (
    "cannot send ICMP: unprivileged ping sockets are not allowed for this group "
    "(set sysctl net.ipv4.ping_group_range, e.g. \"0 2147483647\") and raw sockets need "
    "CAP_NET_RAW (run as root or add the capability)"
)


class IcmpUnavailable(RuntimeError):
    def __init__(self) -> None:
        super().__init__(NO_ICMP_MESSAGE)


def _can_open(privileged: bool) -> bool:
    try:
        open_socket(socket.AF_INET, privileged).close()
    except PermissionError:
        return False
    return True


def resolve_privileged(mode: Literal["auto", True, False]) -> bool:
    """Raw sockets (True) or datagram ones (False)? `auto` prefers the unprivileged datagram
    socket.

    Raises IcmpUnavailable (naming ping_group_range and CAP_NET_RAW) if the mode cannot work.
    """
    candidates = [False, True] if mode == "auto" else [bool(mode)]
    for privileged in candidates:
        if _can_open(privileged):
            return privileged
    raise IcmpUnavailable
