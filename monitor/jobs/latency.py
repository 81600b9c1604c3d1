"""The latency job: ICMP echo to every target at once, RTT/jitter/loss, internet up/down.

`measure()` resolves each target once, pings all of them concurrently on a fixed schedule
(`monitor.icmp_echo`: requests are sent without waiting for replies) and returns the raw RTTs;
`record()` turns them into metrics. The outage state (up/down edges, time spent
down) lives in the job object, i.e. in the daemon, so an outage shorter than a Prometheus
scrape interval is still counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.config import LatencyConfig, PingTarget
from monitor.icmp import resolve_privileged
from monitor.icmp_echo import echo_round
from monitor.jobs.base import JobEnv
from monitor.logs import event
from monitor.metrics import LatencyMetrics

log = logging.getLogger("monitor.jobs.latency")

NAN = float("nan")
STOP_POLL = 0.1


# --- pure parts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PingStats:
    """One target's figures for one round. RTT figures are None without replies."""

    sent: int
    received: int
    min: float | None
    avg: float | None
    max: float | None
    jitter: float | None

    @property
    def loss(self) -> float | None:
        return None if self.sent == 0 else 1 - self.received / self.sent

    @property
    def up(self) -> bool:
        return self.received > 0


def jitter(rtts: Sequence[float]) -> float | None:
    """Mean absolute difference of consecutive RTTs (as icmplib and smokeping define it).

    Needs two replies; None otherwise (never 0: one reply says nothing about jitter).
    """
    if len(rtts) < 2:
        return None
    return sum(abs(b - a) for a, b in zip(rtts, rtts[1:], strict=False)) / (len(rtts) - 1)


def ping_stats(rtts: Sequence[float], sent: int) -> PingStats:
    """Stats from the RTTs (seconds, in sending order) of the replies to `sent` requests."""
    if len(rtts) > sent:
        raise ValueError(f"{len(rtts)} replies to {sent} requests")
    if not rtts:
        return PingStats(sent, 0, None, None, None, None)
    return PingStats(sent, len(rtts), min(rtts), sum(rtts) / len(rtts), max(rtts), jitter(rtts))


def internet_up(results: Sequence[TargetResult]) -> bool | None:
    """True if any internet target answered; None if no target counts for the internet."""
    counted = [result for result in results if result.internet]
    if not counted:
        return None
    return any(result.rtts for result in counted)


@dataclass(frozen=True)
class Edge:
    """An up/down transition the tracker saw."""

    down: bool
    counted: bool  # an up->down transition (not the daemon starting during an outage)
    outage_seconds: float  # for an up edge: how long the outage lasted, as observed


class OutageTracker:
    """Internet up/down over rounds, at round resolution.

    Each verdict comes with the time its round started (monotonic seconds): the moment the
    round began sampling the link. A round that finds the internet down starts (or continues)
    an outage at that time; the first round that finds it up again ends it. Time down is added
    round by round, so the counter grows during an outage, not only after it.
    """

    def __init__(self) -> None:
        self.state: bool | None = None  # None: unknown (no round yet)
        self._last: float | None = None
        self._outage_started: float | None = None
        self.outages = 0
        self.outage_seconds = 0.0

    def observe(self, up: bool | None, at: float) -> tuple[float, Edge | None]:
        """Feed one round's verdict. Returns (seconds of outage to add, edge or None)."""
        if up is None:  # no internet target in the config: nothing to say
            return 0.0, None
        added = 0.0
        if self.state is False and self._last is not None:
            added = max(0.0, at - self._last)  # down since the previous round
        edge = None
        if up is False and self.state is not False:
            counted = self.state is True
            self.outages += int(counted)
            self._outage_started = at
            edge = Edge(down=True, counted=counted, outage_seconds=0.0)
        elif up is True and self.state is False:
            started = self._outage_started if self._outage_started is not None else at
            edge = Edge(down=False, counted=False, outage_seconds=at - started)
            self._outage_started = None
        self.state = up
        self._last = at
        self.outage_seconds += added
        return added, edge


