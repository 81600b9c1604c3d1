"""The latency job's metric families (docs/metrics.md), on the registry it is given."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor.outages import RecentOutages, RecentOutagesCollector

# smokeping_prober style: factor sqrt(2) from 0.5 ms to ~4.1 s, 27 buckets
RTT_BUCKETS = tuple(round(0.0005 * 2 ** (k / 2), 7) for k in range(27))


class LatencyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, ["target"], registry=registry)

        self.rtt = Histogram("homemon_ping_rtt_seconds", "RTT of every ping reply", ["target"],
                             buckets=RTT_BUCKETS, registry=registry)
        self.rtt_min = gauge("homemon_ping_rtt_min_seconds", "Lowest RTT of the last window")
        self.rtt_avg = gauge("homemon_ping_rtt_avg_seconds", "Mean RTT of the last window")
        self.rtt_max = gauge("homemon_ping_rtt_max_seconds", "Highest RTT of the last window")
        self.jitter = gauge("homemon_ping_jitter_seconds", "Jitter of the last window (mean "
                            "absolute difference of consecutive RTTs)")
        self.loss = gauge("homemon_ping_loss_ratio", "Share of pings lost in the last window")
        self.sent = Counter("homemon_ping_sent", "Pings sent", ["target"], registry=registry)
        self.received = Counter("homemon_ping_received", "Ping replies received", ["target"],
                                registry=registry)
        self.up = gauge("homemon_ping_up", "1 if the target replied in the last window")
        self.internet_up = Gauge("homemon_internet_up", "1 if any internet target replied in "
                                 "the last window", registry=registry)
        self.internet_up.set(float("nan"))  # unknown until the first window
        self.outages = Counter("homemon_internet_outages", "Transitions from up to down seen by "
                               "the daemon", registry=registry)
        self.outage_seconds = Counter("homemon_internet_outage_seconds", "Time spent with the "
                                      "internet down, at probe-slot resolution", registry=registry)
        self.current_outage = Gauge("homemon_internet_current_outage_seconds", "How long the "
                                    "ongoing internet outage has lasted; 0 while up",
                                    registry=registry)
        self.recent_outages = RecentOutages()  # the status page reads the same instance
        RecentOutagesCollector(self.recent_outages, registry)
