"""A raw-socket ICMP echo responder with a chosen delay, jitter and loss per address.

Run it inside a namespace whose kernel ignores echo requests
(`sysctl net.ipv4.icmp_echo_ignore_all=1`), one `--profile ADDRESS:DELAY_MS:JITTER_MS:LOSS`
per address it answers for (the address must exist in that namespace):

    python tests/support/icmp_responder.py --record out.json --seed 7 \
        --profile 10.77.1.1:0:0:0 --profile 10.77.1.2:30:3:0.1

Each request is dropped with probability LOSS or answered after DELAY ± JITTER ms (uniform).
Signals provoke silences: SIGUSR1 toggles silence (every request is dropped while silent; the
record's "silences" holds each [start, end] as Unix seconds), SIGUSR2 drops the next request
to each address.
The responder writes `out.json.ready` once it listens and, on SIGTERM/SIGINT, `out.json`: per
address, one entry per request in arrival order with the ICMP id and sequence, whether it was
dropped and the delay it actually applied (measured by itself, in seconds, from the kernel's
arrival time of the request, SO_TIMESTAMPNS, so that its own wake-up is part of the delay and
not of the network in between, to the reply's sendto). Tests compare
what the job reports with this ground truth, not with the configured figures.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import select
import signal
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ECHO_REQUEST, ECHO_REPLY = 8, 0
ECHO6_REQUEST, ECHO6_REPLY = 128, 129
SO_TIMESTAMPNS = 35  # Linux; the control message has the same number (struct timespec)
TIMESPEC = struct.Struct("@ll")


@dataclass
class Profile:
    address: str
    delay: float  # seconds
    jitter: float
    loss: float
    rng: random.Random = field(repr=False, default_factory=random.Random)
    log: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str, seed: int) -> Profile:
        address, delay_ms, jitter_ms, loss = text.rsplit(":", 3)
        return cls(address, float(delay_ms) / 1000, float(jitter_ms) / 1000, float(loss),
                   random.Random(f"{seed}-{address}"))

    def decide(self) -> tuple[bool, float]:
        """(dropped, delay); both drawn every time so the stream depends only on the order."""
        dropped = self.rng.random() < self.loss
        delay = max(0.0, self.delay + self.rng.uniform(-self.jitter, self.jitter))
        return dropped, delay


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_reply(icmp: bytes, v6: bool = False) -> bytes | None:
    """The reply to an echo request (same id, sequence and payload), else None. The kernel
    fills in an ICMPv6 checksum (it covers a pseudo-header)."""
    if len(icmp) < 8 or icmp[0] != (ECHO6_REQUEST if v6 else ECHO_REQUEST):
        return None
    body = struct.pack("!BBH", ECHO6_REPLY if v6 else ECHO_REPLY, 0, 0) + icmp[4:]
    if v6:
        return body
    return body[:2] + struct.pack("!H", checksum(body)) + body[4:]


class Responder:
    def __init__(self, profiles: list[Profile]) -> None:
        self.profiles = profiles
        self.sockets: dict[socket.socket, Profile] = {}
        for profile in profiles:
            v6 = ":" in profile.address
            sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                                 socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
            sock.bind((profile.address, 0))  # receives only what is sent to this address
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self.sockets[sock] = profile
        self._due: list[tuple[float, int, socket.socket, bytes, str, dict[str, Any], float]] = []
        self._counter = 0
        self.running = True
        self.silent_since: float | None = None
        self.silences: list[list[float]] = []
        self.drop_next = 0
        self._dropped_next: set[str] = set()

    def toggle_silence(self) -> None:
        if self.silent_since is None:
            self.silent_since = time.time()
        else:
            self.silences.append([self.silent_since, time.time()])
            self.silent_since = None

    def drop_one(self) -> None:
        self.drop_next += 1

    def _forced_drop(self, address: str) -> bool:
        if self.silent_since is not None:
            return True
        if self.drop_next and address not in self._dropped_next:
            self._dropped_next.add(address)
            if len(self._dropped_next) == len(self.profiles):
                self.drop_next -= 1
                self._dropped_next.clear()
            return True
        return False

    def _receive(self, sock: socket.socket) -> None:
        profile = self.sockets[sock]
        while True:
            try:
                packet, ancillary, _, address = sock.recvmsg(65535, socket.CMSG_SPACE(16))
            except BlockingIOError:
                return
            received = time.perf_counter()
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = TIMESPEC.unpack_from(data)
                    received -= max(0.0, time.time() - seconds - nanoseconds / 1e9)
            source = address[0]
            v6 = sock.family == socket.AF_INET6
            icmp = packet if v6 else packet[(packet[0] & 0x0F) * 4:]  # raw v6: no IP header
            reply = echo_reply(icmp, v6)
            if reply is None:
                continue
            ident, sequence = struct.unpack("!HH", icmp[4:8])
            dropped, delay = profile.decide()
            forced = self._forced_drop(profile.address)
            entry: dict[str, Any] = {"id": ident, "seq": sequence, "dropped": dropped or forced,
                                     "delay": None, "at": time.time()}
            dropped = dropped or forced
            profile.log.append(entry)
            if not dropped:
                self._counter += 1
                heapq.heappush(self._due, (received + delay, self._counter, sock, reply, source,
                                           entry, received))

    def _send_due(self) -> None:
        while self._due and self._due[0][0] <= time.perf_counter():
            _, _, sock, reply, source, entry, received = heapq.heappop(self._due)
            sent = time.perf_counter()
            sock.sendto(reply, (source, 0))
            entry["delay"] = sent - received

    def serve(self) -> None:
        while self.running:
            timeout = 0.2
            if self._due:
                timeout = max(0.0, min(timeout, self._due[0][0] - time.perf_counter()))
            try:
                readable, _, _ = select.select(list(self.sockets), [], [], timeout)
            except InterruptedError:
                continue
            for sock in readable:
                self._receive(sock)
            self._send_due()

    def record(self) -> dict[str, Any]:
        if self.silent_since is not None:
            self.toggle_silence()
        return {"silences": self.silences,
                **{profile.address: profile.log for profile in self.profiles}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="append", required=True,
                        help="ADDRESS:DELAY_MS:JITTER_MS:LOSS")
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    responder = Responder([Profile.parse(text, args.seed) for text in args.profile])

    def stop(*_: object) -> None:
        responder.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, lambda *_: responder.toggle_silence())
    signal.signal(signal.SIGUSR2, lambda *_: responder.drop_one())
    Path(f"{args.record}.ready").write_text("ready\n")
    responder.serve()
    args.record.write_text(json.dumps(responder.record()))


if __name__ == "__main__":
    main()
