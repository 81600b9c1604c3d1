"""DNS, continuously: look a name up every `interval` through the system resolver and through
each configured resolver; a run of failed checks while pings answer is a DNS outage.

The system resolver is getaddrinfo (what every program on the machine uses: /etc/resolv.conf,
nsswitch); a configured resolver is asked directly with one UDP query for the A record (RFC
1035 section 4: a 12-byte header, one question; an answer with RCODE 0 and at least one record
is a success). Each look-up runs in a daemon thread of its own, abandoned after `timeout`, so a
hanging resolver holds nothing up.
"""

from __future__ import annotations

import functools
import logging
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger("monitor.jobs.latency.dns")

SYSTEM = "system"  # the resolver label of the system resolver
RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


@dataclass(frozen=True)
class Lookup:
    resolver: str  # SYSTEM or the resolver's address
    seconds: float | None  # None: failed
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.seconds is not None


# --- one query, by hand ----------------------------------------------------------------------


def build_query(name: str, ident: int) -> bytes:
    header = struct.pack("!6H", ident, 0x0100, 1, 0, 0, 0)  # recursion desired, one question
    labels = b"".join(bytes([len(part)]) + part.encode("idna")
                      for part in name.rstrip(".").split(".") if part)
    return header + labels + b"\x00" + struct.pack("!2H", 1, 1)  # A, IN


def parse_answer(packet: bytes, ident: int) -> str | None:
    """None if the packet answers query `ident` with at least one record, else why not."""
    if len(packet) < 12:
        return "short reply"
    got, flags, _, answers, _, _ = struct.unpack("!6H", packet[:12])
    if got != ident or not flags & 0x8000:
        return "not our reply"
    rcode = flags & 0x000F
    if rcode:
        return RCODES.get(rcode, f"RCODE {rcode}")
    return None if answers else "no records"


def query_resolver(resolver: str, name: str, timeout: float, port: int = 53) -> Lookup:
    family = socket.AF_INET6 if ":" in resolver else socket.AF_INET
    ident = random.getrandbits(16)
    started = time.monotonic()
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.connect((resolver, port))
            sock.send(build_query(name, ident))
            while True:
                problem = parse_answer(sock.recv(4096), ident)
                if problem != "not our reply":
                    break
    except TimeoutError:
        return Lookup(resolver, None, f"no answer within {timeout:g} s")
    except OSError as exc:
        return Lookup(resolver, None, exc.strerror or str(exc))
    if problem is not None:
        return Lookup(resolver, None, problem)
    return Lookup(resolver, time.monotonic() - started)


def query_system(name: str, timeout: float) -> Lookup:
    box: dict[str, object] = {}
    started = time.monotonic()

    def work() -> None:
        try:
            socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
            box["seconds"] = time.monotonic() - started
        except (OSError, UnicodeError) as exc:
            box["error"] = str(exc)

    worker = threading.Thread(target=work, daemon=True, name="latency-dns-system")
    worker.start()
    worker.join(timeout)
    seconds = box.get("seconds")
    if isinstance(seconds, float):
        return Lookup(SYSTEM, seconds)
    return Lookup(SYSTEM, None, str(box.get("error") or f"no answer within {timeout:g} s"))


# --- DNS outages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DnsEdge:
    down: bool
    start: float  # the first failed check
    end: float | None = None  # the first good check again


class DnsOutageTracker:
    """A DNS outage: `threshold` consecutive failed checks while the internet answers pings.
    It ends at the first good check (or when the internet goes down: then it is the internet's
    outage, not DNS's)."""

    def __init__(self, threshold: int = 2) -> None:
        self.threshold = threshold
        self.down = False
        self.outages = 0
        self._run = 0
        self._run_start = 0.0

    def check(self, at: float, ok: bool, internet_down: bool) -> DnsEdge | None:
        if ok or internet_down:
            self._run = 0
            if self.down:
                self.down = False
                return DnsEdge(False, self._run_start, at)
            return None
        if self._run == 0:
            self._run_start = at
        self._run += 1
        if not self.down and self._run >= self.threshold:
            self.down = True
            self.outages += 1
            return DnsEdge(True, self._run_start)
        return None

    def current(self, now: float) -> float:
        return max(0.0, now - self._run_start) if self.down else 0.0


# --- the checking thread -----------------------------------------------------------------------


class DnsChecker:
    def __init__(self, name: str, resolvers: Sequence[str], *, system: bool, interval: float,
                 timeout: float, on_check: Callable[[float, list[Lookup]], None]) -> None:
        self.name = name
        self.resolvers = list(resolvers)
        self.system = system
        self.interval = interval
        self.timeout = timeout
        self.on_check = on_check
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="latency-dns", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, wait: float = 2.0) -> None:
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(wait)

    def check(self) -> list[Lookup]:
        """One look-up through each resolver, at the same time."""
        results: list[Lookup | None] = [None] * (len(self.resolvers) + int(self.system))
        jobs: list[Callable[[], Lookup]] = []
        if self.system:
            jobs.append(lambda: query_system(self.name, self.timeout))
        for resolver in self.resolvers:
            jobs.append(functools.partial(query_resolver, resolver, self.name, self.timeout))

        def run(index: int, job: Callable[[], Lookup]) -> None:
            results[index] = job()

        threads = [threading.Thread(target=run, args=(index, job), daemon=True,
                                    name="latency-dns-lookup") for index, job in enumerate(jobs)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + self.timeout + 0.5
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        labels = ([SYSTEM] if self.system else []) + self.resolvers
        return [result or Lookup(label, None, "look-up hung")
                for label, result in zip(labels, results, strict=True)]

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            at = time.time()
            try:
                self.on_check(at, self.check())
            except Exception:  # noqa: BLE001 - a bug in recording must not end the checks
                log.exception("latency: DNS check failed")
            next_at += self.interval
            now = time.monotonic()
            if next_at < now:  # fell behind (suspend): no burst of checks
                next_at = now + self.interval
            self._stop.wait(next_at - now)
