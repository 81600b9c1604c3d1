"""RTT under load (bufferbloat): ping a target while a transfer saturates the link.

The figure is the MEDIAN of the replies received during the load: a few lost or very late
echoes (which a saturated link produces) do not swing it, yet a standing queue shows fully.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Literal

from monitor import addresses
from monitor.icmp_echo import echo_round
from monitor.jobs.latency.config import PingTarget
from monitor.logs import event

log = logging.getLogger("monitor.jobs.bandwidth")

PING_INTERVAL = 0.1
PING_TIMEOUT = 1.0


class LoadedRttProbe:
    """Pings `host` every PING_INTERVAL while a `with probe.during(direction)` block runs."""

    def __init__(self, host: str, privileged: bool) -> None:
        self.host = host
        self.privileged = privileged
        self.address = addresses.resolve(host)

    def ping_once(self) -> float | None:
        result = asyncio.run(echo_round(self.address, count=1, interval=0, timeout=PING_TIMEOUT,
                                        privileged=self.privileged))
        return result.rtts[0] if result.rtts else None

    def idle(self, count: int = 5) -> float | None:
        """Median RTT before the load: the baseline the loaded figure is compared with."""
        rtts = []
        for _ in range(count):
            rtt = self.ping_once()
            if rtt is not None:
                rtts.append(rtt)
            time.sleep(PING_INTERVAL)
        return statistics.median(rtts) if rtts else None

    @contextlib.contextmanager
    def during(self, results: dict[str, float], direction: str) -> Iterator[None]:
        rtts: list[float] = []
        done = threading.Event()

        def loop() -> None:
            while not done.is_set():
                started = time.monotonic()
                try:
                    rtt = self.ping_once()
                except Exception as exc:  # noqa: BLE001 - the throughput test goes on
                    event(log, logging.WARNING, "loaded RTT ping failed", error=str(exc))
                    return
                if rtt is not None and not done.is_set():
                    rtts.append(rtt)
                done.wait(max(0.0, PING_INTERVAL - (time.monotonic() - started)))

        thread = threading.Thread(target=loop, name=f"loaded-rtt-{direction}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(PING_TIMEOUT + 1)
            if rtts:
                results[direction] = statistics.median(rtts)


def make_probe(targets: Sequence[PingTarget], privileged_mode: Literal["auto", True, False]
               ) -> LoadedRttProbe | None:
    """A probe for the latency job's first internet target, or None (with a log line) when
    there is none or ICMP is not allowed: the throughput test runs without loaded RTT."""
    from monitor.icmp_echo import IcmpUnavailable, resolve_privileged  # noqa: PLC0415

    host = next((t.host for t in targets if t.counts_for_internet), None)
    if host is None:
        event(log, logging.INFO, "no internet target in jobs.latency.targets; "
              "bandwidth tests run without loaded RTT")
        return None
    try:
        return LoadedRttProbe(host, resolve_privileged(privileged_mode))
    except IcmpUnavailable as exc:
        event(log, logging.WARNING, "loaded RTT skipped", reason=str(exc))
    except OSError as exc:
        event(log, logging.WARNING, "loaded RTT skipped", target=host, reason=str(exc))
    return None


def tcp_connect_rtt(host: str, port: int, *, tries: int = 3, timeout: float = 5.0) -> float:
    """Median TCP handshake time to host:port: an idle latency that needs no ICMP."""
    samples = []
    for _ in range(tries):
        started = time.perf_counter()
        with socket.create_connection((host, port), timeout=timeout):
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)
