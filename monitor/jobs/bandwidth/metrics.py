"""The bandwidth job's metric families (docs/metrics.md), on the registry it is given."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from monitor.metrics import UnsetGauge


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
        self.idle_rtt = UnsetGauge("homemon_bandwidth_idle_rtt_seconds",
                              "RTT to the loaded-RTT target just before the test, same method "
                              "(baseline for homemon_bandwidth_loaded_rtt_seconds)",
                              registry)
        self.backend_failures = Counter(
            "homemon_bandwidth_backend_failures",
            "Bandwidth backends that failed, by why; the next backend of `fallback` was tried",
            ["backend", "reason"], registry=registry)
        self.cross_check_ratio = Gauge(
            "homemon_bandwidth_cross_check_ratio",
            "The cross-check backend's last figure divided by the main backend's, measured "
            "back to back", ["direction", "backend", "reference"], registry=registry)
