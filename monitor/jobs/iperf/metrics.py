"""The iperf job's metric families (docs/metrics.md), on the registry it is given."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


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
