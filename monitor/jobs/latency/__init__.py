"""The latency job: job.py (the job, outage tracking, recording) and prober.py (continuous
ICMP echo on a fixed schedule, over monitor/icmp_echo.py's sockets)."""
