"""Path discovery: which hop is the home router and which is the ISP's first hop.

1. The default gateway comes from the routing table (/proc/net/route, /proc/net/ipv6_route).
2. TTL-limited echo requests (1..max_hops, all sent at once, twice) towards an internet target
   collect the address of every hop that answers with ICMP Time Exceeded.
3. Each hop is classified: *home space* is RFC 1918, link-local and IPv6 ULA (fc00::/7); the
   shared CGNAT space 100.64.0.0/10 is *not* home space (it is the ISP's customer side).
   The home router is the last hop inside home space; the ISP's first hop is the first hop
   outside it. A candidate must also answer plain echo requests (it is probed every second
   later): one that does not is skipped with a log line, and the role goes to the next hop
   that does; a hop that sent no Time Exceeded is never guessed.
4. In a container on a Docker bridge the first hop is the Docker host, not the router. If the
   process runs in a container (/.dockerenv) and home space ends at the first hop, that hop is
   the Docker host and the router is unknown (never the Docker host). With further home hops
   the last one is the router anyway.

Unprivileged ICMP datagram sockets get Time Exceeded on the socket's error queue
(IP_RECVERR / IPV6_RECVERR, read with MSG_ERRQUEUE); raw sockets read it as a packet, which
icmplib parses (the embedded request's identifier and sequence).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import random
import select
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from icmplib import ICMPRequest

from monitor.icmp_echo import IcmpSocket, canonical, family_of, open_socket

log = logging.getLogger("monitor.jobs.latency.path")

HOME_NETWORKS = [ipaddress.ip_network(net) for net in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "fe80::/10", "fc00::/7")]
CGNAT = ipaddress.ip_network("100.64.0.0/10")

# Linux constants Python's socket module lacks
IP_RECVERR = 11
IPV6_RECVERR = 25
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3
EXTENDED_ERROR = struct.Struct("=IBBBBII")  # struct sock_extended_err
TIME_EXCEEDED: dict[int, int] = {socket.AF_INET: 11, socket.AF_INET6: 3}
ECHO_REPLY: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 129}
PAYLOAD = b"home-monitor path discovery....."
ROUND_GAP = 0.4  # seconds between the trace's rounds


def is_home(address: str) -> bool:
    """Inside home address space (RFC 1918, link-local, ULA)? CGNAT space is not."""
    ip = ipaddress.ip_address(address.partition("%")[0])
    return any(ip in net for net in HOME_NETWORKS if net.version == ip.version)


def in_container(root: Path = Path("/")) -> bool:
    """On a container's own network (Docker, Podman): the container marker file exists and this
    process shares PID 1's network namespace (not so under `ip netns exec` inside a container),
    or, where PID 1's is not readable, the default route goes out of eth0.
    `network_mode: host` looks the same from inside: set path.docker_bridge: false there."""
    if not ((root / ".dockerenv").exists() or (root / "run/.containerenv").exists()):
        return False
    try:
        return os.readlink(root / "proc/self/ns/net") == os.readlink(root / "proc/1/ns/net")
    except OSError:  # PID 1 is not ours to read: Docker and Podman name the interface eth0
        try:
            route = (root / "proc/net/route").read_text()
        except OSError:
            return True
        return any(line.split()[1:2] == ["00000000"] and line.split()[0] == "eth0"
                   for line in route.splitlines()[1:] if line.strip())


# --- the routing table -----------------------------------------------------------------------


def default_gateways(route: str, ipv6_route: str) -> list[str]:
    """The default routes' gateways, lowest metric first, IPv4 before IPv6.

    `route` is /proc/net/route (hex little-endian fields), `ipv6_route` /proc/net/ipv6_route."""
    found: list[tuple[int, int, str]] = []
    for line in route.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 8:
            continue
        destination, gateway, flags, metric, mask = parts[1], parts[2], parts[3], parts[6], parts[7]
        if int(destination, 16) or int(mask, 16) or int(flags, 16) & 0x3 != 0x3:
            continue  # not a default route, or not up with a gateway (RTF_UP | RTF_GATEWAY)
        address = socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(gateway, 16)))
        found.append((4, int(metric), address))
    for line in ipv6_route.splitlines():
        parts = line.split()
        if len(parts) < 10:
            continue
        destination, prefix, next_hop, metric = parts[0], parts[1], parts[4], parts[5]
        if int(destination, 16) or int(prefix, 16) or not int(next_hop, 16):
            continue
        address = ipaddress.ip_address(bytes.fromhex(next_hop)).compressed
        found.append((6, int(metric, 16), address))
    return [address for _, _, address in sorted(found)]


def read_default_gateways(proc: Path = Path("/proc/net")) -> list[str]:
    def read(name: str) -> str:
        try:
            return (proc / name).read_text()
        except OSError:
            return ""

    return default_gateways(read("route"), read("ipv6_route"))


# --- classifying a traced path -----------------------------------------------------------------


@dataclass(frozen=True)
class PathHops:
    """The hops with a role. None: not found (never guessed)."""

    router: str | None
    isp: str | None
    hops: tuple[str | None, ...] = ()  # every traced hop, TTL 1 first; None: silent
    notes: tuple[str, ...] = ()  # why a hop was skipped or a role is unknown

    def role_of(self, role: str) -> str | None:
        return {"home": self.router, "isp": self.isp}.get(role)


def classify(hops: Sequence[str | None], answers_echo: Callable[[str], bool], *,
             container: bool = False, pinned_router: str | None = None,
             pinned_isp: str | None = None) -> PathHops:
    """Roles from the traced hops (TTL 1 first; None = no Time Exceeded came back)."""
    notes: list[str] = []
    for ttl, hop in enumerate(hops, start=1):
        if hop is None:
            notes.append(f"hop {ttl} did not answer (no Time Exceeded); skipped, not guessed")
    # home space ends at the first answering hop outside it
    boundary = next((i for i, hop in enumerate(hops) if hop is not None and not is_home(hop)),
                    len(hops))
    home = [(i, hop) for i, hop in enumerate(hops[:boundary]) if hop is not None]
    if container and home and home[0][0] == 0 and len(home) == 1:
        notes.append(f"hop 1 ({home[0][1]}) is the Docker host (running in a container) and "
                     "no home router answered beyond it")
        home = []
    router = pinned_router
    if router is None:
        for ttl0, hop in reversed(home):
            if answers_echo(hop):
                router = hop
                break
            notes.append(f"hop {ttl0 + 1} ({hop}) does not answer echo requests; skipped")
        if router is None and not home:
            notes.append("no hop inside home address space answered")
    isp = pinned_isp
    if isp is None:
        beyond = [(i, hop) for i, hop in enumerate(hops) if i >= boundary and hop is not None]
        for ttl0, hop in beyond:
            if answers_echo(hop):
                isp = hop
                break
            notes.append(f"hop {ttl0 + 1} ({hop}) does not answer echo requests; skipped")
        if isp is None:
            notes.append("no hop outside home address space answered (no public hop)")
    return PathHops(router, isp, tuple(hops), tuple(notes))


# --- tracing ---------------------------------------------------------------------------------


@dataclass
class Tracer:
    """TTL-limited and plain echo requests over one icmplib socket of its own."""

    family: int
    privileged: bool
    timeout: float = 1.0
    identifier: int = field(default_factory=lambda: random.getrandbits(16))
    _sequence: int = field(default_factory=lambda: random.getrandbits(16))

    def __post_init__(self) -> None:
        self.icmp: IcmpSocket = open_socket(self.family, self.privileged)
        if self.privileged:  # open_socket lets only echo replies through: let everything in
            import contextlib

            from monitor.icmp_echo import ICMP6_FILTER, ICMP_FILTER, SOL_RAW

            with contextlib.suppress(OSError):
                if self.family == socket.AF_INET:
                    self.icmp.sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", 0))
                else:
                    self.icmp.sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER,
                                              struct.pack("8I", *([0] * 8)))
        else:
            level = socket.IPPROTO_IP if self.family == socket.AF_INET else socket.IPPROTO_IPV6
            option = IP_RECVERR if self.family == socket.AF_INET else IPV6_RECVERR
            self.icmp.sock.setsockopt(level, option, 1)
        self.icmp.sock.setblocking(False)

    def close(self) -> None:
        self.icmp.close()

    def __enter__(self) -> Tracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, address: str, ttl: int) -> int:
        self._sequence = (self._sequence + 1) & 0xFFFF
        request = ICMPRequest(address, self.identifier, self._sequence, payload=PAYLOAD, ttl=ttl)
        if not self.privileged:
            # a Time Exceeded that came in sets the socket's pending error, and the next send
            # would return that error instead of sending: read (and so clear) it first
            self.icmp.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        try:
            self.icmp.send(request)
        except Exception as exc:  # noqa: BLE001 - icmplib's errors: a request that did not go
            log.debug("path: send failed: %s", exc)
        self.identifier_on_wire = request.id
        return self._sequence

    def trace(self, address: str, max_hops: int, rounds: int = 3) -> list[str | None]:
        """The address of each hop 1..max_hops that sent Time Exceeded (None: none came), cut
        after the destination itself answers. Rounds go ROUND_GAP apart: the first requests
        may wait for address resolution (ARP, neighbour discovery) at every hop, and routers
        limit how many ICMP errors they send per second."""
        sent: dict[int, int] = {}  # sequence -> ttl
        found: list[tuple[str, str, int]] = []
        for round_ in range(rounds):
            batch = {self._send(address, ttl): ttl for ttl in range(1, max_hops + 1)}
            sent.update(batch)
            if round_ < rounds - 1:
                found += self._collect(set(sent), wait=ROUND_GAP)
        found += self._collect(set(sent))
        hops: dict[int, str] = {}
        reached: int | None = None
        for kind, source, sequence in found:
            ttl = sent[sequence]
            if kind == "reply":
                reached = ttl if reached is None else min(reached, ttl)
            else:
                hops.setdefault(ttl, source)
        last = (reached - 1) if reached is not None else max(hops, default=0)
        return [hops.get(ttl) for ttl in range(1, last + 1)]

    def answers_echo(self, address: str, tries: int = 3) -> bool:
        sequences = {self._send(address, 64) for _ in range(tries)}
        return any(kind == "reply" and source == canonical(address)
                   for kind, source, _ in self._collect(sequences, stop_at_reply=True))

    def _collect(self, sequences: set[int], stop_at_reply: bool = False,
                 wait: float | None = None) -> list[tuple[str, str, int]]:
        """("reply" | "exceeded", source, sequence) for our requests, for `wait` seconds
        (default: `timeout`)."""
        found: list[tuple[str, str, int]] = []
        deadline = time.monotonic() + (self.timeout if wait is None else wait)
        poller = select.poll()
        poller.register(self.icmp.sock.fileno(), select.POLLIN | select.POLLERR)
        while (left := deadline - time.monotonic()) > 0:
            if not poller.poll(left * 1000):
                break
            for item in self._read_all():
                if item[2] in sequences:
                    found.append(item)
                    if stop_at_reply and item[0] == "reply":
                        return found
        return found

    def _read_all(self) -> list[tuple[str, str, int]]:
        items: list[tuple[str, str, int]] = []
        sock = self.icmp.sock
        if not self.privileged:  # errors first: they also make plain reads fail
            while True:
                try:
                    data, ancillary, _, _ = sock.recvmsg(1024, 512, socket.MSG_ERRQUEUE)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                item = self._from_error_queue(data, ancillary)
                if item is not None:
                    items.append(item)
        while True:
            try:
                packet, source = sock.recvfrom(1024)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # a pending error report: read it from the error queue next time
            reply = self.icmp._parse_reply(packet, source[0], time.time())
            if reply is None:
                continue
            if self.privileged and reply.id != self.identifier:
                continue  # another pinger's (raw sockets see every ICMP packet)
            if reply.type == ECHO_REPLY[self.family]:
                items.append(("reply", canonical(reply.source), reply.sequence))
            elif reply.type == TIME_EXCEEDED[self.family]:
                items.append(("exceeded", canonical(reply.source), reply.sequence))
        return items

    def _from_error_queue(self, data: bytes, ancillary: list[tuple[int, int, bytes]]
                          ) -> tuple[str, str, int] | None:
        """A Time Exceeded on a datagram socket: the data is our request (ICMP header first),
        the control message the extended error with the offender's address after it."""
        if len(data) < 8:
            return None
        sequence = struct.unpack("!H", data[6:8])[0]
        for _, _, payload in ancillary:
            if len(payload) < EXTENDED_ERROR.size:
                continue
            _, origin, kind, _, _, _, _ = EXTENDED_ERROR.unpack_from(payload)
            if origin not in (SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6):
                continue
            if kind != TIME_EXCEEDED[self.family]:
                continue
            offender = payload[EXTENDED_ERROR.size:]
            if self.family == socket.AF_INET and len(offender) >= 8:
                source = socket.inet_ntop(socket.AF_INET, offender[4:8])
            elif self.family == socket.AF_INET6 and len(offender) >= 24:
                source = socket.inet_ntop(socket.AF_INET6, offender[8:24])
            else:
                continue
            return ("exceeded", canonical(source), sequence)
        return None


def discover(destination: str, *, privileged: bool, max_hops: int = 10, timeout: float = 1.0,
             container: bool | None = None, pinned_router: str | None = None,
             pinned_isp: str | None = None) -> PathHops:
    """Trace towards `destination` (an IP address) and classify the hops. Raises OSError."""
    with Tracer(family_of(destination), privileged, timeout) as tracer:
        hops = tracer.trace(destination, max_hops)
        checked: dict[str, bool] = {}

        def answers(address: str) -> bool:
            if address not in checked:
                checked[address] = tracer.answers_echo(address)
            return checked[address]

        return classify(hops, answers, container=in_container() if container is None
                        else container, pinned_router=pinned_router, pinned_isp=pinned_isp)


def is_cgnat(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.version == 4 and ip in CGNAT



