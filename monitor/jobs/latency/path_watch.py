"""Keeps the discovered path current: discovers at the start, whenever the default route
changes (the routing table is read every second, two small /proc files) and every `refresh`.
A failed discovery keeps the path it had and is retried after RETRY seconds, and so does one
that finds no hop at all while a path is known (a cut line looks like that). While the internet
is down (`busy`), discovery waits: a path traced through a broken line would be cut short."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from monitor.jobs.latency.config import PathConfig
from monitor.jobs.latency.metrics import PathMetrics
from monitor.jobs.latency.path import PathHops, discover, read_default_gateways
from monitor.logs import event

log = logging.getLogger("monitor.jobs.latency")

POLL = 1.0
RETRY = 30.0
INCOMPLETE_RETRY = 10.0


class PathWatcher:
    def __init__(self, config: PathConfig, *, destination: Callable[[], str | None],
                 privileged: Callable[[], bool], on_path: Callable[[PathHops], None],
                 metrics: PathMetrics, timeout: float = 1.0,
                 busy: Callable[[], bool] = lambda: False,
                 read_gateways: Callable[[], list[str]] = read_default_gateways) -> None:
        self.config = config
        self.destination = destination
        self.privileged = privileged
        self.on_path = on_path
        self.metrics = metrics
        self.timeout = timeout
        self.read_gateways = read_gateways
        self.busy = busy
        self.path: PathHops | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="latency-path", daemon=True)

    def start(self) -> None:
        if not self.config.discover:  # the pins alone; nothing to watch
            self._publish(PathHops(self.config.gateway, self.config.isp_hop,
                                   notes=("discovery is off (path.discover: false)",)), "pinned")
            return
        self.thread.start()

    def stop(self, wait: float = 2.0) -> None:
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(wait)

    def _run(self) -> None:
        gateways: list[str] | None = None
        next_at = 0.0  # discover now
        incomplete = INCOMPLETE_RETRY
        while not self._stop.is_set():
            if self.busy():
                self._stop.wait(POLL)
                continue
            now = time.monotonic()
            current = self.read_gateways()
            reason = None
            if gateways is not None and current != gateways:
                reason = "the default route changed"
            elif now >= next_at:
                reason = "start" if self.path is None and gateways is None else "refresh"
            gateways = current
            if reason is not None:
                ok = self._discover(reason, current)
                complete = ok and self.path is not None and bool(self.path.router
                                                                  and self.path.isp)
                # an incomplete path (nothing answered yet, or truly no public hop) is
                # retried sooner, backing off to `refresh`
                incomplete = INCOMPLETE_RETRY if reason != "refresh" or complete else min(
                    2 * incomplete, self.config.refresh)
                next_at = time.monotonic() + (self.config.refresh if complete
                                              else incomplete if ok else RETRY)
            self._stop.wait(POLL)

    def _discover(self, reason: str, gateways: list[str]) -> bool:
        destination = self.destination()
        if destination is None:
            event(log, logging.WARNING, "latency: no internet target address to trace the path "
                  "towards yet; set jobs.latency.path.trace_to")
            self.metrics.discoveries.labels(result="failed").inc()
            return False
        try:
            path = discover(destination, privileged=self.privileged(),
                            max_hops=self.config.max_hops, timeout=self.timeout,
                            container=None if self.config.docker_bridge == "auto"
                            else bool(self.config.docker_bridge),
                            pinned_router=self.config.gateway, pinned_isp=self.config.isp_hop)
        except Exception as exc:  # noqa: BLE001 - OSError, icmplib's errors: retried later
            event(log, logging.WARNING, "latency: path discovery failed", error=str(exc),
                  reason=reason, towards=destination)
            self.metrics.discoveries.labels(result="failed").inc()
            return False
        for note in path.notes:
            event(log, logging.WARNING, f"latency: path: {note}", towards=destination)
        if path.router is None and path.isp is None and self.path is not None:
            event(log, logging.WARNING, "latency: path discovery found no hop; keeping the "
                  "previous path", router=self.path.router, isp_hop=self.path.isp)
            self.metrics.discoveries.labels(result="failed").inc()
            return False
        self._publish(path, reason, gateways=gateways, towards=destination)
        return True

    def _publish(self, path: PathHops, reason: str, **fields: object) -> None:
        result = "found" if path.router and path.isp else "partial"
        self.metrics.discoveries.labels(result=result).inc()
        self.metrics.last_discovery.set(time.time())
        self.metrics.hop_info.clear()
        for role in ("home", "isp"):
            address = path.role_of(role)
            if address is not None:
                self.metrics.hop_info.labels(role=role, address=address).set(1)
        changed = self.path is None or (path.router, path.isp) != (self.path.router,
                                                                    self.path.isp)
        self.path = path
        event(log, logging.INFO, "latency: path " + ("discovered" if changed else "unchanged"),
              reason=reason, router=path.router, isp_hop=path.isp,
              hops=[hop or "*" for hop in path.hops], **fields)
        if changed:
            self.on_path(path)
