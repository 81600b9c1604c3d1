"""home-monitor: internet, EC2-iperf and air-quality monitoring for Prometheus."""

__version__ = "0.1.0"
