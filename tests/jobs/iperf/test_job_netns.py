"""End to end: `home-monitor once iperf` / the real daemon, moto as the EC2 endpoint, a real
`iperf3 -s` in namespace b behind tbf shaping (30 Mbit/s b->a, 15 Mbit/s a->b)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.iperf_aws import (
    FAKE_CREDENTIALS,
    REGION,
    ec2_client,
    forward_into_netns,
    iperf3_server,
    moto_ec2,
    new_instance,
    state,
)
from tests.support.netns import NetnsPair
from tests.support.procs import (
    REPO,
    daemon,
    free_port,
    minimal_config,
    wait_until,
    write_config,
)

DOWN_MBIT, UP_MBIT = 30, 15
TOLERANCE = 0.05
DURATION, OMIT, STREAMS = 3, 0, 2  # -O 1 makes iperf3 3.12 upload figures jump ±8 %


def iperf_job_config(instance_id: str, endpoint: str, host: str, port: int,
                     **extra: Any) -> dict[str, Any]:
    return {"enabled": True, "interval": "1h", "timeout": "60s", "duration": f"{DURATION}s",
            "omit": f"{OMIT}s", "streams": STREAMS, "port": port, "host": host,
            "ec2": {"instance_id": instance_id, "region": REGION, "endpoint_url": endpoint,
                    "start_timeout": "20s", "stop_timeout": "20s"}} | extra


def reference(pair: NetnsPair, port: int, download: bool) -> float:
    """What plain iperf3 measures on the same link with the same settings."""
    cmd = ["iperf3", "-J", "-c", pair.ip_b, "-p", str(port), "-t", str(DURATION),
           "-O", str(OMIT), "-P", str(STREAMS)] + (["-R"] if download else [])
    out = pair.run_a(cmd, timeout=30).stdout
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"])


def test_goodput_matches_reference_and_instance_is_stopped(tmp_path: Path) -> None:
    port = 5201
    with moto_ec2() as endpoint, NetnsPair("ipf") as pair:
        client = ec2_client(endpoint)
        instance_id = new_instance(client)
        pair.shape("b", DOWN_MBIT)
        pair.shape("a", UP_MBIT)
        pair.popen_b(["iperf3", "-s", "-p", str(port)], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
        wait_until(lambda: pair.run_a(["iperf3", "-c", pair.ip_b, "-p", str(port), "-t", "1",
                                       "-b", "1M"], timeout=10), 10, what="iperf3 -s in b")
        moto_port = int(endpoint.rsplit(":", 1)[1])
        with forward_into_netns(pair.ns_a, moto_port) as inner_port:
            config = minimal_config(tmp_path, free_port(), iperf=iperf_job_config(
                instance_id, f"http://127.0.0.1:{inner_port}", pair.ip_b, port))
            path = write_config(tmp_path / "config.yml", config)
            env = {**os.environ, **FAKE_CREDENTIALS}
            began = time.monotonic()
            done = subprocess.run(["ip", "netns", "exec", pair.ns_a, sys.executable, "-m",
                                   "monitor", "once", "iperf", "--config", str(path)],
                                  capture_output=True, text=True, timeout=90, env=env, cwd=REPO)
            took = time.monotonic() - began
        assert done.returncode == 0, done.stdout + done.stderr
        report = json.loads(done.stdout[done.stdout.index("{\n"):])
        assert state(client, instance_id) == "stopped"
        ref_up = reference(pair, port, download=False)
        ref_down = reference(pair, port, download=True)
    up, down = report["upload_bits_per_second"], report["download_bits_per_second"]
    print(f"\nupload: job {up / 1e6:.2f} Mbit/s, reference {ref_up / 1e6:.2f} Mbit/s "
          f"({up / ref_up - 1:+.1%}); download: job {down / 1e6:.2f} Mbit/s, reference "
          f"{ref_down / 1e6:.2f} Mbit/s ({down / ref_down - 1:+.1%}); start->port open "
          f"{report['ec2_start_seconds']:.3f} s (moto); whole `once` run {took:.1f} s")
    assert up == pytest.approx(ref_up, rel=TOLERANCE)
    assert down == pytest.approx(ref_down, rel=TOLERANCE)


def test_sigterm_to_daemon_during_test_stops_instance(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The real daemon on loopback; SIGTERM arrives while iperf3 runs."""
    port = free_port()
    with moto_ec2() as endpoint, iperf3_server(port):
        client = ec2_client(endpoint)
        instance_id = new_instance(client)
        job = iperf_job_config(instance_id, endpoint, "127.0.0.1", port, duration="30s",
                               omit="0s", streams=1)
        config = minimal_config(tmp_path, free_port(), iperf=job)
        path = write_config(tmp_path / "config.yml", config)
        log = tmp_path / "daemon.log"
        for name, value in FAKE_CREDENTIALS.items():
            monkeypatch.setenv(name, value)  # the daemon inherits them
        with daemon(path, log_path=log) as proc:
            wait_until(lambda: "EC2 instance ready" in log.read_text(), 30, 0.1,
                       what="the daemon to start the instance")
            assert state(client, instance_id) == "running"
            time.sleep(0.5)  # iperf3 is under way
            began = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
            exited = time.monotonic() - began
        assert state(client, instance_id) == "stopped"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    print(f"\ndaemon exited {exited:.2f} s after SIGTERM, instance stopped")
    assert proc.returncode == 0
    assert any(line["msg"] == "stopping EC2 instance" for line in lines)
    assert exited < 10
