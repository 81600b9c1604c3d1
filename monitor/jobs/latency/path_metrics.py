"""The metrics of path discovery, the probed hops, outage causes and the DNS check.

Separate families from homemon_ping_*: a `role` label on those would change the label set of
every existing target series (a new series for each, breaking rate() across the upgrade and
every query that matches on the full label set), and a hop must never be summed with the
internet targets.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor.jobs.latency.cause import CAUSES
from monitor.metrics import RTT_BUCKETS

DNS_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


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
