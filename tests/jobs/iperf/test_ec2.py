"""The iperf job against moto's EC2 server and a real iperf3 on loopback: every path ends
with the instance stopped."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from prometheus_client import CollectorRegistry

from monitor.jobs.iperf.config import Ec2Config, IperfConfig
from monitor.jobs.iperf.ec2 import Ec2Error, make_client
from monitor.jobs.iperf.job import Aborted, IperfError, IperfJob
from monitor.jobs.iperf.metrics import IperfMetrics
from monitor.metrics import Metrics
from monitor.runner import JobRunner
from tests.support.iperf_aws import (
    FAKE_CREDENTIALS,
    REGION,
    child_processes,
    ec2_client,
    iperf3_server,
    moto_ec2,
    new_instance,
    state,
)
from tests.support.procs import free_port, wait_until


@pytest.fixture(scope="module")
def endpoint() -> Any:
    with moto_ec2() as url:
        yield url


@pytest.fixture
def client(endpoint: str) -> Any:
    return ec2_client(endpoint)


@pytest.fixture
def port() -> int:
    return free_port()


def make_job(client: Any, instance_id: str, port: int, *, shutdown: threading.Event | None = None,
             iperf3: tuple[str, ...] = ("iperf3",), metrics: Metrics | None = None,
             **overrides: Any) -> IperfJob:
    ec2 = Ec2Config(instance_id=instance_id, region=REGION,
                    **{k: overrides.pop(k) for k in list(overrides) if k in (
                        "stop_orphaned", "max_running", "start_timeout", "stop_timeout")})
    settings: dict[str, Any] = {"duration": 1, "omit": 0, "streams": 1} | overrides
    config = IperfConfig(enabled=True, port=port, host="127.0.0.1", ec2=ec2, **settings)
    metrics = metrics or Metrics(CollectorRegistry())
    return IperfJob(config, IperfMetrics(metrics.registry), shutdown or threading.Event(),
                    ec2_client=client, iperf3=iperf3)


# --- success and the iperf3 fault paths ------------------------------------------------------


def test_success_starts_measures_and_stops(client: Any, port: int) -> None:
    instance_id = new_instance(client)
    metrics = Metrics(CollectorRegistry())
    job = make_job(client, instance_id, port, metrics=metrics)
    with iperf3_server(port):
        figures = job.run(threading.Event())
    assert state(client, instance_id) == "stopped"
    assert figures["upload_bits_per_second"] > 0
    assert figures["download_bits_per_second"] > 0
    assert figures["ec2_start_seconds"] >= 0
    registry = metrics.registry
    assert registry.get_sample_value("homemon_iperf_bits_per_second", {
        "direction": "download", "server": "127.0.0.1"}) == pytest.approx(
        figures["download_bits_per_second"], abs=1)
    assert registry.get_sample_value("homemon_iperf_bytes_total", {"direction": "upload"}) > 0
    assert registry.get_sample_value("homemon_ec2_start_seconds",
                                     {"instance_id": instance_id}) is not None
    assert registry.get_sample_value("homemon_ec2_instance_running",
                                     {"instance_id": instance_id}) == 0


def test_no_iperf3_server(client: Any, port: int) -> None:
    instance_id = new_instance(client)
    metrics = Metrics(CollectorRegistry())
    job = make_job(client, instance_id, port, metrics=metrics, start_timeout=1.5)
    with pytest.raises(IperfError, match="not accepting"):
        job.run(threading.Event())
    assert state(client, instance_id) == "stopped"
    # a failed run leaves the goodput gauges absent, never 0
    assert metrics.registry.get_sample_value("homemon_iperf_bits_per_second", {
        "direction": "upload", "server": "127.0.0.1"}) is None


def _hold_server(port: int, seconds: int) -> Any:
    """A second client holding the iperf3 server; returns once its test is running."""
    import subprocess

    for _ in range(3):
        holder = subprocess.Popen(
            ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds), "-b", "1M",
             "--forceflush"], stdout=subprocess.PIPE, text=True, stderr=subprocess.STDOUT)
        assert holder.stdout is not None
        output = []
        for line in holder.stdout:
            output.append(line)
            if "connected to" in line:
                return holder
        holder.wait()
    raise AssertionError(f"the holding client never got the server: {''.join(output)}")


def test_server_busy_retries_then_succeeds(client: Any, port: int,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """A second client holds the server until the job has seen "busy" once, then lets go."""
    instance_id = new_instance(client)
    job = make_job(client, instance_id, port, directions=["upload"])
    with iperf3_server(port), caplog.at_level(logging.INFO, "monitor.jobs.iperf"):
        holder = _hold_server(port, 30)
        try:
            box = _run_in_thread(job, threading.Event())
            wait_until(lambda: any("busy" in r.getMessage() for r in caplog.records), 20, 0.05,
                       what="the job to find the server busy")
        finally:
            holder.terminate()
            holder.wait()
        box["thread"].join(20)
    assert "error" not in box, box.get("error")
    assert box["figures"]["upload_bits_per_second"] > 0
    assert state(client, instance_id) == "stopped"


def test_server_busy_throughout_fails(client: Any, port: int) -> None:
    instance_id = new_instance(client)
    job = make_job(client, instance_id, port, directions=["upload"], timeout=10)
    with iperf3_server(port):
        holder = _hold_server(port, 20)
        try:
            with pytest.raises(IperfError, match="busy"):
                job.run(threading.Event())
        finally:
            holder.kill()
            holder.wait()
    assert state(client, instance_id) == "stopped"


def _run_in_thread(job: IperfJob, stop: threading.Event) -> dict[str, Any]:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["figures"] = job.run(stop)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            box["error"] = exc

    box["thread"] = threading.Thread(target=target, daemon=True)
    box["thread"].start()
    return box


def test_iperf3_killed_mid_test(client: Any, port: int) -> None:
    instance_id = new_instance(client)
    job = make_job(client, instance_id, port, directions=["upload"], duration=10)
    with iperf3_server(port) as server:
        box = _run_in_thread(job, threading.Event())
        pids = wait_until(lambda: set(child_processes("iperf3")) - {server.pid}, 10, 0.05,
                          what="iperf3 client")
        time.sleep(0.3)
        os.kill(pids.pop(), signal.SIGKILL)
        box["thread"].join(15)
    assert isinstance(box.get("error"), IperfError)
    assert "signal 9" in str(box["error"])
    assert state(client, instance_id) == "stopped"


def test_malformed_json(client: Any, port: int, tmp_path: Path) -> None:
    fake = tmp_path / "iperf3"
    fake.write_text("#!/bin/sh\necho '{\"start\": {\"connected\": [], garbage'\n")
    fake.chmod(0o755)
    instance_id = new_instance(client)
    job = make_job(client, instance_id, port, iperf3=(str(fake),))
    with iperf3_server(port), pytest.raises(IperfError, match="malformed JSON"):
        job.run(threading.Event())
    assert state(client, instance_id) == "stopped"


def test_job_timeout_stops_iperf3_and_instance(client: Any, port: int) -> None:
    """The real runner times the run out; the job kills iperf3 and still stops the instance."""
    instance_id = new_instance(client)
    metrics = Metrics(CollectorRegistry())
    job = make_job(client, instance_id, port, metrics=metrics, duration=20, directions=["upload"])
    runner = JobRunner(job, metrics, interval=3600, timeout=2.5, link_lock=threading.Lock(),
                       shutdown=threading.Event())
    with iperf3_server(port) as server:
        outcome = runner.run_once()
        assert outcome.result == "timeout"
        wait_until(lambda: not runner.running, 10, what="the job to finish after its timeout")
        assert set(child_processes("iperf3")) == {server.pid}  # the client was killed
    assert state(client, instance_id) == "stopped"


def test_shutdown_during_test(client: Any, port: int) -> None:
    instance_id = new_instance(client)
    shutdown = threading.Event()
    job = make_job(client, instance_id, port, shutdown=shutdown, duration=20,
                   directions=["upload"])
    with iperf3_server(port) as server:
        box = _run_in_thread(job, threading.Event())
        wait_until(lambda: set(child_processes("iperf3")) - {server.pid}, 10, 0.05,
                   what="iperf3 client")
        shutdown.set()
        box["thread"].join(8)
    assert isinstance(box.get("error"), Aborted)
    assert state(client, instance_id) == "stopped"


# --- AWS errors ----------------------------------------------------------------------------


def _described(instance_id: str, name: str) -> dict[str, Any]:
    codes = {"running": 16, "stopped": 80, "stopping": 64, "pending": 0}
    return {"Reservations": [{"Instances": [{"InstanceId": instance_id,
                                             "State": {"Name": name, "Code": codes[name]}}]}]}


def _changed(instance_id: str, before: str, after: str) -> dict[str, Any]:
    codes = {"running": 16, "stopped": 80, "stopping": 64, "pending": 0}
    return {"StartingInstances" if after == "pending" else "StoppingInstances": [{
        "InstanceId": instance_id, "CurrentState": {"Name": after, "Code": codes[after]},
        "PreviousState": {"Name": before, "Code": codes[before]}}]}


STUB_ID = "i-0123456789abcdef0"

# (case, AWS call sequence: (operation, response dict | error code), expected message part)
AWS_ERROR_CASES = [
    ("start not permitted",
     [("describe_instances", _described(STUB_ID, "stopped")),
      ("start_instances", "UnauthorizedOperation"),
      ("describe_instances", _described(STUB_ID, "stopped"))],
     "needs ec2:StartInstances"),
    ("no capacity",
     [("describe_instances", _described(STUB_ID, "stopped")),
      ("start_instances", "InsufficientInstanceCapacity"),
      ("describe_instances", _described(STUB_ID, "stopped"))],
     "next interval will try again"),
    ("wrong state",
     [("describe_instances", _described(STUB_ID, "stopped")),
      ("start_instances", "IncorrectInstanceState"),
      ("describe_instances", _described(STUB_ID, "stopped"))],
     "wrong state"),
    ("throttled while waiting, instance already starting",
     [("describe_instances", _described(STUB_ID, "stopped")),
      ("start_instances", _changed(STUB_ID, "stopped", "pending")),
      ("describe_instances", "RequestLimitExceeded"),
      ("describe_instances", _described(STUB_ID, "pending")),
      ("stop_instances", _changed(STUB_ID, "pending", "stopping")),
      ("describe_instances", _described(STUB_ID, "stopped"))],
     "throttled"),
]


@pytest.mark.parametrize(("calls", "message"), [c[1:] for c in AWS_ERROR_CASES],
                         ids=[c[0] for c in AWS_ERROR_CASES])
def test_aws_errors_are_clear_and_stop_is_sent(calls: list[tuple[str, Any]], message: str,
                                               port: int) -> None:
    stub_client = ec2_client("http://127.0.0.1:9")  # never contacted: the Stubber answers
    with Stubber(stub_client) as stubber:
        for operation, reply in calls:
            if isinstance(reply, str):
                stubber.add_client_error(operation, service_error_code=reply,
                                         service_message=f"simulated {reply}", http_status_code=400)
            else:
                stubber.add_response(operation, reply)
        job = make_job(stub_client, STUB_ID, port)
        with pytest.raises(Ec2Error, match=message):
            job.run(threading.Event())
        stubber.assert_no_pending_responses()  # every call happened, incl. the stop


def test_stop_not_permitted_is_counted_and_named(port: int,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    stub_client = ec2_client("http://127.0.0.1:9")
    metrics = Metrics(CollectorRegistry())
    with Stubber(stub_client) as stubber:
        stubber.add_response("describe_instances", _described(STUB_ID, "running"))
        stubber.add_response("describe_instances", _described(STUB_ID, "running"))
        stubber.add_response("describe_instances", _described(STUB_ID, "running"))
        stubber.add_client_error("stop_instances", "UnauthorizedOperation", "simulated", 403)
        job = make_job(stub_client, STUB_ID, port, metrics=metrics, start_timeout=0.5)
        with caplog.at_level(logging.ERROR, "monitor.jobs.iperf.ec2"), \
                pytest.raises(IperfError, match="not accepting"):
            job.run(threading.Event())
        stubber.assert_no_pending_responses()
    assert metrics.registry.get_sample_value("homemon_ec2_stop_failures_total",
                                             {"instance_id": STUB_ID}) == 1
    assert any("ec2:StopInstances" in r.getMessage() for r in caplog.records)


def test_no_credentials(endpoint: str, client: Any, port: int,
                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    instance_id = new_instance(client)
    for name in FAKE_CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    real_client = make_client(Ec2Config(instance_id=instance_id, region=REGION,
                                        endpoint_url=endpoint))
    job = make_job(real_client, instance_id, port)
    with pytest.raises(Ec2Error, match="no AWS credentials"):
        job.run(threading.Event())
    assert state(client, instance_id) == "stopped"


# --- orphan and watchdog ---------------------------------------------------------------------


@pytest.mark.parametrize("stop_orphaned", [True, False])
def test_orphan_at_start(client: Any, port: int, stop_orphaned: bool) -> None:
    instance_id = new_instance(client, running=True)
    metrics = Metrics(CollectorRegistry())
    job = make_job(client, instance_id, port, metrics=metrics, stop_orphaned=stop_orphaned)
    job.on_start()
    assert state(client, instance_id) == ("stopped" if stop_orphaned else "running")
    assert metrics.registry.get_sample_value("homemon_ec2_forced_stops_total", {
        "instance_id": instance_id, "reason": "orphaned"}) == (1 if stop_orphaned else 0)
    client.stop_instances(InstanceIds=[instance_id])


@pytest.mark.parametrize(("max_running", "expected"), [(0.5, "stopped"), (3600, "running")])
def test_watchdog(client: Any, port: int, max_running: float, expected: str) -> None:
    instance_id = new_instance(client, running=True)
    metrics = Metrics(CollectorRegistry())
    job = make_job(client, instance_id, port, metrics=metrics, max_running=max_running)
    (task,) = job.periodic()
    assert task.interval == 60
    time.sleep(0.6)
    task.func()
    assert state(client, instance_id) == expected
    value = metrics.registry.get_sample_value
    assert value("homemon_ec2_forced_stops_total", {
        "instance_id": instance_id, "reason": "max_running"}) == (expected == "stopped")
    assert value("homemon_ec2_instance_running_seconds_total", {"instance_id": instance_id}) > 0
    assert value("homemon_ec2_instance_running", {"instance_id": instance_id}) == (
        expected == "running")
    client.stop_instances(InstanceIds=[instance_id])


def test_stopping_instance_is_waited_for_before_start(port: int) -> None:
    """Found `stopping` (e.g. the idle shutdown just fired): wait for stopped, then start."""
    stub_client = ec2_client("http://127.0.0.1:9")
    with Stubber(stub_client) as stubber:
        for operation, reply in [
                ("describe_instances", _described(STUB_ID, "stopping")),
                ("describe_instances", _described(STUB_ID, "stopped")),
                ("start_instances", _changed(STUB_ID, "stopped", "pending")),
                ("describe_instances", _described(STUB_ID, "running")),
                # nothing listens on the port: the run fails, and the stop follows
                ("describe_instances", _described(STUB_ID, "running")),
                ("stop_instances", _changed(STUB_ID, "running", "stopping")),
                ("describe_instances", _described(STUB_ID, "stopped"))]:
            stubber.add_response(operation, reply)
        job = make_job(stub_client, STUB_ID, port, start_timeout=3)
        with pytest.raises(IperfError, match="not accepting"):
            job.run(threading.Event())
        stubber.assert_no_pending_responses()


def test_fixed_host_without_aws(port: int) -> None:
    metrics = Metrics(CollectorRegistry())
    config = IperfConfig(enabled=True, duration=1, omit=0, streams=1, port=port,
                         host="127.0.0.1")
    job = IperfJob(config, IperfMetrics(metrics.registry), threading.Event())
    assert job.periodic() == []
    job.on_start()
    with iperf3_server(port):
        figures = job.run(threading.Event())
    assert figures["upload_bits_per_second"] > 0
    assert figures["download_bits_per_second"] > 0
    assert "ec2_start_seconds" not in figures
