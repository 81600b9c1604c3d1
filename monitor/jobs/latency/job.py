"""The latency job: continuous ICMP echo to every target, RTT/jitter/loss, internet outages.

A prober thread (`monitor.jobs.latency.prober`) sends one request to every target each
`packet_interval` (1 s by default) on a fixed schedule and never waits for replies. Every
decided request (answered or lost) updates the counters and the RTT histogram at once; every
decided slot ("did any internet target answer?") goes to the `OutageTracker`, which finds
outages at slot resolution. Each run of the job (every `interval`) takes the requests decided
since the previous run and sets the per-window gauges and key figures.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor import addresses
from monitor.icmp_echo import canonical, resolve_privileged
from monitor.jobs.base import Job, JobEnv
from monitor.jobs.latency.card import LatencyCard
from monitor.jobs.latency.cause import DNS_CAUSE, ROLES, Cause, HopLog, decide
from monitor.jobs.latency.config import WINDOW_MARGIN, LatencyConfig
from monitor.jobs.latency.dns import DnsChecker, DnsEdge, DnsOutageTracker, Lookup
from monitor.jobs.latency.metrics import LatencyMetrics
from monitor.jobs.latency.path import PathHops
from monitor.jobs.latency.path_watch import PathWatcher
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
        self.path_metrics = metrics.path
        self.dns_metrics = metrics.dns
        self.hop_log = HopLog()
        self.path: PathHops | None = None
        self.hop_prober: Prober | None = None
        self.watcher: PathWatcher | None = None
        self.dns: DnsChecker | None = None
        self.dns_tracker = DnsOutageTracker(config.dns.outage_after)
        # internet outages that ended, waiting for their hops' last requests to be decided
        self._ending: list[tuple[float, float]] = []
        # DNS checks wait for the internet's verdict at their time: (at, ok, errors)
        self._dns_pending: collections.deque[tuple[float, bool, dict[str, str]]] = (
            collections.deque(maxlen=1000))
        self._dns_lock = threading.Lock()
        self._last_answered: float | None = None  # send time of the latest answered slot
        self._dns_last: dict[str, Lookup] = {}  # each resolver's latest look-up
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
        self.dns_metrics.current_outage.set_function(
            lambda: self.dns_tracker.current(self.clock()))
        # where it broke and DNS need an internet to break from: a job probing only private
        # targets (a LAN monitor) neither traces nor looks names up
        self._where = bool(self._internet)

    # --- hooks ---

    def on_start(self) -> None:
        """Start probing with the daemon; without ICMP permission, run() says why."""
        try:
            self._ensure_prober()
        except Exception as exc:  # noqa: BLE001 - each run fails (and logs) until it works
            event(log, logging.WARNING, "latency: cannot start probing yet", error=str(exc))
        self._start_where()

    def _start_where(self) -> None:
        """The path watcher and the DNS checker (each once, each when configured)."""
        if not self._where:
            return
        watcher = dns_checker = None
        with self._lock:  # started outside the lock: a pinned path calls _on_path at once
            if self.watcher is None:
                self.watcher = watcher = PathWatcher(
                    self.config.path, destination=self._trace_destination,
                    privileged=self._socket_mode, on_path=self._on_path,
                    metrics=self.path_metrics, timeout=min(1.0, self.config.packet_timeout),
                    busy=lambda: self.tracker.down)
            dns = self.config.dns
            if self.dns is None and dns.enabled:
                self.dns = dns_checker = DnsChecker(
                    dns.name, dns.resolvers, system=dns.system, interval=dns.interval,
                    timeout=dns.timeout, on_check=self._on_dns)
        for started in (watcher, dns_checker):
            if started is not None:
                started.start()

    def close(self) -> None:
        with self._lock:
            prober, self.prober = self.prober, None
            hops, self.hop_prober = self.hop_prober, None
            watcher, self.watcher = self.watcher, None
            dns, self.dns = self.dns, None
        for running in (watcher, dns, hops, prober):
            if running is not None:
                running.stop()
        self._finish_outages(force=True)

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
        self._finish_outages()
        added, edge = self.tracker.slot(at, reply_at)
        if added:
            self.metrics.outage_seconds.inc(added)
        self.metrics.internet_up.set(0 if self.tracker.down else 1)
        self._cause_so_far(at)
        if reply_at is not None:
            self._last_answered = at
        self._dns_verdicts()
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
        with self._lock:
            self._ending.append((edge.start, edge.end))
        self._finish_outages()

    # --- where it broke ---

    def _trace_destination(self) -> str | None:
        if self.config.path.trace_to:
            return self.config.path.trace_to
        for target in self.config.targets:
            if target.counts_for_internet:
                try:
                    return canonical(addresses.resolve(target.host))
                except (OSError, UnicodeError):
                    continue
        return None

    def _on_path(self, path: PathHops) -> None:
        """A new path: probe its hops every second (a prober of their own, never counted
        towards "internet up")."""
        hops = [ProbeTarget(role, address, False) for role in ROLES
                if (address := path.role_of(role)) is not None]
        with self._lock:
            old, self.hop_prober = self.hop_prober, None
        if old is not None:
            old.stop()
        for role in ROLES:
            self.hop_log.clear(role)
        self.path = path
        if not hops:
            return
        for hop in hops:  # every series exists from the start, for rate()
            self.path_metrics.sent.labels(role=hop.label)
            self.path_metrics.received.labels(role=hop.label)
        try:
            privileged = self._socket_mode()
        except Exception as exc:  # noqa: BLE001 - IcmpUnavailable: run() reports it
            event(log, logging.WARNING, "latency: cannot probe the path's hops",
                  error=str(exc))
            return
        prober = Prober(hops, interval=self.config.packet_interval,
                        timeout=self.config.packet_timeout, privileged=privileged,
                        on_probe=self._on_hop_probe)
        with self._lock:
            self.hop_prober = prober
        prober.start()

    def _on_hop_probe(self, role: str, rtt: float | None) -> None:
        # called when the request is decided: at its reply, or `packet_timeout` after it went
        sent_at = self.clock() - (self.config.packet_timeout if rtt is None else rtt)
        self.hop_log.add(role, sent_at, rtt is not None)
        self.path_metrics.sent.labels(role=role).inc()
        if rtt is not None:
            self.path_metrics.received.labels(role=role).inc()
            self.path_metrics.rtt.labels(role=role).observe(rtt)

    def cause(self, start: float, end: float) -> Cause:
        path = self.path
        router = path.router if path else None
        isp = path.isp if path else None
        return decide(router, self.hop_log.answered("home", start, end) if router else None,
                      isp, self.hop_log.answered("isp", start, end) if isp else None)

    def cause_now(self) -> Cause | None:
        """The cause of the outage going on now, as far as it is known: the internet's (from
        what answered since it went down), else DNS's; None while nothing is down."""
        start = self.tracker.outage_start if self.tracker.down else None
        if start is not None:
            return self.cause(start, self.clock())
        return DNS_CAUSE if self.dns_tracker.down else None

    def _cause_so_far(self, now: float) -> None:
        """While the internet is down, the cause known so far (for InternetDown's text)."""
        start = self.tracker.outage_start if self.tracker.down else None
        known = None if start is None else self.cause(start, now).cause
        for cause in ("home", "isp", "upstream", "unknown"):
            self.path_metrics.outage_cause.labels(cause=cause).set(int(cause == known))

    def _finish_outages(self, force: bool = False) -> None:
        """Log and report the outages whose hops' requests are all decided by now (at once if
        no hop is probed: then nothing is left to wait for)."""
        force = force or self.hop_prober is None
        wait, now = self.config.packet_timeout + 0.5, self.clock()
        with self._lock:
            done = [o for o in self._ending if force or now >= o[1] + wait]
            self._ending = [o for o in self._ending if o not in done]
        for start, end in done:
            cause = self.cause(start, end)
            self.metrics.recent_outages.add(start, end, cause.cause, cause.detail)
            event(log, logging.INFO, f"internet back after {end - start:.0f} s",
                  outage_seconds=round(end - start, 3), targets=self._internet,
                  start=round(start, 3), end=round(end, 3), cause=cause.cause,
                  detail=cause.detail)

    def _on_dns(self, at: float, lookups: list[Lookup]) -> None:
        for lookup in lookups:
            label = lookup.resolver
            self.dns_metrics.lookups.labels(resolver=label).inc()
            self.dns_metrics.up.labels(resolver=label).set(int(lookup.ok))
            if lookup.seconds is not None:
                self.dns_metrics.lookup.labels(resolver=label).observe(lookup.seconds)
            else:
                self.dns_metrics.failures.labels(resolver=label).inc()
        # the system resolver is what the household uses; without it, any configured one
        system = [lookup for lookup in lookups if lookup.resolver == "system"]
        ok = (system[0].ok if system else any(lookup.ok for lookup in lookups))
        errors = {lookup.resolver: lookup.error for lookup in lookups if lookup.error}
        with self._dns_lock:
            self._dns_last.update((lookup.resolver, lookup) for lookup in lookups)
            self._dns_pending.append((at, ok, errors))
        self._dns_verdicts()

    def _dns_verdicts(self) -> None:
        """Feed the DNS checks whose time the internet's verdict covers: a failed look-up is
        DNS's fault only if an internet target answered a request sent at most one
        packet_interval before it; while the internet is down it is the internet's outage; in
        between (a silent run not yet long enough to be an outage) the check waits."""
        with self._dns_lock:
            while self._dns_pending:
                at, ok, errors = self._dns_pending[0]
                answered = self._last_answered
                if self.tracker.down:
                    internet_down = True
                elif answered is not None and answered >= at - self.config.packet_interval:
                    internet_down = False
                elif ok:
                    internet_down = False  # names resolve: nothing to blame on anyone
                else:
                    return
                self._dns_pending.popleft()
                self._dns_edge(self.dns_tracker.check(at, ok, internet_down), errors)

    def _dns_edge(self, edge: DnsEdge | None, errors: dict[str, str]) -> None:
        if edge is None:
            return
        if edge.down:
            self.dns_metrics.outages.inc()
            event(log, logging.WARNING, "DNS down: names do not resolve while pings answer",
                  name=self.config.dns.name, since=round(edge.start, 3), errors=errors)
            return
        assert edge.end is not None
        seconds = edge.end - edge.start
        self.metrics.recent_outages.add(edge.start, edge.end, DNS_CAUSE.cause, DNS_CAUSE.detail)
        event(log, logging.INFO, f"DNS back after {seconds:.0f} s", outage_seconds=round(
            seconds, 3), start=round(edge.start, 3), end=round(edge.end, 3),
            cause=DNS_CAUSE.cause, detail=DNS_CAUSE.detail)

    # --- a run: the window since the previous one ---

    def card(self) -> LatencyCard:
        return LatencyCard(self.metrics.recent_outages, metrics=self.metrics,
                           targets=[target.label for target in self.config.targets],
                           cause_now=self.cause_now)

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
        hop_prober = self.hop_prober
        path_figures: dict[str, Any] = {}
        if hop_prober is not None:
            for state, probes in hop_prober.take():
                role = state.target.label
                stats = ping_stats([rtt for _, rtt in probes if rtt is not None], len(probes))
                self.path_metrics.rtt_avg.labels(role=role).set(_gauge_value(stats.avg))
                self.path_metrics.loss.labels(role=role).set(_gauge_value(stats.loss))
                self.path_metrics.up.labels(role=role).set(1 if stats.up else 0)
                path_figures[role] = {"address": state.target.host, "avg_ms": ms(stats.avg),
                                      "loss": None if stats.loss is None
                                      else round(stats.loss, 4)}
        up = self.tracker.state
        with self._dns_lock:
            dns_figures = {resolver: {"ok": int(lookup.ok), "lookup_ms": ms(lookup.seconds),
                                      "error": lookup.error}
                           for resolver, lookup in self._dns_last.items()}
        dns_down_for = self.dns_tracker.current(self.clock()) if self.dns_tracker.down else None
        return {"internet_up": None if up is None or not self._internet else int(up),
                "socket": "raw" if prober.privileged else "unprivileged",
                "round_seconds": round(time.monotonic() - started, 3),
                "outages": self.tracker.outages,
                "outage_seconds": round(self.tracker.outage_seconds, 3),
                "targets": figures, "path": path_figures, "dns": dns_figures,
                "dns_down_seconds": None if dns_down_for is None else round(dns_down_for, 3)}


def build(env: JobEnv) -> LatencyJob:
    return LatencyJob(env.job_config("latency", LatencyConfig),
                      LatencyMetrics(env.metrics.registry))
