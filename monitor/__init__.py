"""home-monitor: internet (and air-quality) monitoring for Prometheus; one package per job
under monitor/jobs/."""

__version__ = "0.1.0"
