"""The user's EC2 instance: describe, start, wait, address, stop — with boto3.

boto3 is imported only inside `make_client()`, i.e. when the iperf job is built with an `ec2`
section: with the job disabled the daemon never loads it (it costs ~30 MB and a second).
Every AWS error becomes an `Ec2Error` whose message says what to do about it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.errors import describe
from monitor.jobs.base import Aborted, AnyEvent
from monitor.jobs.iperf.config import Ec2Config
from monitor.logs import event

log = logging.getLogger("monitor.jobs.iperf.ec2")

POLL_SECONDS = 2.0
RUNNING_STATES = ("pending", "running")


class Ec2Error(Exception):
    """An AWS call failed; the message is meant for the user's log."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class InstanceInfo:
    state: str  # pending | running | stopping | stopped | shutting-down | terminated
    public_ip: str | None
    launch_time: float | None  # Unix seconds; AWS updates it on every start


def make_client(config: Ec2Config) -> Any:
    """A boto3 EC2 client: region/endpoint from the config, credentials from the standard chain
    (environment, ~/.aws, instance or container role). Short timeouts: a hung call must not
    keep the instance running."""
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client(
        "ec2", region_name=config.region, endpoint_url=config.endpoint_url,
        config=BotoConfig(connect_timeout=5, read_timeout=15,
                          retries={"max_attempts": 4, "mode": "standard"}))


def explain(exc: Exception, instance_id: str) -> Ec2Error:
    """Turn a botocore exception into an Ec2Error with a message that says what to do."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(exc, Ec2Error):
        return exc
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return Ec2Error("no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                        "AWS_PROFILE or a shared credentials file (see docs/iperf.md)",
                        "NoCredentials")
    if isinstance(exc, EndpointConnectionError):
        return Ec2Error(f"cannot reach the EC2 endpoint: {exc}", "EndpointConnectionError")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        detail = str(error.get("Message", "")).strip()
        operation = exc.operation_name or "?"
        if code in ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException"):
            message = (f"not allowed to call ec2:{operation} on {instance_id}: the IAM policy "
                       f"needs ec2:{operation} (see deploy/ec2/iam-policy.json)")
        elif code == "InsufficientInstanceCapacity":
            message = (f"AWS has no spare capacity for {instance_id}'s instance type in its "
                       f"zone right now; the next interval will try again")
        elif code == "IncorrectInstanceState":
            message = f"{operation} refused, {instance_id} is in the wrong state: {detail}"
        elif code in ("RequestLimitExceeded", "Throttling", "ThrottlingException"):
            message = f"AWS throttled {operation} even after retries; try a longer interval"
        elif code.startswith("InvalidInstanceID"):
            message = f"instance {instance_id} not found in this region/account ({code})"
        elif code in ("AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch"):
            message = f"AWS rejected the credentials ({code}): {detail}"
        else:
            message = f"{operation} failed: {code}: {detail}"
        return Ec2Error(message, code)
    if isinstance(exc, BotoCoreError):
        return Ec2Error(f"AWS call failed: {exc}", type(exc).__name__)
    return Ec2Error(f"AWS call failed: {describe(exc)}", type(exc).__name__)


class Instance:
    """One EC2 instance behind an injected boto3 client (moto's server or Stubber in tests)."""

    def __init__(self, client: Any, instance_id: str, *,
                 sleep: Callable[[float], bool] | None = None) -> None:
        self.client = client
        self.id = instance_id
        # sleep(seconds) -> True when asked to stop early (an Event.wait)
        self._sleep = sleep or (lambda seconds: threading.Event().wait(seconds))

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(**kwargs)
        except Exception as exc:  # noqa: BLE001 - every AWS failure becomes an Ec2Error
            raise explain(exc, self.id) from exc

    def describe(self) -> InstanceInfo:
        response = self._call("describe_instances", InstanceIds=[self.id])
        for reservation in response.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                if instance.get("InstanceId") == self.id:
                    launch = instance.get("LaunchTime")
                    return InstanceInfo(
                        state=str(instance.get("State", {}).get("Name", "unknown")),
                        public_ip=instance.get("PublicIpAddress"),
                        launch_time=launch.timestamp() if launch is not None else None)
        raise Ec2Error(f"instance {self.id} not found in this region/account",
                       "InvalidInstanceID.NotFound")

    def start(self) -> None:
        self._call("start_instances", InstanceIds=[self.id])

    def stop(self) -> None:
        self._call("stop_instances", InstanceIds=[self.id])

    def wait_for(self, states: tuple[str, ...], timeout: float,
                 abort: AnyEvent | None = None) -> InstanceInfo:
        """Poll until the state is one of `states`; raise Ec2Error after `timeout` seconds,
        Aborted when `abort` is set."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.describe()
            if info.state in states:
                return info
            if info.state in ("terminated", "shutting-down"):
                raise Ec2Error(f"instance {self.id} is {info.state}; it cannot be used again",
                               "Terminated")
            left = deadline - time.monotonic()
            if left <= 0:
                raise Ec2Error(f"instance {self.id} still {info.state} after {timeout:g} s "
                               f"(waiting for {' or '.join(states)})", "WaitTimeout")
            if abort is not None and abort.is_set():
                raise Aborted(f"stopped waiting for {self.id} to be {' or '.join(states)}: "
                              f"the job was asked to stop")
            if abort is not None:
                abort.wait(min(POLL_SECONDS, left))
            else:
                self._sleep(min(POLL_SECONDS, left))


class RunningClock:
    """Keeps homemon_ec2_instance_running{,_seconds_total} from state observations.

    Time counts from the later of AWS's LaunchTime and our last sighting of the instance not
    running, up to the observation that finds it not running (an upper bound: cost estimates
    should not undercount)."""

    def __init__(self, running_gauge: Any, running_seconds: Any, instance_id: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._gauge = running_gauge.labels(instance_id=instance_id)
        self._seconds = running_seconds.labels(instance_id=instance_id)
        self._clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None  # running, counted up to this moment
        self._started: float = 0.0  # when the current running spell began
        self._last_not_running: float | None = None

    def observe(self, info: InstanceInfo) -> float | None:
        """Record one observation; returns how long it has been running (None if not)."""
        now = self._clock()
        with self._lock:
            running = info.state in RUNNING_STATES
            if running:
                if self._since is None:
                    candidates = [t for t in (info.launch_time, self._last_not_running)
                                  if t is not None]
                    self._since = max(candidates) if candidates else now
                    self._started = self._since
                self._seconds.inc(max(0.0, now - self._since))
                self._since = now
                self._gauge.set(1)
                return now - self._started
            if self._since is not None:
                self._seconds.inc(max(0.0, now - self._since))
                self._since = None
            self._last_not_running = now
            self._gauge.set(0)
            return None


def log_aws_error(error: Ec2Error, instance_id: str, action: str) -> None:
    event(log, logging.ERROR, f"EC2 {action} failed: {error}", instance_id=instance_id,
          code=error.code)
