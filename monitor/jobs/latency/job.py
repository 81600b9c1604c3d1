"""The latency job: continuous ICMP echo to every target, RTT/jitter/loss, internet outages.

A prober thread (`monitor.jobs.latency.prober`) sends one request to every target each
`packet_interval` (1 s by default) on a fixed schedule and never waits for replies. Every
decided request (answered or lost) updates the counters and the RTT histogram at once; every
decided slot ("did any internet target answer?") goes to the `OutageTracker`, which finds
outages at slot resolution. Each run of the job (every `interval`) takes the requests decided
since the previous run and sets the per-window gauges and key figures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.icmp_echo import resolve_privileged
from monitor.jobs.base import Job, JobEnv
from monitor.jobs.latency.card import LatencyCard
from monitor.jobs.latency.config import WINDOW_MARGIN, LatencyConfig
from monitor.jobs.latency.metrics import LatencyMetrics
from monitor.jobs.latency.prober import Prober, ProbeTarget
from monitor.logs import event
from monitor.units import ms

log = logging.getLogger("monitor.jobs.latency")

NAN = float("nan")
WAIT_POLL = 0.05


# --- pure parts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PingStats:
    """One target's figures for one window. RTT figures are None without replies."""

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


@dataclass(frozen=True)
class Edge:
    """An up/down transition the tracker saw. Times are Unix seconds."""

    down: bool
    counted: bool  # the outage began with the internet up (not at the daemon's start)
    start: float  # the outage's first silent slot
    end: float | None = None  # back edges: the first reply

    @property
    def seconds(self) -> float:
        return 0.0 if self.end is None else self.end - self.start


class OutageTracker:
    """Internet up/down from decided probe slots, at slot resolution.

    A slot is silent when no internet target answered its request. An outage starts at the
    first of `threshold` consecutive silent slots (so fewer lost slots are no outage) and ends
    at the first reply after it. Time down is added slot by slot while the outage lasts, so
    the counter grows during it. Slots come in order, except that an answered slot may come
    early while the internet is down (`down`).
    """

    def __init__(self, threshold: int = 3) -> None:
        self.threshold = threshold
        self.state: bool | None = None  # None: unknown (no slot yet)
        self.outages = 0
        self.outage_seconds = 0.0
        self.outage_start: float | None = None
        self._counted = False
        self._run_start = 0.0
        self._run_length = 0
        self._accounted = 0.0  # time down counted up to here

    @property
    def down(self) -> bool:
        return self.state is False

    def current_outage(self, now: float) -> float:
        start = self.outage_start
        return 0.0 if start is None else max(0.0, now - start)

    def slot(self, at: float, reply_at: float | None) -> tuple[float, Edge | None]:
        """Feed one decided slot (sent at `at`, first reply at `reply_at` or None).
        Returns (seconds of outage to add, edge or None)."""
        if reply_at is None:
            if self._run_length == 0:
                self._run_start = at
            self._run_length += 1
            if self.state is False:
                added = max(0.0, at - self._accounted)
                self._accounted = max(self._accounted, at)
                self.outage_seconds += added
                return added, None
            if self._run_length < self.threshold:
                return 0.0, None
            self._counted = self.state is True
            self.outages += int(self._counted)
            self.state = False
            self.outage_start = self._run_start
            self._accounted = at
            added = at - self._run_start
            self.outage_seconds += added
            return added, Edge(down=True, counted=self._counted, start=self._run_start)
        self._run_length = 0
        if self.state is not False:
            self.state = True
            return 0.0, None
        start = self.outage_start if self.outage_start is not None else at
        end = max(reply_at, self._accounted)
        added = end - self._accounted
        self.outage_seconds += added
        self.state, self.outage_start = True, None
        return added, Edge(down=False, counted=self._counted, start=start, end=end)


# --- recording -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetWindow:
    label: str
    host: str
    address: str | None
    internet: bool
    sent: int
    rtts: list[float]  # seconds, answered requests in sending order
    error: str | None = None


def _gauge_value(value: float | None) -> float:
    return NAN if value is None else value


def record_window(targets: Sequence[TargetWindow], metrics: LatencyMetrics) -> dict[str, Any]:
    """The per-window gauges; returns each target's key figures. (Counters, the histogram and
    the internet state are updated per request and per slot, as they are decided.)"""
    figures: dict[str, Any] = {}
    for target in targets:
        stats = ping_stats(target.rtts, target.sent)
        label = target.label
        metrics.rtt_min.labels(target=label).set(_gauge_value(stats.min))
        metrics.rtt_avg.labels(target=label).set(_gauge_value(stats.avg))
        metrics.rtt_max.labels(target=label).set(_gauge_value(stats.max))
        metrics.jitter.labels(target=label).set(_gauge_value(stats.jitter))
        metrics.loss.labels(target=label).set(_gauge_value(stats.loss))
        metrics.up.labels(target=label).set(1 if stats.up else 0)
        figures[label] = _target_figures(stats, target)
    return figures


def _target_figures(stats: PingStats, target: TargetWindow) -> dict[str, Any]:
    figures: dict[str, Any] = {"avg_ms": ms(stats.avg), "jitter_ms": ms(stats.jitter),
                               "loss": None if stats.loss is None else round(stats.loss, 4),
                               "sent": stats.sent, "received": stats.received}
    if target.error:
        figures["error"] = target.error
    return figures


# --- the job ---------------------------------------------------------------------------------


