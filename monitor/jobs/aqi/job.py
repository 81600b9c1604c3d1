"""The aqi job: Sensor.Community (by id and by area) and local airrohr devices -> metrics.

measure() fetches every source (one bad source never affects the others) and returns the
parsed readings; record() feeds the running means, sets the per-sensor gauges and the indices,
and takes the value gauges away from sensors silent for longer than stale_after.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from monitor import __version__
from monitor.jobs.aqi.card import AqiCard
from monitor.jobs.aqi.config import PARALLEL_REQUESTS, AqiConfig
from monitor.jobs.aqi.indices import SCALE_WINDOW, SCALES, daqi_band, overall_index
from monitor.jobs.aqi.means import MEAN_SIZES, WINDOWS, RunningMeans
from monitor.jobs.aqi.metrics import AqiMetrics
from monitor.jobs.aqi.sources import (
    FetchError,
    Parsed,
    Reading,
    fetch_json,
    parse_local,
    parse_records,
)
from monitor.jobs.aqi.value_types import COUNT, PM_SIZES, UNKNOWN_SENSOR
from monitor.jobs.base import Job, JobEnv, JobSkipped
from monitor.logs import event

log = logging.getLogger("monitor.jobs.aqi")

USER_AGENT = f"home-monitor/{__version__} (air-quality job; polls every few minutes)"
STATE_FILE = "aqi-means.json"
BACKOFF_REASONS = ("http_403", "http_429", "http_5xx")


@dataclass(frozen=True)
class Source:
    key: str   # label value: "sensor:<id>", "area", "local:<name>"
    url: str
    local: Any = None  # the LocalSensorConfig for a local device


@dataclass
class SourceOutcome:
    source: Source
    parsed: Parsed | None = None
    error: FetchError | None = None
    skipped: bool = False  # backing off


@dataclass
class AqiResult:
    outcomes: list[SourceOutcome] = field(default_factory=list)
    fetched_at: float = 0.0

    @property
    def readings(self) -> list[Reading]:
        return [r for o in self.outcomes if o.parsed for r in o.parsed.readings]

    @property
    def rejected(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for outcome in self.outcomes:
            if outcome.parsed:
                total.update(outcome.parsed.rejected)
            if outcome.error is not None and outcome.error.reason in ("malformed", "too_large"):
                total["malformed_response"] += 1
        return total


def build_sources(config: AqiConfig) -> list[Source]:
    base = config.api_url.rstrip("/")
    sources = [Source(f"sensor:{sid}", f"{base}/airrohr/v1/sensor/{sid}/")
               for sid in config.sensors]
    if config.area is not None:
        area = config.area
        sources.append(Source("area", f"{base}/airrohr/v1/filter/area="
                                      f"{area.latitude:g},{area.longitude:g},{area.radius_km:g}"))
    sources += [Source(f"local:{local.name}", local.url, local) for local in config.local]
    return sources


class Backoff:
    """Per-source wait after 403/429/5xx: initial, doubling, capped; Retry-After is honoured."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum = initial, maximum
        self.failures: dict[str, int] = {}
        self.until: dict[str, float] = {}

    def waiting(self, key: str, now: float) -> bool:
        return now < self.until.get(key, 0.0)

    def failed(self, key: str, now: float, retry_after: float | None) -> float:
        count = self.failures.get(key, 0) + 1
        self.failures[key] = count
        delay = min(self.initial * 2.0 ** (count - 1), self.maximum)
        if retry_after is not None:
            delay = min(max(delay, retry_after), self.maximum)
        self.until[key] = now + delay
        return delay

    def succeeded(self, key: str) -> None:
        self.failures.pop(key, None)
        self.until.pop(key, None)


