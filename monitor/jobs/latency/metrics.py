"""The latency job's metric families (docs/metrics.md), on the registry it is given.

The path hops and the DNS check have families of their own (PathMetrics, DnsMetrics), not
homemon_ping_* with a `role` label: that label would change the label set of every existing
target series (a new series for each, breaking rate() across the upgrade and every query that
matches on the full label set), and a hop must never be summed with the internet targets.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor.jobs.latency.cause import CAUSES
from monitor.outages import RecentOutages, RecentOutagesCollector

# smokeping_prober style: factor sqrt(2) from 0.5 ms to ~4.1 s, 27 buckets
RTT_BUCKETS = tuple(round(0.0005 * 2 ** (k / 2), 7) for k in range(27))
DNS_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


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
        self.path = PathMetrics(registry)  # the discovered hops and outage causes
        self.dns = DnsMetrics(registry)


class PathMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def role_gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, ["role"], registry=registry)

        self.hop_info = Gauge("homemon_path_hop_info", "1 for each discovered (or pinned) hop: "
                              "role home = the home router, isp = the ISP's first hop",
                              ["role", "address"], registry=registry)
        self.rtt = Histogram("homemon_path_rtt_seconds", "RTT of every reply from a path hop",
                             ["role"], buckets=RTT_BUCKETS, registry=registry)
        self.sent = Counter("homemon_path_sent", "Pings sent to a path hop", ["role"],
                            registry=registry)
        self.received = Counter("homemon_path_received", "Ping replies from a path hop",
                                ["role"], registry=registry)
        self.rtt_avg = role_gauge("homemon_path_rtt_avg_seconds",
                                  "Mean RTT to a path hop over the last round")
        self.loss = role_gauge("homemon_path_loss_ratio",
                               "Share of pings to a path hop lost in the last round")
        self.up = role_gauge("homemon_path_up", "1 if the path hop replied in the last round")
        self.discoveries = Counter("homemon_path_discoveries", "Path discoveries by result "
                                   "(found: router and ISP hop; partial; failed)", ["result"],
                                   registry=registry)
        self.last_discovery = Gauge("homemon_path_last_discovery_timestamp_seconds",
                                    "When the path was last discovered", registry=registry)
        self.outage_cause = Gauge("homemon_internet_outage_cause", "During an internet outage, "
                                  "1 for the cause known so far (home, isp, upstream, unknown); "
                                  "all 0 while up", ["cause"], registry=registry)
        for cause in CAUSES:
            self.outage_cause.labels(cause=cause).set(0)


class DnsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.lookup = Histogram("homemon_dns_lookup_seconds", "Time of each successful look-up "
                                "(resolver: system or the resolver's address)", ["resolver"],
                                buckets=DNS_BUCKETS, registry=registry)
        self.lookups = Counter("homemon_dns_lookups", "Look-ups tried", ["resolver"],
                               registry=registry)
        self.failures = Counter("homemon_dns_lookup_failures", "Look-ups that failed or timed "
                                "out", ["resolver"], registry=registry)
        self.up = Gauge("homemon_dns_up", "1 if the last look-up through this resolver worked",
                        ["resolver"], registry=registry)
        self.outages = Counter("homemon_dns_outages", "DNS outages: look-ups failed while "
                               "internet targets answered", registry=registry)
        self.current_outage = Gauge("homemon_dns_current_outage_seconds", "How long the ongoing "
                                    "DNS outage has lasted (from its first failed look-up); 0 "
                                    "while names resolve", registry=registry)