class LatencyJob(Job):
    name = "latency"
    uses_link = False

    def __init__(self, config: LatencyConfig, metrics: LatencyMetrics,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.metrics = metrics
        self.clock = clock
        self.tracker = OutageTracker(config.outage_after)
        self.prober: Prober | None = None
        self._privileged: bool | None = None
        self._lock = threading.Lock()
        self._internet = [target.label for target in config.targets
                          if target.counts_for_internet]
        self._counters: dict[str, tuple[Any, Any, Any]] = {}
        for target in config.targets:  # every series exists from the start, for rate()
            label = target.label
            self._counters[label] = (metrics.sent.labels(target=label),
                                     metrics.received.labels(target=label),
                                     metrics.rtt.labels(target=label))
        metrics.current_outage.set_function(lambda: self.tracker.current_outage(self.clock()))

    # --- hooks ---

    def on_start(self) -> None:
        """Start probing with the daemon; without ICMP permission, run() says why."""
        try:
            self._ensure_prober()
        except Exception as exc:  # noqa: BLE001 - each run fails (and logs) until it works
            event(log, logging.WARNING, "latency: cannot start probing yet", error=str(exc))

    def close(self) -> None:
        with self._lock:
            prober, self.prober = self.prober, None
        if prober is not None:
            prober.stop()

    def _ensure_prober(self) -> Prober:
        with self._lock:
            if self.prober is not None:
                return self.prober
            privileged = self._socket_mode()
            self.prober = Prober(
                [ProbeTarget(t.label, t.host, t.counts_for_internet) for t in self.config.targets],
                interval=self.config.packet_interval, timeout=self.config.packet_timeout,
                privileged=privileged, resolve_every=max(self.config.interval, 60.0),
                on_probe=self._on_probe, on_slot=self._on_slot,
                down=lambda: self.tracker.down)
            self.prober.start()
            return self.prober

    def _socket_mode(self) -> bool:
        """Resolved once and logged once; raises IcmpUnavailable (retried next run)."""
        if self._privileged is None:
            self._privileged = resolve_privileged(self.config.privileged)
            event(log, logging.INFO, "latency: using "
                  + ("raw ICMP sockets (CAP_NET_RAW)" if self._privileged
                     else "unprivileged ICMP datagram sockets (net.ipv4.ping_group_range)"),
                  privileged=self._privileged, configured=str(self.config.privileged).lower())
        return self._privileged

    # --- called by the prober thread ---

    def _on_probe(self, label: str, rtt: float | None) -> None:
        sent, received, histogram = self._counters[label]
        sent.inc()
        if rtt is not None:
            received.inc()
            histogram.observe(rtt)

    def _on_slot(self, slot: int, at: float, reply_at: float | None) -> None:
        added, edge = self.tracker.slot(at, reply_at)
        if added:
            self.metrics.outage_seconds.inc(added)
        self.metrics.internet_up.set(0 if self.tracker.down else 1)
        if edge is None:
            return
        if edge.down:
            if edge.counted:
                self.metrics.outages.inc()
            message = "internet down" if edge.counted else "internet down (already at start)"
            event(log, logging.WARNING, message, targets=self._internet,
                  since=round(edge.start, 3))
            return
        assert edge.end is not None
        self.metrics.recent_outages.add(edge.start, edge.end)  # the outage report's edges
        event(log, logging.INFO, f"internet back after {edge.seconds:.0f} s",
              outage_seconds=round(edge.seconds, 3), targets=self._internet,
              start=round(edge.start, 3), end=round(edge.end, 3))

    # --- a run: the window since the previous one ---

    def card(self) -> LatencyCard:
        return LatencyCard(self.metrics.recent_outages, metrics=self.metrics,
                           targets=[target.label for target in self.config.targets])

    def run(self, stop: threading.Event) -> dict[str, Any]:
        started = time.monotonic()
        prober = self._ensure_prober()
        # the first window (and `once`) waits for `count` requests per target, but reports what
        # it has rather than run into the job's timeout
        give_up = started + max(WAIT_POLL, self.config.timeout - WINDOW_MARGIN)
        while min(prober.decided(), default=self.config.count) < self.config.count:
            if time.monotonic() >= give_up:
                break
            if stop.wait(WAIT_POLL):
                raise InterruptedError("stopped before the window was complete")
            if not prober.thread.is_alive():
                raise RuntimeError("the latency prober stopped")
        windows = []
        for state, probes in prober.take():
            windows.append(TargetWindow(
                state.target.label, state.target.host, state.address, state.target.internet,
                len(probes), [rtt for _, rtt in probes if rtt is not None],
                state.error if state.address is None or not any(
                    rtt is not None for _, rtt in probes) else None))
            if windows[-1].error:
                event(log, logging.WARNING, f"latency: target {state.target.label} failed",
                      target=state.target.label, host=state.target.host,
                      error=windows[-1].error)
        figures = record_window(windows, self.metrics)
        up = self.tracker.state
        return {"internet_up": None if up is None or not self._internet else int(up),
                "socket": "raw" if prober.privileged else "unprivileged",
                "round_seconds": round(time.monotonic() - started, 3),
                "outages": self.tracker.outages,
                "outage_seconds": round(self.tracker.outage_seconds, 3),
                "targets": figures}


def build(env: JobEnv) -> LatencyJob:
    return LatencyJob(env.job_config("latency", LatencyConfig),
                      LatencyMetrics(env.metrics.registry))