class AqiJob(Job):
    name = "aqi"
    uses_link = False

    def __init__(self, config: AqiConfig, metrics: AqiMetrics, state_dir: Path, *,
                 session: requests.Session | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.metrics = metrics
        self.session = session if session is not None else requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.clock = clock
        self.sources = build_sources(config)
        self.backoff = Backoff(config.backoff_initial, config.backoff_max)
        self.means = RunningMeans(state_dir / STATE_FILE)
        self.means.load()
        self.last_timestamp: dict[str, float] = {}
        self.info_labels: dict[str, tuple[str, ...]] = {}
        self.stale: set[str] = set()
        self.unknown_logged: set[str] = set()
        for reason in ("fault", "negative", "not_numeric", "missing_field", "stale",
                       "malformed_response", "unknown_value_type", UNKNOWN_SENSOR, COUNT):
            metrics.rejected.labels(reason=reason)

    # --- measure ------------------------------------------------------------------------------

    def _fetch(self, source: Source, stop: threading.Event) -> SourceOutcome:
        timeout = self.config.request_timeout
        try:
            payload = fetch_json(self.session, source.url, timeout, stop, USER_AGENT)
            if source.local is None:
                return SourceOutcome(source, parse_records(payload))
            local = source.local
            return SourceOutcome(source, parse_local(
                payload, local.name, self.clock(),
                latitude="" if local.latitude is None else f"{local.latitude:g}",
                longitude="" if local.longitude is None else f"{local.longitude:g}",
                indoor="" if local.indoor is None else str(local.indoor).lower()))
        except FetchError as exc:
            return SourceOutcome(source, error=exc)

    def measure(self, stop: threading.Event) -> AqiResult:
        now = self.clock()
        result = AqiResult(fetched_at=now)
        due = []
        for source in self.sources:
            if self.backoff.waiting(source.key, now):
                result.outcomes.append(SourceOutcome(source, skipped=True))
            else:
                due.append(source)
        if due:
            workers = min(PARALLEL_REQUESTS, len(due))
            with ThreadPoolExecutor(workers, thread_name_prefix="aqi-fetch") as pool:
                result.outcomes += pool.map(lambda s: self._fetch(s, stop), due)
        return result

    # --- record -------------------------------------------------------------------------------

    def record(self, result: AqiResult) -> dict[str, Any]:
        now = self.clock()
        self._record_sources(result, now)
        rejected = result.rejected
        self._record_readings(self._newest(result), rejected, now)
        for reason, count in rejected.items():
            self.metrics.rejected.labels(reason=reason).inc(count)
        self.means.prune(now)
        self._age_sensors(now)
        self.means.save()
        return self._summary(result, rejected)

    def _record_sources(self, result: AqiResult, now: float) -> None:
        """Per source: up or failed (and backing off)."""
        for outcome in result.outcomes:
            key = outcome.source.key
            if outcome.error is not None:
                self._count_fetch_error(key, outcome.error, now)
            elif outcome.parsed is not None:
                self.backoff.succeeded(key)
                self.metrics.source_up.set((key,), 1)
                self._log_unknown(key, outcome.parsed.unknown)

    def _newest(self, result: AqiResult) -> dict[str, Reading]:
        """Every reading goes into the running means; the newest one per sensor is shown."""
        newest: dict[str, Reading] = {}
        for reading in result.readings:
            self.means.add(reading.sensor, reading.timestamp, reading.values)
            current = newest.get(reading.sensor)
            if current is None or reading.timestamp > current.timestamp:
                newest[reading.sensor] = reading
        return newest

    def _record_readings(self, newest: dict[str, Reading], rejected: Counter[str],
                         now: float) -> None:
        """Timestamp and info of each sensor's newest reading; its values unless stale."""
        for sensor, reading in newest.items():
            is_stale = now - reading.timestamp > self.config.stale_after
            if is_stale:
                rejected["stale"] += 1
            if reading.timestamp < self.last_timestamp.get(sensor, float("-inf")):
                continue  # an older record than one already shown
            self.last_timestamp[sensor] = reading.timestamp
            self.metrics.reading_timestamp.set((sensor,), reading.timestamp)
            self._set_info(sensor, reading)
            if is_stale:
                continue
            self.stale.discard(sensor)
            self._set_values(sensor, reading.values)

    def _age_sensors(self, now: float) -> None:
        """Sensors silent past stale_after lose their values; the others get fresh means."""
        for sensor, timestamp in self.last_timestamp.items():
            if now - timestamp > self.config.stale_after:
                if sensor not in self.stale:
                    self._drop_values(sensor)
                    self.stale.add(sensor)
                    event(log, logging.INFO, "air sensor went stale", sensor=sensor,
                          last_reading_age_seconds=round(now - timestamp))
            else:
                self._set_means(sensor, now)

    def _summary(self, result: AqiResult, rejected: Counter[str]) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "sources_ok": sum(1 for o in result.outcomes if o.parsed is not None),
            "sources_failed": sum(1 for o in result.outcomes if o.error is not None),
            "sources_backing_off": sum(1 for o in result.outcomes if o.skipped),
            "readings": len(result.readings),
            "sensors_fresh": len(self.last_timestamp) - len(self.stale),
            "sensors_stale": len(self.stale),
            "rejected": sum(rejected.values()),
        }
        # the status page charts one figure per size: the median of the fresh sensors
        for size, key in (("pm2.5", "pm25_median"), ("pm10", "pm10_median")):
            values = sorted(v for (_, sz), v in self.metrics.pm.items() if sz == size)
            if values:
                summary[key] = round(statistics.median(values), 1)
        for scale in self.config.scales:  # the worst index among fresh sensors, for the log
            found = [v for (_, sc), v in self.metrics.index.items() if sc == scale]
            if found:
                worst = int(max(found))
                summary[f"{scale}_worst"] = worst
                if scale == "uk_daqi":
                    summary["uk_daqi_band"] = daqi_band(worst).name
        return summary

    def _log_unknown(self, source: str, unknown: set[str]) -> None:
        """Once per type and daemon: the values themselves are counted on every run."""
        for what in sorted(unknown - self.unknown_logged):
            self.unknown_logged.add(what)
            event(log, logging.WARNING, f"air quality source sent an unknown {what}; its values "
                  "are counted in homemon_air_readings_rejected_total and not used",
                  source=source)

    def _count_fetch_error(self, key: str, error: FetchError, now: float) -> None:
        self.metrics.fetch_errors.labels(source=key, reason=error.reason).inc()
        self.metrics.source_up.set((key,), 0)
        fields: dict[str, Any] = {"source": key, "reason": error.reason, "error": str(error)}
        if error.reason in BACKOFF_REASONS:
            fields["backoff_seconds"] = round(self.backoff.failed(key, now, error.retry_after))
        event(log, logging.WARNING, "air quality source failed", **fields)

    def _set_info(self, sensor: str, reading: Reading) -> None:
        labels = (sensor, *reading.info.labels())
        previous = self.info_labels.get(sensor)
        if previous == labels:
            return
        if previous is not None:
            self.metrics.sensor_info.remove(previous)
        self.metrics.sensor_info.set(labels, 1)
        self.info_labels[sensor] = labels

    def _set_values(self, sensor: str, values: dict[str, float]) -> None:
        m = self.metrics
        for size in PM_SIZES:
            if size in values:
                m.pm.set((sensor, size), values[size])
        for gauge, quantity in ((m.temperature, "temperature"), (m.humidity, "humidity"),
                                (m.pressure, "pressure")):
            if quantity in values:
                gauge.set((sensor,), values[quantity])

    def _set_means(self, sensor: str, now: float) -> None:
        windows = {SCALE_WINDOW[scale] for scale in self.config.scales} | {"24h"}
        means = {window: self.means.means(sensor, window, now) for window in windows}
        for window, by_size in means.items():
            for size in MEAN_SIZES:
                labels = (sensor, size, window)
                if size in by_size:
                    self.metrics.pm_mean.set(labels, by_size[size])
                else:
                    self.metrics.pm_mean.remove(labels)
        for scale in self.config.scales:
            index = overall_index(scale, means[SCALE_WINDOW[scale]])
            if index is None:
                self.metrics.index.remove((sensor, scale))
            else:
                self.metrics.index.set((sensor, scale), index)

    def _drop_values(self, sensor: str) -> None:
        """Stale: panels should show a gap, not a frozen number. Timestamp and info stay."""
        m = self.metrics
        for size in PM_SIZES:
            m.pm.remove((sensor, size))
            for window in WINDOWS:
                m.pm_mean.remove((sensor, size, window))
        for scale in SCALES:
            m.index.remove((sensor, scale))
        for gauge in (m.temperature, m.humidity, m.pressure):
            gauge.remove((sensor,))

    # --- the Job protocol ----------------------------------------------------------------------

    def card(self) -> AqiCard:
        return AqiCard(self.config.scales)

    def run(self, stop: threading.Event) -> dict[str, Any]:
        result = self.measure(stop)
        summary = self.record(result)
        failed = [o for o in result.outcomes if o.error is not None]
        if result.outcomes and all(o.parsed is None for o in result.outcomes):
            if not failed:
                raise JobSkipped("every air quality source is backing off after errors")
            reasons = "; ".join(f"{o.source.key}: {o.error}" for o in failed)
            raise RuntimeError(f"every air quality source failed ({reasons})")
        return summary

    def close(self) -> None:
        self.session.close()


def build(env: JobEnv) -> AqiJob:
    return AqiJob(env.job_config("aqi", AqiConfig), AqiMetrics(env.metrics.registry), env.state_dir)
