"""What both bandwidth backends share: the result, the live byte tally and the error type."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

DIRECTIONS = ("download", "upload")


class BandwidthError(RuntimeError):
    """A test that failed; the message says which step and why (shown in the run's log line)."""


class ByteTally:
    """Bytes moved so far, per direction. Updated live from the transfer threads, so the job can
    count (and charge to the data budget) what a failed or interrupted test used."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes = dict.fromkeys(DIRECTIONS, 0)

    def add(self, direction: str, count: int) -> None:
        with self._lock:
            self._bytes[direction] += count

    def get(self, direction: str) -> int:
        with self._lock:
            return self._bytes[direction]

    def total(self) -> int:
        with self._lock:
            return sum(self._bytes.values())


@dataclass
class BandwidthResult:
    backend: str
    server: str
    download_bps: float | None = None
    upload_bps: float | None = None
    latency_seconds: float | None = None
    idle_rtt_seconds: float | None = None  # ICMP to the loaded-RTT target, before the load
    loaded_rtt_seconds: dict[str, float] = field(default_factory=dict)
    # a direction that failed after the other one worked: recorded, then the run fails
    failure: str | None = None
    # (backend, error) of the backends tried before this one (`fallback`)
    failed_backends: list[tuple[str, str]] = field(default_factory=list)
