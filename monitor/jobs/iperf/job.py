"""The iperf job: start the user's EC2 instance, run iperf3 both ways, and always stop it.

Flow: describe -> start if stopped (after `stopping` has finished) -> wait until running ->
address (config `host`, else the public IP) -> wait until the iperf3 port accepts -> upload ->
download (-R) -> in `finally`: stop and wait until stopped. Without an `ec2` section the job
just measures against the fixed `host`.

iperf3 runs as a subprocess with -J (not the PyPI wrapper, which takes over stdout and cannot
be timed out). iperf3 3.11-3.13 exit 0 when a -J run fails, so the JSON `error` key decides.

Bytes include the omitted (-O) seconds: `end.sum_sent` and `end.sum_received` leave them out
(iperf_reset_stats zeroes the counters when the omit period ends), but the link carried them
all the same; see run_bytes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.jobs.base import Aborted, AnyEvent, Job, JobEnv, Periodic
from monitor.jobs.iperf.card import IperfCard
from monitor.jobs.iperf.config import IperfConfig
from monitor.jobs.iperf.ec2 import (
    RUNNING_STATES,
    Ec2Error,
    Instance,
    InstanceInfo,
    RunningClock,
    log_aws_error,
)
from monitor.jobs.iperf.metrics import IperfMetrics
from monitor.logs import event

log = logging.getLogger("monitor.jobs.iperf")

OMIT_SLACK = 0.25  # omitted time the interval reports may lack before it is filled in
SUBPROCESS_MARGIN = 15.0  # connect (5 s) + result exchange, on top of duration + omit
CONNECT_TIMEOUT_MS = 5000
BUSY_RETRIES = 4
BUSY_BACKOFF = 2.0  # seconds, doubled after each busy answer
PORT_POLL = 0.5
PORT_SETTLE = 0.3
WATCHDOG_INTERVAL = 60.0
STOP_ATTEMPTS = 3


class IperfError(Exception):
    """iperf3 did not give a usable result; the message says why."""


class ServerBusy(IperfError):
    """The iperf3 server is running another client's test, or is resetting after one (worth
    another try a little later)."""


# iperf3 3.12's server resets itself after any control connection that closes early -- our own
# port probe included -- and a client arriving during that reset gets one of these
_TRANSIENT_ERRORS = ("busy", "unable to receive control message",
                     "control socket has closed unexpectedly")


@dataclass(frozen=True)
class DirectionResult:
    direction: str  # upload | download
    bits_per_second: float  # receiver-side goodput
    retransmits: int | None  # sender side; None when the sender did not report it
    bytes: int  # payload received in the whole run, omitted seconds included (run_bytes)


@dataclass(frozen=True)
class IperfMeasurement:
    server: str
    results: tuple[DirectionResult, ...]
    errors: tuple[str, ...] = ()  # directions that failed, "download: why"
    start_seconds: float | None = None  # start request -> port open, when we started it


# --- pure parts ----------------------------------------------------------------------------


def parse_result(text: str, direction: str) -> DirectionResult:
    """iperf3 -J output -> goodput, retransmits, bytes. Raises IperfError (ServerBusy when the
    server is busy) for an `error` key, malformed JSON or missing figures."""
    if not text.strip():
        raise IperfError("iperf3 printed no output")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IperfError(f"iperf3 printed malformed JSON ({exc.msg} at char {exc.pos}): "
                         f"{text.strip()[:80]!r}") from None
    if not isinstance(data, dict):
        raise IperfError(f"iperf3 JSON is a {type(data).__name__}, expected an object")
    error = data.get("error")
    if error:
        if any(part in str(error).lower() for part in _TRANSIENT_ERRORS):
            raise ServerBusy(f"iperf3 server busy: {error}")
        raise IperfError(f"iperf3: {error}")
    end = data.get("end")
    received = end.get("sum_received") if isinstance(end, dict) else None
    sent = end.get("sum_sent") if isinstance(end, dict) else None
    if not isinstance(received, dict) or not isinstance(sent, dict):
        raise IperfError("iperf3 JSON has no end.sum_received/end.sum_sent")
    bps = received.get("bits_per_second")
    if isinstance(bps, bool) or not isinstance(bps, int | float) or not bps >= 0:
        raise IperfError(f"iperf3 JSON has an invalid end.sum_received.bits_per_second: {bps!r}")
    retransmits = sent.get("retransmits")
    if isinstance(retransmits, bool) or not isinstance(retransmits, int):
        retransmits = None
    return DirectionResult(direction, float(bps), retransmits,
                           run_bytes(data, received, client_receives=direction == "download"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        return None
    return float(value)


def _omit_seconds(data: dict[str, Any]) -> float:
    start = data.get("start")
    test_start = start.get("test_start") if isinstance(start, dict) else None
    return (_number(test_start.get("omit")) if isinstance(test_start, dict) else None) or 0.0


def run_bytes(data: dict[str, Any], received: dict[str, Any], *, client_receives: bool) -> int:
    """The payload that crossed the link in the whole run, omitted seconds included: what the
    receiver got, which is what the sender's link carried (less headers and retransmissions).

    Measured period: `end.sum_received` (the receiver's own counter; exact, and independent of
    the interval reports). Omit period: the client's intervals marked `"omitted": true`. For a
    download the client is the receiver and those are exact. For an upload they count what the
    client wrote to its sockets, which in slow start runs ahead of the link (on a 15 Mbit/s
    link by ~1.5 MB, never sent when the test stops), so they are capped at the measured
    rate. iperf3 zeroes the interval in progress when its omit timer fires before its stats
    timer (seen with 3.12, -O 2): omitted intervals that cover less than `omit` seconds are
    filled in at the measured rate (the missing time directly precedes the measured period)."""
    measured = _number(received.get("bytes")) or 0.0
    measured_seconds = _number(received.get("seconds")) or 0.0
    rate = measured / measured_seconds if measured_seconds > 0 else 0.0
    omit = _omit_seconds(data)
    omitted_bytes = omitted_seconds = 0.0
    intervals = data.get("intervals")
    for interval in intervals if isinstance(intervals, list) else ():
        total = interval.get("sum") if isinstance(interval, dict) else None
        if not isinstance(total, dict) or total.get("omitted") is not True:
            continue
        omitted_bytes += _number(total.get("bytes")) or 0.0
        omitted_seconds += _number(total.get("seconds")) or 0.0
    if omit - omitted_seconds > OMIT_SLACK:
        omitted_bytes += (omit - omitted_seconds) * rate
    if not client_receives and rate > 0:
        omitted_bytes = min(omitted_bytes, omit * rate)
    return round(measured + omitted_bytes)


def iperf3_args(host: str, port: int, *, duration: float, omit: float, streams: int,
                download: bool) -> list[str]:
    args = ["-J", "-c", host, "-p", str(port), "-t", str(max(1, round(duration))),
            "-O", str(round(omit)), "-P", str(streams), "--connect-timeout",
            str(CONNECT_TIMEOUT_MS)]
    return [*args, "-R"] if download else args


def record(measurement: IperfMeasurement, metrics: IperfMetrics) -> None:
    for result in measurement.results:
        labels = {"direction": result.direction, "server": measurement.server}
        metrics.bits_per_second.labels(**labels).set(result.bits_per_second)
        if result.retransmits is not None:
            metrics.retransmits.labels(**labels).set(result.retransmits)
        metrics.bytes.labels(direction=result.direction).inc(result.bytes)


def summary(measurement: IperfMeasurement) -> dict[str, Any]:
    figures: dict[str, Any] = {"server": measurement.server}
    for result in measurement.results:
        figures[f"{result.direction}_bits_per_second"] = round(result.bits_per_second)
        figures[f"{result.direction}_retransmits"] = result.retransmits
        figures[f"{result.direction}_bytes"] = result.bytes
    if measurement.start_seconds is not None:
        figures["ec2_start_seconds"] = round(measurement.start_seconds, 3)
    return figures


# --- the world -----------------------------------------------------------------------------


def run_iperf3(command: Sequence[str], timeout: float, abort: AnyEvent) -> tuple[int, str, str]:
    """Run iperf3 to completion; kill it on timeout or abort. Output goes to temp files so a
    large -J report cannot block on a full pipe while we poll."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None:
                if abort.is_set():
                    raise Aborted("iperf3 killed: the job was asked to stop")
                if time.monotonic() > deadline:
                    raise IperfError(f"iperf3 gave no result within {timeout:g} s; killed it")
                abort.wait(0.1)
        finally:
            if proc.poll() is None:
                proc.terminate()  # lets iperf3 tell the server, so it is not left busy
                try:
                    proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        out.seek(0)
        err.seek(0)
        return (proc.returncode, out.read().decode("utf-8", "replace"),
                err.read().decode("utf-8", "replace"))


