"""The `http` backend: user-chosen URLs, parallel streams, a discarded warm-up, time-bounded.

Each direction runs `streams` connections at once. The first `warmup` seconds (TCP slow start,
connection set-up) are moved but not measured; the rate is the bytes moved after the warm-up
divided by the time since. A direction ends at `duration` after the warm-up, earlier once three
consecutive one-second rates agree within 2 %, and always before it moves its share of
`max_bytes`. Upload bodies are generated chunk by chunk (chunked transfer encoding) from one
64 KiB block, so memory does not grow with the size of the test.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from monitor.config import HttpSpeedConfig
from monitor.jobs.bandwidth_model import BandwidthError, BandwidthResult, ByteTally
from monitor.jobs.bandwidth_rtt import LoadedRttProbe, tcp_connect_rtt

CHUNK = 64 * 1024
SAMPLE_INTERVAL = 0.1
STABLE_WINDOW = 1.0
STABLE_COUNT = 3
STABLE_TOLERANCE = 0.02
MIN_MEASURED = 3.0  # never call a rate stable on less than this much post-warm-up time
CONNECT_TIMEOUT = 5.0

SessionFactory = Callable[[], requests.Session]


def server_label(url: str) -> str:
    """host[:port] of the URL: no credentials, path or query (they may hold tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port}" if parts.port else host


def is_stable(samples: Sequence[tuple[float, int]], *, window: float = STABLE_WINDOW,
              count: int = STABLE_COUNT, tolerance: float = STABLE_TOLERANCE) -> bool:
    """True when the last `count` rates over consecutive `window`-second spans all lie within
    `tolerance` of their mean. `samples` are (time, cumulative bytes), oldest first."""
    if not samples:
        return False
    rates = []
    end_t, end_b = samples[-1]
    index = len(samples) - 1
    for _ in range(count):
        start = end_t - window
        while index > 0 and samples[index][0] > start:
            index -= 1
        t, b = samples[index]
        if t > start + window * 0.05 or t >= end_t:
            return False  # not enough history yet
        rates.append((end_b - b) / (end_t - t))
        end_t, end_b = t, b
    mean = sum(rates) / len(rates)
    return mean > 0 and all(abs(rate - mean) <= tolerance * mean for rate in rates)


def rate_after_warmup(samples: Sequence[tuple[float, int]], warmup_end: float) -> float:
    """Bytes per second from the first sample at or after `warmup_end` to the last sample."""
    first = next((s for s in samples if s[0] >= warmup_end), None)
    last = samples[-1]
    if first is None or last[0] - first[0] <= 0:
        raise BandwidthError("no data moved after the warm-up")
    return (last[1] - first[1]) / (last[0] - first[0])


