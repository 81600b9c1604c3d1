"""The bandwidth job: download/upload throughput, data used, and RTT under load.

job.py runs one backend (speedtest.py or http.py) and records its result (result.py); rtt.py
pings during the load; budget.py keeps the month's data use.
"""