def wait_for_port(host: str, port: int, timeout: float, abort: AnyEvent) -> None:
    """Poll until a TCP connect to host:port succeeds (the iperf3 server is up)."""
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise IperfError(f"iperf3 port {host}:{port} not accepting after {timeout:g} s "
                             f"({last}); is the iperf3 service running and the security group "
                             f"open to this address?")
        try:
            with socket.create_connection((host, port), timeout=min(3.0, left)):
                pass
            # give the server a moment to reset after our empty connection (see ServerBusy)
            if abort.wait(PORT_SETTLE):
                raise Aborted("stopped waiting for the iperf3 port: the job was asked to stop")
            return
        except OSError as exc:
            last = exc.strerror or type(exc).__name__
        if abort.wait(min(PORT_POLL, max(0.0, deadline - time.monotonic()))):
            raise Aborted("stopped waiting for the iperf3 port: the job was asked to stop")


# --- the job -------------------------------------------------------------------------------


class IperfJob(Job):
    name = "iperf"
    uses_link = True

    def __init__(self, config: IperfConfig, metrics: IperfMetrics, shutdown: threading.Event,
                 *, ec2_client: Any = None, iperf3: Sequence[str] = ("iperf3",)) -> None:
        self.config = config
        self.metrics = metrics
        self.shutdown = shutdown
        self.iperf3 = tuple(iperf3)
        self.instance: Instance | None = None
        self.clock: RunningClock | None = None
        if config.ec2 is not None:
            if ec2_client is None:
                from monitor.jobs.iperf.ec2 import make_client  # imports boto3

                ec2_client = make_client(config.ec2)
            self.instance = Instance(ec2_client, config.ec2.instance_id)
            self.clock = RunningClock(metrics.instance_running, metrics.instance_running_seconds,
                                      config.ec2.instance_id)
            for reason in ("orphaned", "max_running"):
                metrics.forced_stops.labels(instance_id=config.ec2.instance_id, reason=reason)
            metrics.stop_failures.labels(instance_id=config.ec2.instance_id)

    # -- one run --

    def card(self) -> IperfCard:
        return IperfCard(self.config.ec2, self.metrics, self.config.directions)

    def run(self, stop: threading.Event) -> Mapping[str, Any]:
        abort = AnyEvent(stop, self.shutdown)
        deadline = time.monotonic() + self.config.timeout
        if self.instance is None:
            assert self.config.host is not None  # config validation guarantees it
            measurement = self.measure(self.config.host, abort, deadline)
        else:
            measurement = self._with_instance(self.instance, abort, deadline)
        record(measurement, self.metrics)
        if measurement.errors:
            raise IperfError("; ".join(measurement.errors))
        return summary(measurement)

    def _with_instance(self, instance: Instance, abort: AnyEvent,
                       deadline: float) -> IperfMeasurement:
        touched = False  # once True, the instance may be running: stop it whatever happens
        try:
            info = self._observe(instance.describe())
            touched = True
            address, start_seconds = self._bring_up(instance, info, abort)
            measurement = self.measure(address, abort, deadline)
        except BaseException as exc:
            if touched:
                # a stop failure is logged and counted there; the first error is the one to report
                with contextlib.suppress(Ec2Error):
                    self._stop_instance(instance)
            if isinstance(exc, Ec2Error):
                log_aws_error(exc, instance.id, "iperf run")
            raise
        try:
            self._stop_instance(instance)
        except Ec2Error:
            record(measurement, self.metrics)  # the figures are good; the run still fails
            raise
        if start_seconds is not None:
            self.metrics.start_seconds.labels(instance_id=instance.id).set(start_seconds)
        return IperfMeasurement(measurement.server, measurement.results, measurement.errors,
                                start_seconds)

    def _bring_up(self, instance: Instance, info: InstanceInfo,
                  abort: AnyEvent) -> tuple[str, float | None]:
        ec2 = self.config.ec2
        assert ec2 is not None
        begun = time.monotonic()
        if info.state == "stopping":
            info = self._observe(instance.wait_for(("stopped",), ec2.stop_timeout, abort))
        start_requested: float | None = None
        if info.state == "stopped":
            event(log, logging.INFO, "starting EC2 instance", instance_id=instance.id)
            start_requested = time.monotonic()
            instance.start()
        elif info.state not in RUNNING_STATES:
            raise Ec2Error(f"instance {instance.id} is {info.state}; cannot start it", info.state)
        left = ec2.start_timeout - (time.monotonic() - begun)
        info = self._observe(instance.wait_for(("running",), max(0.0, left), abort))
        address = self.config.host or info.public_ip
        if not address:
            raise Ec2Error(f"instance {instance.id} has no public IP address: give it one "
                           f"(or an Elastic IP) or set jobs.iperf.host", "NoAddress")
        left = ec2.start_timeout - (time.monotonic() - begun)
        wait_for_port(address, self.config.port, max(0.0, left), abort)
        start_seconds = None if start_requested is None else time.monotonic() - start_requested
        event(log, logging.INFO, "EC2 instance ready", instance_id=instance.id,
              address=address, start_seconds=start_seconds)
        return address, start_seconds

    def _stop_instance(self, instance: Instance) -> None:
        """Stop the instance and wait (bounded) until it is stopped. At daemon shutdown the
        request is sent and the wait cut short: AWS finishes the stop without us."""
        ec2 = self.config.ec2
        assert ec2 is not None
        labels = {"instance_id": instance.id}
        try:
            info = self._observe(instance.describe())
            if info.state == "stopped":
                return
        except Ec2Error as exc:
            log_aws_error(exc, instance.id, "describe before stop")
        for attempt in range(1, STOP_ATTEMPTS + 1):
            try:
                instance.stop()
                break
            except Ec2Error as exc:
                self.metrics.stop_failures.labels(**labels).inc()
                log_aws_error(exc, instance.id, f"stop (attempt {attempt}/{STOP_ATTEMPTS}); "
                              "the instance may still be running and costing money")
                if attempt == STOP_ATTEMPTS or exc.code in ("UnauthorizedOperation",
                                                            "NoCredentials"):
                    raise Ec2Error(f"could not stop {instance.id}: {exc}", exc.code) from exc
                time.sleep(attempt)
        event(log, logging.INFO, "stopping EC2 instance", instance_id=instance.id)
        try:
            info = self._observe(instance.wait_for(("stopped",), ec2.stop_timeout,
                                                   abort=AnyEvent(self.shutdown)))
        except Aborted:
            event(log, logging.WARNING, "stop requested; not waiting for it during shutdown",
                  instance_id=instance.id)
            return
        except Ec2Error as exc:
            self.metrics.stop_failures.labels(**labels).inc()
            log_aws_error(exc, instance.id, "waiting for stopped")
            raise

    def _observe(self, info: InstanceInfo) -> InstanceInfo:
        if self.clock is not None:
            self.clock.observe(info)
        return info

    def measure(self, host: str, abort: AnyEvent, deadline: float) -> IperfMeasurement:
        """Each configured direction in turn. A direction that fails is reported in `errors`
        and the next still runs, unless the job was told to stop."""
        results: list[DirectionResult] = []
        errors: list[str] = []
        for direction in self.config.directions:
            try:
                results.append(self._measure_direction(host, direction, abort, deadline))
            except IperfError as exc:
                errors.append(f"{direction}: {exc}")
                event(log, logging.WARNING, f"iperf3 {direction} failed: {exc}", server=host)
        return IperfMeasurement(host, tuple(results), tuple(errors))

    def _measure_direction(self, host: str, direction: str, abort: AnyEvent,
                           deadline: float) -> DirectionResult:
        cfg = self.config
        command = [*self.iperf3, *iperf3_args(host, cfg.port, duration=cfg.duration,
                                              omit=cfg.omit, streams=cfg.streams,
                                              download=direction == "download")]
        timeout = max(1, round(cfg.duration)) + round(cfg.omit) + SUBPROCESS_MARGIN
        backoff = BUSY_BACKOFF
        for attempt in range(1, BUSY_RETRIES + 1):
            returncode, out, err = run_iperf3(command, timeout, abort)
            try:
                return parse_result(out, direction)
            except ServerBusy:
                if attempt == BUSY_RETRIES or time.monotonic() + backoff + timeout > deadline:
                    raise
                event(log, logging.INFO, "iperf3 server busy; retrying", server=host,
                      direction=direction, attempt=attempt, wait_seconds=backoff)
                if abort.wait(backoff):
                    raise Aborted("stopped retrying iperf3: the job was asked to stop") from None
                backoff *= 2
            except IperfError as exc:
                if returncode < 0:
                    raise IperfError(f"iperf3 was killed by signal {-returncode}") from None
                if returncode and not out.strip():
                    raise IperfError(f"iperf3 exited with {returncode}: "
                                     f"{err.strip()[-200:]}") from None
                raise exc from None
        raise AssertionError("unreachable")

    # -- daemon hooks --

    def on_start(self) -> None:
        """Stop an instance left running (e.g. by a crash) when `stop_orphaned` is set."""
        if self.instance is None or self.config.ec2 is None:
            return
        instance = self.instance
        try:
            info = self._observe(instance.describe())
        except Ec2Error as exc:
            log_aws_error(exc, instance.id, "describe at start-up")
            return
        if info.state not in RUNNING_STATES:
            return
        if not self.config.ec2.stop_orphaned:
            event(log, logging.WARNING, "EC2 instance is running at start-up; left alone "
                  "(stop_orphaned is false)", instance_id=instance.id)
            return
        self._force_stop(instance, "orphaned")

    def periodic(self) -> list[Periodic]:
        if self.instance is None:
            return []
        return [Periodic("ec2-watchdog", WATCHDOG_INTERVAL, self.watchdog)]

    def watchdog(self) -> None:
        """Every minute: keep the running metrics fresh; stop the instance past max_running."""
        if self.instance is None or self.config.ec2 is None:
            return
        instance = self.instance
        try:
            info = instance.describe()
        except Ec2Error as exc:
            log_aws_error(exc, instance.id, "watchdog describe")
            return
        running_for = self.clock.observe(info) if self.clock is not None else None
        if running_for is not None and running_for > self.config.ec2.max_running:
            event(log, logging.ERROR, "EC2 instance running past max_running; stopping it",
                  instance_id=instance.id, running_seconds=round(running_for),
                  max_running_seconds=self.config.ec2.max_running)
            self._force_stop(instance, "max_running")

    def _force_stop(self, instance: Instance, reason: str) -> None:
        self.metrics.forced_stops.labels(instance_id=instance.id, reason=reason).inc()
        event(log, logging.WARNING, f"stopping EC2 instance ({reason})", instance_id=instance.id)
        try:
            instance.stop()
        except Ec2Error as exc:
            self.metrics.stop_failures.labels(instance_id=instance.id).inc()
            log_aws_error(exc, instance.id, f"stop ({reason}); the instance may still be "
                          "running and costing money")
            return
        try:
            self._observe(instance.describe())
        except Ec2Error as exc:
            log_aws_error(exc, instance.id, "describe after stop")


def build(env: JobEnv) -> IperfJob:
    return IperfJob(env.job_config("iperf", IperfConfig), IperfMetrics(env.metrics.registry),
                    env.shutdown)