def _check_status(response: requests.Response, what: str) -> None:
    if response.ok:
        return
    hint = ""
    if response.status_code == 429:
        retry = response.headers.get("Retry-After")
        hint = f" (rate limited{'; Retry-After ' + retry if retry else ''})"
    raise BandwidthError(f"{what}: HTTP {response.status_code} {response.reason}{hint}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BandwidthError):
        return str(exc)
    if isinstance(exc, requests.Timeout):
        return f"timed out (server stalled?): {exc}"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"body cut short (truncated or connection reset): {exc}"
    if isinstance(exc, requests.ConnectionError):
        return f"connection failed or reset: {exc}"
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Phase:
    direction: str
    url: str
    streams: int
    warmup: float
    duration: float
    cap_bytes: int
    io_timeout: float


class HttpBackend:
    name = "http"

    def __init__(self, config: HttpSpeedConfig, *, session_factory: SessionFactory =
                 requests.Session, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._session_factory = session_factory
        self._clock = clock
        self._block = os.urandom(CHUNK)  # incompressible, shared by every upload stream

    def measure(self, stop: threading.Event, tally: ByteTally,
                probe: LoadedRttProbe | None) -> BandwidthResult:
        cfg = self.config
        first_url = cfg.download_url or cfg.upload_url
        assert first_url is not None  # config validation guarantees one
        result = BandwidthResult(backend=self.name, server=server_label(first_url))
        parts = urlsplit(first_url)
        try:
            result.latency_seconds = tcp_connect_rtt(
                parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80),
                timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise BandwidthError(f"cannot connect to {result.server}: {exc}") from exc
        directions = [(d, u) for d, u in (("download", cfg.download_url),
                                          ("upload", cfg.upload_url)) if u]
        cap = cfg.max_bytes // len(directions)
        for direction, url in directions:
            phase = Phase(direction, url, cfg.streams, cfg.warmup, cfg.duration, cap,
                          cfg.io_timeout)
            try:
                if probe is None:
                    rate = self._run_phase(phase, stop, tally)
                else:
                    with probe.during(result.loaded_rtt_seconds, direction):
                        rate = self._run_phase(phase, stop, tally)
            except BandwidthError as exc:
                if direction == "upload" and result.download_bps is not None:
                    result.failure = str(exc)
                    return result
                raise
            setattr(result, f"{direction}_bps", rate * 8)
        return result

    def _run_phase(self, phase: Phase, stop: threading.Event, tally: ByteTally) -> float:
        done = threading.Event()
        errors: list[str] = []
        worker = self._download_stream if phase.direction == "download" else self._upload_stream

        def guarded() -> None:
            try:
                worker(phase, done, tally)
            except Exception as exc:  # noqa: BLE001 - reported as the phase's failure
                if not done.is_set():
                    errors.append(_describe(exc))
                done.set()

        threads = [threading.Thread(target=guarded, name=f"bw-{phase.direction}-{i}",
                                    daemon=True) for i in range(phase.streams)]
        base = tally.get(phase.direction)
        started = self._clock()
        for thread in threads:
            thread.start()
        warmup_end = started + phase.warmup
        deadline = warmup_end + phase.duration
        samples: list[tuple[float, int]] = [(started, 0)]
        measured: list[tuple[float, int]] = []
        while True:
            stop.wait(SAMPLE_INTERVAL)
            now, moved = self._clock(), tally.get(phase.direction) - base
            samples.append((now, moved))
            if now >= warmup_end:
                measured.append((now, moved))
            if (errors or stop.is_set() or now >= deadline or moved >= phase.cap_bytes
                    or (now - warmup_end >= min(MIN_MEASURED, phase.duration)
                        and is_stable(measured))):
                break
        done.set()
        for thread in threads:
            thread.join(phase.io_timeout + CONNECT_TIMEOUT)
        where = f"{phase.direction} {server_label(phase.url)}"
        if errors:
            raise BandwidthError(f"{where}: {errors[0]}"
                                 + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
        if stop.is_set():
            raise BandwidthError(f"{where}: stopped (job timeout or shutdown)")
        # capped before the warm-up ended: measure from the start rather than not at all
        window_start = warmup_end if len(measured) >= 2 else started
        try:
            return rate_after_warmup(samples, window_start)
        except BandwidthError as exc:
            raise BandwidthError(f"{where}: {exc}") from None

    def _download_stream(self, phase: Phase, done: threading.Event, tally: ByteTally) -> None:
        timeout = (CONNECT_TIMEOUT, phase.io_timeout)
        with self._session_factory() as session:
            while not done.is_set():
                with session.get(phase.url, stream=True, timeout=timeout, headers={
                        "Accept-Encoding": "identity", "Cache-Control": "no-cache"}) as response:
                    _check_status(response, "download")
                    expected = response.headers.get("Content-Length")
                    got = 0
                    for chunk in response.raw.stream(CHUNK, decode_content=False):
                        got += len(chunk)
                        tally.add("download", len(chunk))
                        if done.is_set():
                            return
                    if got == 0:
                        raise BandwidthError("download: empty response body")
                    if expected is not None and expected.isdigit() and got < int(expected):
                        raise BandwidthError(f"download: body truncated at {got} of "
                                             f"{expected} bytes")

    def _upload_stream(self, phase: Phase, done: threading.Event, tally: ByteTally) -> None:
        timeout = (CONNECT_TIMEOUT, phase.io_timeout)
        block = self._block

        def body() -> Iterator[bytes]:
            while not done.is_set():
                yield block
                # the caller asks for the next block only once this one was handed to the socket
                tally.add("upload", len(block))

        with self._session_factory() as session:
            while not done.is_set():
                response = session.post(phase.url, data=body(), timeout=timeout, headers={
                    "Content-Type": "application/octet-stream"})
                _check_status(response, "upload")
