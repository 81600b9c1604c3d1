"""The bandwidth job's panels, on the latency job's Internet dashboard."""

from __future__ import annotations

from dashkit import Placed, panel, target, timeseries

BOARD = "internet.json"


def panels() -> list[Placed]:
    """Throughput against the plan, bufferbloat, data used (with what iperf moved), and the
    backends: which failed and why, and how two backends' figures compare (cross-check)."""
    return [
        (timeseries("Download vs plan", [
            target("homemon_bandwidth_download_bits_per_second", "{{server}}"),
            target('homemon_bandwidth_plan_bits_per_second{direction="download"}', "plan", "B"),
        ], unit="bps", points=True, calcs=["min", "mean", "max"],
            description="Each point is one test; the plan comes from the config."), 12, 8),
        (timeseries("Upload vs plan", [
            target("homemon_bandwidth_upload_bits_per_second", "{{server}}"),
            target('homemon_bandwidth_plan_bits_per_second{direction="upload"}', "plan", "B"),
        ], unit="bps", points=True, calcs=["min", "mean", "max"]), 12, 8),
        (timeseries("Loaded vs idle latency", [
            target("homemon_bandwidth_idle_rtt_seconds", "idle"),
            target("homemon_bandwidth_loaded_rtt_seconds", "loaded, {{direction}}", "B"),
            target("homemon_bandwidth_latency_seconds", "speedtest server ({{server}})", "C"),
        ], unit="s", points=True, description="Median ping RTT while a test saturates each "
            "direction against the same ping just before the test: the gap is bufferbloat."),
         12, 8),
        (panel("bargauge", "Data used by tests",
               [target("sum by (direction) (increase(homemon_bandwidth_bytes_total[$__range]))",
                       "bandwidth {{direction}}", instant=True),
                target("sum by (direction) (increase(homemon_iperf_bytes_total[$__range]))",
                       "iperf {{direction}}", "B", instant=True)],
               unit="decbytes", description="Data the tests moved in the time range.",
               options={"orientation": "horizontal", "displayMode": "basic",
                        "reduceOptions": {"calcs": ["lastNotNull"], "values": False}}), 12, 8),
        (panel("bargauge", "Speed test backends that failed",
               [target("sum by (backend, reason) "
                       "(increase(homemon_bandwidth_backend_failures_total[$__range]))",
                       "{{backend}}: {{reason}}", instant=True)],
               description="Backends that failed in the time range, by why (forbidden, "
               "rate_limited, no_server, ...); the next backend of `fallback` measured "
               "instead. docs/bandwidth.md.",
               defaults={"noValue": "none", "decimals": 0},
               options={"orientation": "horizontal", "displayMode": "basic",
                        "reduceOptions": {"calcs": ["lastNotNull"], "values": False}}), 12, 8),
        (timeseries("Cross-check ratio", [
            target("homemon_bandwidth_cross_check_ratio",
                   "{{backend}} ÷ {{reference}}, {{direction}}"),
        ], unit="percentunit", points=True, calcs=["min", "mean", "max"],
            description="The cross-check backend's figure as a share of the main backend's, "
            "measured back to back (`cross_check`): well below 100% for weeks means one of the "
            "two under-reads the line or its server is far away."), 12, 8),
    ]
