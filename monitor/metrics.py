"""Every metric object, built on one registry passed in (tests make their own).

Names and labels are the contract in docs/metrics.md: dashboards and alerts read them.
A failed measurement leaves gauges absent or NaN, never 0.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.diskspace import StateWriteMetrics
from monitor.outages import RecentOutages, RecentOutagesCollector

JOB_RESULTS = ("success", "failure", "timeout", "skipped")

# smokeping_prober style: factor sqrt(2) from 0.5 ms to ~4.1 s, 27 buckets
RTT_BUCKETS = tuple(round(0.0005 * 2 ** (k / 2), 7) for k in range(27))
JOB_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200)


class SelfMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.build_info = Gauge("homemon_build_info", "Always 1; the version label tells which "
                                "build runs", ["version"], registry=registry)
        self.build_info.labels(version=__version__).set(1)
        self.job_runs = Counter("homemon_job_runs_total", "Job runs by result", ["job", "result"],
                                registry=registry)
        self.job_duration = Histogram("homemon_job_duration_seconds", "Wall time of a job run",
                                      ["job"], buckets=JOB_DURATION_BUCKETS, registry=registry)
        self.job_last_success = Gauge("homemon_job_last_success_timestamp_seconds",
                                      "When the job last succeeded (Unix seconds)", ["job"],
                                      registry=registry)
        self.job_interval = Gauge("homemon_job_interval_seconds", "Configured interval of the job",
                                  ["job"], registry=registry)

    def declare_job(self, job: str, interval: float) -> None:
        """Make every result series exist from the start, so rate() sees the first one."""
        self.job_interval.labels(job=job).set(interval)
        for result in JOB_RESULTS:
            self.job_runs.labels(job=job, result=result)
        self.job_duration.labels(job=job)


class LatencyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, ["target"], registry=registry)

        self.rtt = Histogram("homemon_ping_rtt_seconds", "RTT of every ping reply", ["target"],
                             buckets=RTT_BUCKETS, registry=registry)
        self.rtt_min = gauge("homemon_ping_rtt_min_seconds", "Lowest RTT of the last round")
        self.rtt_avg = gauge("homemon_ping_rtt_avg_seconds", "Mean RTT of the last round")
        self.rtt_max = gauge("homemon_ping_rtt_max_seconds", "Highest RTT of the last round")
        self.jitter = gauge("homemon_ping_jitter_seconds", "Jitter of the last round (mean "
                            "absolute difference of consecutive RTTs)")
        self.loss = gauge("homemon_ping_loss_ratio", "Share of pings lost in the last round")
        self.sent = Counter("homemon_ping_sent", "Pings sent", ["target"], registry=registry)
        self.received = Counter("homemon_ping_received", "Ping replies received", ["target"],
                                registry=registry)
        self.up = gauge("homemon_ping_up", "1 if the target replied in the last round")
        self.internet_up = Gauge("homemon_internet_up", "1 if any internet target replied in "
                                 "the last round", registry=registry)
        self.internet_up.set(float("nan"))  # unknown until the first round
        self.outages = Counter("homemon_internet_outages", "Transitions from up to down seen by "
                               "the daemon", registry=registry)
        self.outage_seconds = Counter("homemon_internet_outage_seconds", "Time spent with the "
                                      "internet down, at probe-slot resolution", registry=registry)
        self.current_outage = Gauge("homemon_internet_current_outage_seconds", "How long the "
                                    "ongoing internet outage has lasted; 0 while up",
                                    registry=registry)
        self.recent_outages = RecentOutages()  # the status page reads the same instance
        RecentOutagesCollector(self.recent_outages, registry)


class BandwidthMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["backend", "server"]
        self.download = Gauge("homemon_bandwidth_download_bits_per_second",
                              "Download throughput of the last successful test", labels,
                              registry=registry)
        self.upload = Gauge("homemon_bandwidth_upload_bits_per_second",
                            "Upload throughput of the last successful test", labels,
                            registry=registry)
        self.latency = Gauge("homemon_bandwidth_latency_seconds",
                             "Idle latency measured by the bandwidth backend", labels,
                             registry=registry)
        self.bytes = Counter("homemon_bandwidth_bytes", "Data moved by bandwidth tests",
                             ["direction"], registry=registry)
        self.plan = Gauge("homemon_bandwidth_plan_bits_per_second", "The ISP plan from the config",
                          ["direction"], registry=registry)
        self.loaded_rtt = Gauge("homemon_bandwidth_loaded_rtt_seconds",
                                "RTT while the link is saturated (bufferbloat)", ["direction"],
                                registry=registry)
        self.idle_rtt = Gauge("homemon_bandwidth_idle_rtt_seconds",
                              "RTT to the loaded-RTT target just before the test, same method "
                              "(baseline for homemon_bandwidth_loaded_rtt_seconds)",
                              registry=registry)


class IperfMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.bits_per_second = Gauge("homemon_iperf_bits_per_second",
                                     "Receiver-side goodput of the last iperf3 test",
                                     ["direction", "server"], registry=registry)
        self.retransmits = Gauge("homemon_iperf_retransmits", "TCP retransmits in the last test",
                                 ["direction", "server"], registry=registry)
        self.bytes = Counter("homemon_iperf_bytes", "Data moved by iperf3 tests", ["direction"],
                             registry=registry)
        self.instance_running = Gauge("homemon_ec2_instance_running",
                                      "1 while the EC2 instance is observed running",
                                      ["instance_id"], registry=registry)
        self.instance_running_seconds = Counter("homemon_ec2_instance_running_seconds",
                                                "Time the instance was running (cost tracking)",
                                                ["instance_id"], registry=registry)
        self.start_seconds = Gauge("homemon_ec2_start_seconds",
                                   "From the start request to the iperf3 port accepting",
                                   ["instance_id"], registry=registry)
        self.stop_failures = Counter("homemon_ec2_stop_failures", "Failed attempts to stop the "
                                     "instance", ["instance_id"], registry=registry)
        self.forced_stops = Counter("homemon_ec2_forced_stops", "Instance stops the job did not "
                                    "plan: orphaned at start-up, or running past max_running",
                                    ["instance_id", "reason"], registry=registry)


class SnapshotGauge(Collector):
    """A labelled gauge for many slowly changing series (one per air sensor): the exposition
    is built once after a change instead of on every scrape, which keeps /metrics fast with
    hundreds of sensors (bench/aqi.py). Labels are passed as a tuple in `labelnames` order."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 registry: CollectorRegistry) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        self._cache: list[Metric] | None = None
        self._lock = threading.Lock()
        registry.register(self)

    def set(self, labels: tuple[str, ...], value: float) -> None:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labels}")
        with self._lock:
            self._values[tuple(str(v) for v in labels)] = float(value)
            self._cache = None

    def remove(self, labels: tuple[str, ...]) -> None:
        with self._lock:
            if self._values.pop(tuple(labels), None) is not None:
                self._cache = None

    def get(self, labels: tuple[str, ...]) -> float | None:
        with self._lock:
            return self._values.get(tuple(labels))

    def items(self) -> list[tuple[tuple[str, ...], float]]:
        with self._lock:
            return list(self._values.items())

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> list[Metric]:
        with self._lock:
            if self._cache is None:
                family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
                for labels, value in self._values.items():
                    family.add_metric(labels, value)
                self._cache = [family]
            return self._cache


class AqiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def gauge(name: str, doc: str, labels: Sequence[str] = ("sensor",)) -> SnapshotGauge:
            return SnapshotGauge(name, doc, labels, registry)

        self.pm = gauge("homemon_air_pm_micrograms_per_cubic_meter", "Latest particulate reading",
                        ["sensor", "size"])
        self.pm_mean = gauge("homemon_air_pm_mean_micrograms_per_cubic_meter",
                             "Running mean of particulates used by the index",
                             ["sensor", "size", "window"])
        self.index = gauge("homemon_air_quality_index", "Air quality index", ["sensor", "scale"])
        self.temperature = gauge("homemon_air_temperature_celsius", "Temperature")
        self.humidity = gauge("homemon_air_relative_humidity_ratio", "Relative humidity, 0-1")
        self.pressure = gauge("homemon_air_pressure_pascals", "Air pressure")
        self.reading_timestamp = gauge("homemon_air_reading_timestamp_seconds",
                                       "When the sensor measured (Unix seconds)")
        self.sensor_info = gauge("homemon_air_sensor_info", "Always 1; describes the sensor",
                                 ["sensor", "name", "type", "country", "latitude", "longitude",
                                  "indoor"])
        self.rejected = Counter("homemon_air_readings_rejected", "Readings rejected, by reason",
                                ["reason"], registry=registry)
        self.fetch_errors = Counter("homemon_air_fetch_errors", "Failed requests to an air "
                                    "quality source, by reason", ["source", "reason"],
                                    registry=registry)
        self.source_up = gauge("homemon_air_source_up", "1 if the source answered usable data "
                               "in the last run, 0 if it failed", ["source"])


class Metrics:
    """All of the daemon's metrics on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.daemon = SelfMetrics(self.registry)
        self.latency = LatencyMetrics(self.registry)
        self.bandwidth = BandwidthMetrics(self.registry)
        self.iperf = IperfMetrics(self.registry)
        self.aqi = AqiMetrics(self.registry)
        self.state_writes = StateWriteMetrics(self.registry)
