"""The bandwidth job: download/upload throughput, data used, and RTT under load.

job.py runs one backend (speedtest.py or http.py) and records its result (result.py); rtt.py
pings during the load; budget.py keeps the month's data use.
"""

from monitor.jobs.bandwidth.job import BandwidthJob, build

__all__ = ["BandwidthJob", "build"]