# --- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetResult:
    label: str
    host: str
    address: str | None  # None: did not resolve
    internet: bool
    sent: int
    rtts: list[float]  # seconds, in sending order
    error: str | None = None


@dataclass(frozen=True)
class LatencyResult:
    targets: list[TargetResult]
    privileged: bool
    started: float  # monotonic, when the round began
    duration: float


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _getaddrinfo(host: str) -> asyncio.Future[list[Any]]:
    """getaddrinfo in a daemon thread of its own. asyncio's executor threads are joined when
    the loop (and the interpreter) ends, so a look-up hanging past its timeout would hold the
    round, `once` and the daemon's shutdown; this thread is simply abandoned."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[list[Any]] = loop.create_future()

    def settle(outcome: Any, failed: bool) -> None:
        if future.done():
            return
        if failed:
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    def work() -> None:
        try:
            outcome, failed = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM), False
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            outcome, failed = exc, True
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(settle, outcome, failed)

    threading.Thread(target=work, name=f"latency-dns-{host}", daemon=True).start()
    return future


async def _resolve(host: str) -> str:
    """The first IPv4 address of `host`, else its first IPv6 one (icmplib's own order)."""
    if _is_literal(host):
        return host
    addresses = [info[4][0] for info in await _getaddrinfo(host)]
    v4 = [address for address in addresses if ":" not in address]
    if not (v4 or addresses):
        raise OSError(f"{host} has no address")
    return str((v4 or addresses)[0])


async def _ping_one(target: PingTarget, lookup: asyncio.Task[str], config: LatencyConfig,
                   privileged: bool) -> TargetResult:
    """One target; whatever goes wrong stays with this target."""
    address: str | None = None
    rtts: list[float] = []
    error = None
    try:
        address = await lookup
    except TimeoutError:
        error = f"does not resolve: no DNS answer within {config.packet_timeout:g} s"
    except (OSError, UnicodeError) as exc:  # gaierror; idna refuses e.g. "a..b"
        error = f"does not resolve: {exc}"
    if address is not None:
        try:
            echoes = await echo_round(address, count=config.count,
                                      interval=config.packet_interval,
                                      timeout=config.packet_timeout, privileged=privileged)
            rtts = echoes.rtts
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
    # every request we meant to send counts, also the ones a dead route refused
    return TargetResult(target.label, target.host, address, target.counts_for_internet,
                        config.count, rtts, error)


async def _round(targets: Sequence[PingTarget], config: LatencyConfig,
                 privileged: bool) -> list[TargetResult]:
    """Each distinct host is resolved once; each target pings as soon as its address is known.

    A target's round lasts at most packet_timeout (DNS) + (count - 1) x packet_interval +
    packet_timeout, whether it answers or not; a socket error stays with its target.
    """
    lookups = {host: asyncio.ensure_future(asyncio.wait_for(_resolve(host), config.packet_timeout))
               for host in dict.fromkeys(target.host for target in targets)}
    try:
        return list(await asyncio.gather(
            *(_ping_one(target, lookups[target.host], config, privileged) for target in targets)))
    finally:
        for lookup in lookups.values():
            lookup.cancel()


async def _until_stopped(coro: Any, stop: threading.Event) -> Any:
    task = asyncio.ensure_future(coro)
    while not task.done():
        if stop.is_set():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise InterruptedError("stopped before the round finished")
        await asyncio.wait({task}, timeout=STOP_POLL)
    return task.result()


def measure(config: LatencyConfig, privileged: bool, stop: threading.Event | None = None,
            clock: Callable[[], float] = time.monotonic) -> LatencyResult:
    """One round: every target resolved once and pinged `count` times, all concurrently."""
    started = clock()
    results = asyncio.run(_until_stopped(_round(config.targets, config, privileged),
                                         stop or threading.Event()))
    return LatencyResult(results, privileged, started, clock() - started)


# --- recording -------------------------------------------------------------------------------


def _gauge_value(value: float | None) -> float:
    return NAN if value is None else value


def record(result: LatencyResult, metrics: LatencyMetrics,
           tracker: OutageTracker) -> dict[str, Any]:
    """Metrics from one round; returns the key figures."""
    figures: dict[str, Any] = {}
    for target in result.targets:
        stats = ping_stats(target.rtts, target.sent)
        label = target.label
        for rtt in target.rtts:
            metrics.rtt.labels(target=label).observe(rtt)
        metrics.rtt_min.labels(target=label).set(_gauge_value(stats.min))
        metrics.rtt_avg.labels(target=label).set(_gauge_value(stats.avg))
        metrics.rtt_max.labels(target=label).set(_gauge_value(stats.max))
        metrics.jitter.labels(target=label).set(_gauge_value(stats.jitter))
        metrics.loss.labels(target=label).set(_gauge_value(stats.loss))
        metrics.sent.labels(target=label).inc(stats.sent)
        metrics.received.labels(target=label).inc(stats.received)
        metrics.up.labels(target=label).set(1 if stats.up else 0)
        figures[label] = _target_figures(stats, target)
    up = internet_up(result.targets)
    metrics.internet_up.set(NAN if up is None else int(up))
    added, edge = tracker.observe(up, result.started)
    if added:
        metrics.outage_seconds.inc(added)
    if edge is not None:
        _log_edge(edge, result.targets)
        if edge.counted:
            metrics.outages.inc()
        if not edge.down:  # internet back: the outage report needs wall-clock edges
            ended = time.time() - result.duration  # when this round began
            metrics.recent_outages.add(ended - edge.outage_seconds, ended)
    return {"internet_up": None if up is None else int(up), "targets": figures}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _target_figures(stats: PingStats, target: TargetResult) -> dict[str, Any]:
    figures: dict[str, Any] = {"avg_ms": _ms(stats.avg), "jitter_ms": _ms(stats.jitter),
                               "loss": None if stats.loss is None else round(stats.loss, 4),
                               "sent": stats.sent, "received": stats.received}
    if target.error:
        figures["error"] = target.error
    return figures


def _log_edge(edge: Edge, targets: Sequence[TargetResult]) -> None:
    internet = [target.label for target in targets if target.internet]
    if edge.down:
        message = "internet down" if edge.counted else "internet down (already at start)"
        event(log, logging.WARNING, message, targets=internet)
    else:
        event(log, logging.INFO, f"internet back after {edge.outage_seconds:.0f} s",
              outage_seconds=round(edge.outage_seconds, 3), targets=internet)


# --- the job ---------------------------------------------------------------------------------


class LatencyJob:
    name = "latency"
    uses_link = False

    def __init__(self, config: LatencyConfig, metrics: LatencyMetrics,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.metrics = metrics
        self.clock = clock
        self.tracker = OutageTracker()
        self._privileged: bool | None = None
        for target in config.targets:  # every series exists from the start, for rate()
            metrics.sent.labels(target=target.label)
            metrics.received.labels(target=target.label)

    def _socket_mode(self) -> bool:
        """Resolved once and logged once; raises IcmpUnavailable (retried next round)."""
        if self._privileged is None:
            self._privileged = resolve_privileged(self.config.privileged)
            event(log, logging.INFO, "latency: using "
                  + ("raw ICMP sockets (CAP_NET_RAW)" if self._privileged
                     else "unprivileged ICMP datagram sockets (net.ipv4.ping_group_range)"),
                  privileged=self._privileged, configured=str(self.config.privileged).lower())
        return self._privileged

    def run(self, stop: threading.Event) -> dict[str, Any]:
        privileged = self._socket_mode()
        result = measure(self.config, privileged, stop, self.clock)
        for target in result.targets:
            if target.error:
                event(log, logging.WARNING, f"latency: target {target.label} failed",
                      target=target.label, host=target.host, error=target.error)
        figures = record(result, self.metrics, self.tracker)
        return {"internet_up": figures["internet_up"],
                "socket": "raw" if privileged else "unprivileged",
                "round_seconds": round(result.duration, 3), "targets": figures["targets"]}


def build(env: JobEnv) -> LatencyJob:
    return LatencyJob(env.config.jobs.latency, env.metrics.latency)
