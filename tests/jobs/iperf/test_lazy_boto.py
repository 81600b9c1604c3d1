"""boto3 is heavy: a daemon with the iperf job disabled must never import it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.procs import REPO, free_port

PROBE = """
import sys, time
from monitor.config import parse
from monitor.daemon import Daemon
config = parse({"listen": "127.0.0.1:%(port)d", "state_dir": "%(state)s", "jobs": {
    "latency": {"enabled": False}, "bandwidth": {"enabled": False}, "aqi": {"enabled": False},
    "iperf": %(iperf)s}}, "probe")
daemon = Daemon(config)
daemon.start()
time.sleep(0.3)
print("boto3" in sys.modules, "botocore" in sys.modules)
daemon.stop()
"""


@pytest.mark.parametrize(("iperf", "loaded"), [
    ('{"enabled": False, "ec2": {"instance_id": "i-0123456789abcdef0"}}', "False False"),
    # a fixed iperf3 server without AWS needs no boto3 either
    ('{"enabled": True, "host": "127.0.0.1", "port": 9}', "False False"),
    # the control: the same probe does see boto3 once the job is on
    ('{"enabled": True, "ec2": {"instance_id": "i-0123456789abcdef0", "region": "eu-west-2", '
     '"endpoint_url": "http://127.0.0.1:9", "stop_orphaned": False}}', "True True"),
])
def test_boto3_only_loaded_with_the_job(tmp_path: Path, iperf: str, loaded: str) -> None:
    code = PROBE % {"port": free_port(), "state": tmp_path / "state", "iperf": iperf}
    env = {"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == loaded
