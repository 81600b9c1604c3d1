"""The iperf job's panels: the EC2 iperf dashboard (throughput, retransmits, the instance's
running time and cost)."""

from __future__ import annotations

from dashkit import Board, Placed, stat, target, textbox, timeseries

BOARD = Board(
    "iperf.json", "homemon-iperf", "EC2 iperf", time_from="now-7d",
    description="Throughput to your own EC2 instance and what it costs.",
    variables=[textbox("egress_usd_per_gb", "Egress USD/GB", "0.09",
                       "AWS data transfer out to the internet, per GB"),
               textbox("instance_usd_per_hour", "Instance USD/h", "0.0104",
                       "On-demand price of the instance type")])


def panels() -> list[Placed]:
    cost = ("(sum(increase(homemon_iperf_bytes_total{direction=\"download\"}[$__range])) "
            "or vector(0)) / 1e9 * $egress_usd_per_gb"
            " + (sum(increase(homemon_ec2_instance_running_seconds_total[$__range])) "
            "or vector(0)) / 3600 * $instance_usd_per_hour")
    return [
        (stat("Instance running now", "max(homemon_ec2_instance_running)",
              mappings=[{"type": "value", "options": {
                  "0": {"text": "stopped", "color": "green", "index": 0},
                  "1": {"text": "RUNNING", "color": "red", "index": 1}}}]), 6, 5),
        (stat("Running time in range",
              "sum(increase(homemon_ec2_instance_running_seconds_total[$__range]))",
              unit="s"), 6, 5),
        (stat("Estimated cost in range", cost, unit="currencyUSD",
              description="Egress (download direction: EC2 to home) at $egress_usd_per_gb "
              "per GB plus running time at $instance_usd_per_hour per hour. Set both "
              "above for your region and instance type."), 6, 5),
        (stat("Stop failures in range",
              "sum(increase(homemon_ec2_stop_failures_total[$__range]))",
              steps=[{"color": "green", "value": None}, {"color": "red", "value": 1}]), 6, 5),
        (timeseries("Throughput", [target("homemon_iperf_bits_per_second",
                                          "{{direction}} ({{server}})")],
                    unit="bps", points=True, calcs=["min", "mean", "max"],
                    description="Receiver-side goodput of each iperf3 test."), 12, 9),
        (timeseries("Retransmits", [target("homemon_iperf_retransmits",
                                           "{{direction}} ({{server}})")],
                    points=True, calcs=["mean", "max"]), 12, 9),
        (timeseries("Instance start time", [target("homemon_ec2_start_seconds",
                                                   "{{instance_id}}")],
                    unit="s", points=True,
                    description="From the start request to the iperf3 port accepting."),
         12, 8),
        (timeseries("Data moved per test window", [
            target("sum by (direction) (increase(homemon_iperf_bytes_total[$__rate_interval]))",
                   "{{direction}}")], unit="decbytes"), 12, 8),
    ]
