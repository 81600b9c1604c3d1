"""The bandwidth job: download/upload throughput, data used, and RTT under load.

measure() runs one backend (`speedtest`, `http`, `cloudflare` or `librespeed`; speedtest.py,
http.py, public.py) and returns a BandwidthResult; record() turns it into metrics. A backend that
fails is counted with its reason and the next of `fallback` is tried; the figure is labelled
with the backend that measured it. Now and then (`cross_check`) a second backend runs straight
after a good test and the ratio of the two is exported. Bytes moved are counted even
when a test fails, and charged to the month's data budget kept under state_dir.

If the download worked and the upload then failed, the download figure is recorded (it is a
real measurement) and the run still fails with the upload's reason; the upload gauge keeps its
last good value's series (never 0).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from monitor.jobs.bandwidth.budget import UsageStore
from monitor.jobs.bandwidth.card import BandwidthCard
from monitor.jobs.bandwidth.config import BandwidthConfig
from monitor.jobs.bandwidth.failures import failure_reason
from monitor.jobs.bandwidth.metrics import BandwidthMetrics
from monitor.jobs.bandwidth.result import DIRECTIONS, BandwidthError, BandwidthResult, ByteTally
from monitor.jobs.bandwidth.rtt import LoadedRttProbe, make_probe
from monitor.jobs.base import Job, JobEnv, JobSkipped
from monitor.jobs.latency.config import LatencyConfig, PingTarget
from monitor.logs import event
from monitor.units import ms

log = logging.getLogger("monitor.jobs.bandwidth")

USAGE_FILE = "bandwidth_usage.json"


class Backend(Protocol):
    name: str

    def measure(self, stop: threading.Event, tally: ByteTally,
                probe: LoadedRttProbe | None) -> BandwidthResult: ...


def make_backend(config: BandwidthConfig, name: str | None = None) -> Backend:
    name = name or config.backend
    if name == "http":
        from monitor.jobs.bandwidth.http import HttpBackend  # noqa: PLC0415

        return HttpBackend(config.http)
    if name == "cloudflare":
        from monitor.jobs.bandwidth.public import CloudflareBackend  # noqa: PLC0415

        return CloudflareBackend(config.cloudflare, config.http)
    if name == "librespeed":
        from monitor.jobs.bandwidth.public import LibreSpeedBackend  # noqa: PLC0415

        return LibreSpeedBackend(config.librespeed, config.http)
    from monitor.jobs.bandwidth.speedtest import SpeedtestBackend  # noqa: PLC0415

    return SpeedtestBackend(config.speedtest)


def record(result: BandwidthResult, metrics: BandwidthMetrics) -> None:
    """Set the gauges the result has figures for; a missing figure leaves its series alone."""
    labels = {"backend": result.backend, "server": result.server}
    if result.download_bps is not None:
        metrics.download.labels(**labels).set(result.download_bps)
    if result.upload_bps is not None:
        metrics.upload.labels(**labels).set(result.upload_bps)
    if result.latency_seconds is not None:
        metrics.latency.labels(**labels).set(result.latency_seconds)
    if result.idle_rtt_seconds is not None:
        metrics.idle_rtt.set(result.idle_rtt_seconds)
    for direction, rtt in result.loaded_rtt_seconds.items():
        metrics.loaded_rtt.labels(direction=direction).set(rtt)


def set_plan(config: BandwidthConfig, metrics: BandwidthMetrics) -> None:
    if config.plan is None:
        return
    for direction, mbps in (("download", config.plan.download_mbps),
                            ("upload", config.plan.upload_mbps)):
        if mbps is not None:
            metrics.plan.labels(direction=direction).set(mbps * 1e6)


def cross_check_ratios(reference: BandwidthResult, other: BandwidthResult
                       ) -> dict[str, float]:
    """other / reference per direction both measured; nothing for a missing figure."""
    ratios = {}
    for direction in DIRECTIONS:
        ref, got = (getattr(r, f"{direction}_bps") for r in (reference, other))
        if ref and got:
            ratios[direction] = got / ref
    return ratios


def _mbps(bps: float | None) -> float | None:
    return None if bps is None else round(bps / 1e6, 3)


def summary(result: BandwidthResult, tally: ByteTally,
            cross_check: BandwidthResult | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if cross_check is not None:
        extra["cross_check"] = {
            "backend": cross_check.backend, "server": cross_check.server,
            "download_mbps": _mbps(cross_check.download_bps),
            "upload_mbps": _mbps(cross_check.upload_bps), "failure": cross_check.failure,
            **{f"{d}_ratio": round(r, 4) for d, r in
               cross_check_ratios(result, cross_check).items()}}
    return {
        "backend": result.backend, "server": result.server,
        "download_mbps": _mbps(result.download_bps), "upload_mbps": _mbps(result.upload_bps),
        "latency_ms": ms(result.latency_seconds), "idle_rtt_ms": ms(result.idle_rtt_seconds),
        **{f"loaded_rtt_{d}_ms": ms(v) for d, v in result.loaded_rtt_seconds.items()},
        "bytes_download": tally.get("download"), "bytes_upload": tally.get("upload"),
        "failed_backends": [{"backend": b, "reason": failure_reason(e), "error": e}
                            for b, e in result.failed_backends],
        **extra,
    }


class BandwidthJob(Job):
    name = "bandwidth"
    uses_link = True

    def __init__(self, config: BandwidthConfig, metrics: BandwidthMetrics, *, state_dir: Path,
                 rtt_targets: Sequence[PingTarget] = (),
                 icmp_mode: Literal["auto", True, False] = "auto",
                 backend: Backend | None = None, fallbacks: Sequence[Backend] | None = None,
                 clock: Callable[[], float] = time.time,
                 on_write_failure: Callable[[OSError], None] | None = None) -> None:
        """`rtt_targets`/`icmp_mode`: what loaded RTT pings (the first internet target) and
        how; the daemon passes the latency job's targets and socket mode. `backend` and
        `fallbacks` default to the config's."""
        self.config = config
        self.metrics = metrics
        self.rtt_targets = list(rtt_targets)
        self.icmp_mode = icmp_mode
        self.backend = backend or make_backend(config)
        self.fallbacks = list(fallbacks) if fallbacks is not None else [
            make_backend(config, name) for name in config.fallback]
        self.cross_checker = make_backend(config, config.cross_check.backend) \
            if config.cross_check else None
        self._clock = clock
        self._last_cross_check: float | None = None
        self.usage = UsageStore(state_dir / USAGE_FILE, on_write_failure=on_write_failure)
        for direction in DIRECTIONS:
            self.metrics.bytes.labels(direction=direction)
        set_plan(config, metrics)

    def _check_budget(self) -> None:
        budget = self.config.monthly_data_budget
        if budget is None:
            return
        used = self.usage.used()
        if used >= budget:
            raise JobSkipped(f"monthly data budget used up: {used} of {budget} bytes this month")

    def _probe(self) -> LoadedRttProbe | None:
        return make_probe(self.rtt_targets, self.icmp_mode)

    def card(self) -> BandwidthCard:
        budget = self.config.monthly_data_budget
        return BandwidthCard(self.usage, None if budget is None else int(budget),
                             cross_checked=self.config.cross_check is not None)

    def run(self, stop: threading.Event) -> dict[str, Any]:
        self._check_budget()
        tally = ByteTally()
        try:
            result = self.measure(stop, tally)
            record(result, self.metrics)
            checked = self._cross_check(stop, tally, result)
        finally:
            self._charge(tally)
        if result.failure:
            raise BandwidthError(f"{result.failure} (download {result.download_bps / 1e6:.1f} "
                                 "Mbit/s was recorded)" if result.download_bps else
                                 result.failure)
        return summary(result, tally, checked)

    def measure(self, stop: threading.Event, tally: ByteTally) -> BandwidthResult:
        probe = self._probe()
        idle = None
        if probe is not None:
            try:
                idle = probe.idle()
            except Exception as exc:  # noqa: BLE001 - the throughput test goes on
                event(log, logging.WARNING, "idle RTT ping failed; loaded RTT skipped",
                      target=probe.host, error=str(exc))
                probe = None
        failed: list[tuple[str, str]] = []
        for backend in (self.backend, *self.fallbacks):
            try:
                result = backend.measure(stop, tally, probe)
            except BandwidthError as exc:
                self._count_failure(backend.name, str(exc))
                failed.append((backend.name, str(exc)))
                if stop.is_set():
                    break
                continue
            if result.failure:
                self._count_failure(backend.name, result.failure)
            result.idle_rtt_seconds = idle
            result.failed_backends = failed
            return result
        if len(failed) == 1:
            raise BandwidthError(failed[0][1])
        raise BandwidthError("every backend failed: " + "; ".join(
            f"{name}: {error}" for name, error in failed))

    def _count_failure(self, backend: str, error: str) -> None:
        reason = failure_reason(error)
        self.metrics.backend_failures.labels(backend=backend, reason=reason).inc()
        event(log, logging.WARNING, "bandwidth backend failed", backend=backend, reason=reason,
              error=error)

    def _cross_check(self, stop: threading.Event, tally: ByteTally,
                     reference: BandwidthResult) -> BandwidthResult | None:
        """The cross-check backend's result when one is due after a complete test, else None.
        Its failure is counted and logged; the test it checks stays a success."""
        check = self.config.cross_check
        if (check is None or self.cross_checker is None or reference.failure or stop.is_set()
                or reference.backend == self.cross_checker.name):  # a fallback measured already
            return None
        now = self._clock()
        if self._last_cross_check is not None and now - self._last_cross_check < check.interval:
            return None
        self._last_cross_check = now
        try:
            other = self.cross_checker.measure(stop, tally, None)
        except BandwidthError as exc:
            self._count_failure(self.cross_checker.name, str(exc))
            return None
        record(other, self.metrics)
        if other.failure:
            self._count_failure(other.backend, other.failure)
        for direction, ratio in cross_check_ratios(reference, other).items():
            self.metrics.cross_check_ratio.labels(
                direction=direction, backend=other.backend, reference=reference.backend,
            ).set(ratio)
        return other

    def _charge(self, tally: ByteTally) -> None:
        for direction in DIRECTIONS:
            self.metrics.bytes.labels(direction=direction).inc(tally.get(direction))
        if tally.total():
            used = self.usage.add(tally.total())
            event(log, logging.DEBUG, "bandwidth data used", bytes=tally.total(),
                  month_bytes=used)


def build(env: JobEnv) -> BandwidthJob:
    # loaded RTT pings what the latency job pings, the same way
    latency = env.job_config("latency", LatencyConfig)
    return BandwidthJob(env.job_config("bandwidth", BandwidthConfig),
                        BandwidthMetrics(env.metrics.registry),
                        state_dir=env.state_dir, rtt_targets=latency.targets,
                        icmp_mode=latency.privileged,
                        on_write_failure=lambda _: env.metrics.state_writes.failures.labels(
                            file=USAGE_FILE).inc())
