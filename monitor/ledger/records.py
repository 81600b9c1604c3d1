"""What goes into the ledger and comes out of it: plain dataclasses, epoch seconds (UTC)."""

from __future__ import annotations

from dataclasses import dataclass

MONITOR_OFF = "monitor_off"  # an outage cause: no data because the daemon was not running


@dataclass(frozen=True)
class OutageRow:
    start: float
    end: float | None  # None: still going on (not written by the daemon today)
    cause: str | None = None  # None: not known; "monitor_off": the daemon was not running
    detail: str | None = None  # the cause in words ("your router answered, ... did not")

    @property
    def seconds(self) -> float | None:
        return None if self.end is None else self.end - self.start


@dataclass(frozen=True)
class SpeedTestRow:
    """One throughput test, as the job's card hands it over; a direction not measured is None.
    The ledger stores what the test is, never which job it is: the card says both."""

    at: float  # when the test finished
    job: str  # the name of the job that ran it (its card's `job`)
    backend: str  # what measured it (the job's word for its tool)
    server: str
    download_bps: float | None = None
    upload_bps: float | None = None
    latency_seconds: float | None = None
    bytes_used: int = 0  # both directions, also for a failed test
    ok: bool = True
    error: str | None = None
    # the test measures the contracted internet line, so the ISP report compares it with the
    # plan (a test against the user's own server measures a path, not the contract)
    against_plan: bool = False


@dataclass(frozen=True)
class LatencyMinute:
    """One target's probes within one minute (minute = its start, a multiple of 60)."""

    minute: int
    target: str
    sent: int
    received: int
    rtt_mean: float | None  # seconds; None when no reply came back
    rtt_p95: float | None
    jitter: float | None  # mean absolute difference of consecutive RTTs (RFC 3550's idea)

    @property
    def loss(self) -> float:
        return 0.0 if self.sent == 0 else 1 - self.received / self.sent


@dataclass(frozen=True)
class AirQualityHour:
    """One sensor's mean particulate matter over one hour (µg/m³)."""

    hour: int  # its start, a multiple of 3600
    sensor: str
    pm25: float | None
    pm10: float | None
    samples: int


@dataclass(frozen=True)
class AirQualitySample:
    """One air-quality reading; the ledger keeps the hour's mean per sensor."""

    sensor: str
    at: float
    pm25: float | None
    pm10: float | None


LedgerRecord = OutageRow | SpeedTestRow | LatencyMinute | AirQualityHour | AirQualitySample


@dataclass(frozen=True)
class DaemonEvent:
    at: float
    kind: str  # "start" or "stop"
    version: str = ""


@dataclass(frozen=True)
class MonitorOff:
    """The gap between the ledger's last sign of life and this start."""

    last_seen: float
    restarted_at: float
    clean_stop: bool  # the previous run wrote its stop (SIGTERM), not a kill or power cut

    @property
    def seconds(self) -> float:
        return self.restarted_at - self.last_seen


@dataclass
class LedgerStats:
    rows_written: int = 0
    commits: int = 0  # successful writes: a reader may cache what it read until this changes
    last_commit_at: float | None = None  # the clock's time of the last successful write
    late: int = 0  # probes and readings for a minute or hour already closed (not stored)
    rows_dropped: int = 0  # the memory buffer was full while the database could not be written
    write_errors: int = 0
    buffered: int = 0
    databases_moved_aside: int = 0
    last_error: str | None = None
