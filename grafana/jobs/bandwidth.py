"""The bandwidth job's panels, on the latency job's Internet dashboard."""

from __future__ import annotations

from dashkit import Placed, panel, target, timeseries

BOARD = "internet.json"


def panels() -> list[Placed]:
    """Throughput against the plan, bufferbloat, data used, and (one panel) what iperf moved too."""
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
    ]
