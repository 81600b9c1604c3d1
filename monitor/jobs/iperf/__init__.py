"""The iperf job: job.py (iperf3 against the user's EC2 instance or a fixed host) and ec2.py
(the instance: describe, start, wait, stop; boto3 is imported only when one is configured)."""
