"""The `http` backend: user-chosen URLs, parallel streams, a discarded warm-up, time-bounded.

Each direction runs `streams` connections at once. The first `warmup` seconds (TCP slow start,
connection set-up) are moved but not measured; the rate is the bytes moved after the warm-up
divided by the time since. A direction ends at `duration` after the warm-up, earlier once three
consecutive one-second rates agree within 2 %, and always before it moves its share of
`max_bytes`: each stream checks the shared count after every 64 KiB, and a download asks
only for what is left (`Range: bytes=0-N`, honoured by file servers; the stream stops reading
either way), so the bytes moved stay within a few chunks of the cap, not 0.1 s of line rate.
Upload bodies are generated chunk by chunk (chunked transfer encoding) from one
64 KiB block, so memory does not grow with the size of the test; the upload rate counts
the bytes the receiver acknowledged (bytes written minus the socket's unacknowledged queue),
not the bytes handed to a growing send buffer.
"""

from __future__ import annotations

import fcntl
import http.client
import os
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
import urllib3

from monitor.errors import describe
from monitor.jobs.bandwidth.config import HttpSpeedConfig
from monitor.jobs.bandwidth.result import BandwidthError, BandwidthResult, ByteTally
from monitor.jobs.bandwidth.rtt import LoadedRttProbe, tcp_connect_rtt

CHUNK = 64 * 1024
MIN_PIECE = 1024  # the smallest read or upload frame near the max_bytes cap
READ_WAIT = 0.01  # a stream with nothing left to read waits this long for the others' reads
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
    text = str(exc)
    if isinstance(exc, urllib3.exceptions.ProtocolError | requests.exceptions.ChunkedEncodingError):
        if "IncompleteRead" in text:
            return f"body truncated: the server closed the connection early ({text})"
        if "reset" in text.lower():
            return f"connection reset mid-transfer ({text})"
    if isinstance(exc, requests.Timeout | urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return f"timed out (server stalled?): {exc}"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"body cut short (truncated or connection reset): {exc}"
    if isinstance(exc, requests.ConnectionError):
        return f"connection failed or reset: {exc}"
    return describe(exc)


class ByteCap:
    """A phase's share of `max_bytes`, shared by its streams (they check it per chunk)."""

    def __init__(self, tally: ByteTally, direction: str, cap: int,
                 clock: Callable[[], float]) -> None:
        self.tally, self.direction, self.cap, self._clock = tally, direction, cap, clock
        self._base = tally.get(direction)
        self.reached_at: float | None = None  # when a stream saw the cap reached
        self._claimed = 0  # bytes asked for in download ranges, so together they fit the cap
        self._reading = 0  # bytes of download reads in progress, not in the tally yet
        self._lock = threading.Lock()

    def claim(self, streams: int, most: int | None = None) -> int:
        """Bytes one request (or upload frame, `most`=CHUNK) may move: a share of what no
        other has claimed yet, at least a chunk; 0 when the cap is taken."""
        with self._lock:
            free = self.cap - self._claimed
            if free <= 0:
                return 0
            size = max(min(free, CHUNK), free // streams)
            if most is not None:
                size = min(size, most)
            self._claimed += size
            return size

    def release(self, unused: int) -> None:
        """Give back what a request asked for but did not receive."""
        with self._lock:
            self._claimed -= max(0, unused)

    @contextmanager
    def read(self, streams: int) -> Iterator[int]:
        """How much one of `streams` streams reads next, reserved until the read is counted:
        a whole chunk while far from the cap, its share of what is neither moved nor being
        read near it, 0 when the reads in progress take the rest. Without the reservation,
        streams reading a server that ignores Range overshoot by a chunk each."""
        with self._lock:
            free = self.remaining() - self._reading
            size = 0 if free <= 0 else min(CHUNK, max(MIN_PIECE, free // streams), free)
            self._reading += size
        try:
            yield size
        finally:
            with self._lock:
                self._reading -= size

    def remaining(self) -> int:
        left = self.cap - (self.tally.get(self.direction) - self._base)
        if left <= 0 and self.reached_at is None:
            self.reached_at = self._clock()
        return left


@dataclass
class Phase:
    direction: str
    url: str
    streams: int
    warmup: float
    duration: float
    cap_bytes: int
    io_timeout: float


def _phase_rate(phase: Phase, stop: threading.Event, errors: list[str],
                samples: list[tuple[float, int]], measured: list[tuple[float, int]],
                started: float) -> float:
    """The phase's rate after its warm-up, or BandwidthError naming the phase's failure."""
    where = f"{phase.direction} {server_label(phase.url)}"
    if errors:
        raise BandwidthError(f"{where}: {errors[0]}"
                             + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
    if stop.is_set():
        raise BandwidthError(f"{where}: stopped (job timeout or shutdown)")
    # capped before the warm-up ended: measure from the start rather than not at all
    window_start = started + phase.warmup if len(measured) >= 2 else started
    try:
        return rate_after_warmup(samples, window_start)
    except BandwidthError as exc:
        raise BandwidthError(f"{where}: {exc}") from None


class HttpBackend:
    """Also the engine of the cloudflare and librespeed backends (see public.py): they give it
    their URLs, their `name` and, as their servers expect, a fixed `upload_body_bytes` per POST
    (Content-Length) instead of one endless chunked body."""

    def __init__(self, config: HttpSpeedConfig, *, name: str = "http",
                 upload_body_bytes: int | None = None, session_factory: SessionFactory =
                 requests.Session, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.name = name
        self.upload_body_bytes = upload_body_bytes
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
        """Run the phase's streams until they are done and return its rate (bytes/s)."""
        done = threading.Event()
        errors: list[str] = []
        uploads: list[_SentBytes] = []
        base = tally.get(phase.direction)
        cap = ByteCap(tally, phase.direction, phase.cap_bytes, self._clock)

        def moved() -> int:
            if phase.direction == "download":
                return tally.get("download") - base
            return sum(stream.acked() for stream in list(uploads))

        def guarded() -> None:
            try:
                if phase.direction == "download":
                    self._download_stream(phase, done, tally, cap)
                else:
                    self._upload_stream(phase, done, tally, uploads, cap)
            except Exception as exc:  # noqa: BLE001 - reported as the phase's failure
                # also after `done`: a read still blocked at the end is a stalled server
                errors.append(_describe(exc))
                done.set()

        threads = [threading.Thread(target=guarded, name=f"bw-{phase.direction}-{i}",
                                    daemon=True) for i in range(phase.streams)]
        started = self._clock()
        for thread in threads:
            thread.start()
        samples, measured = self._sample(phase, stop, started, moved, errors, cap)
        done.set()
        for thread in threads:
            thread.join(phase.io_timeout + CONNECT_TIMEOUT)
        return _phase_rate(phase, stop, errors, samples, measured, started)

    def _sample(self, phase: Phase, stop: threading.Event, started: float,
                moved: Callable[[], int], errors: list[str], cap: ByteCap
                ) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
        """(time, bytes moved) every SAMPLE_INTERVAL, all of them and those after the warm-up,
        until a stream fails, the job is stopped, the time or byte cap is reached, or the rate
        after the warm-up is stable."""
        warmup_end = started + phase.warmup
        deadline = warmup_end + phase.duration
        samples: list[tuple[float, int]] = [(started, 0)]
        measured: list[tuple[float, int]] = []
        while True:
            stop.wait(SAMPLE_INTERVAL)
            now, count = self._clock(), moved()
            if cap.reached_at is not None:  # the streams stopped then, not at this sample
                now = max(samples[-1][0], min(now, cap.reached_at))
            samples.append((now, count))
            if now >= warmup_end:
                measured.append((now, count))
            if (errors or stop.is_set() or now >= deadline or cap.remaining() <= 0
                    or (now - warmup_end >= min(MIN_MEASURED, phase.duration)
                        and is_stable(measured))):
                return samples, measured

    def _download_stream(self, phase: Phase, done: threading.Event, tally: ByteTally,
                         cap: ByteCap) -> None:
        timeout = (CONNECT_TIMEOUT, phase.io_timeout)
        with self._session_factory() as session:
            while not done.is_set():
                if cap.remaining() <= 0:
                    done.set()
                    return
                share = cap.claim(phase.streams)
                if share <= 0:
                    return  # the other streams' requests take the rest of the cap
                got = 0
                try:
                    got = self._download_range(phase, session, timeout, share, done, tally, cap)
                finally:
                    cap.release(share - got)

    def _download_range(self, phase: Phase, session: requests.Session,
                        timeout: tuple[float, float], share: int, done: threading.Event,
                        tally: ByteTally, cap: ByteCap) -> int:
        """One request for up to `share` bytes (a server that ignores Range sends more, and
        is read only up to the cap); returns the bytes received."""
        got = 0
        with session.get(phase.url, stream=True, timeout=timeout, headers={
                "Accept-Encoding": "identity", "Cache-Control": "no-cache",
                "Range": f"bytes=0-{share - 1}"}) as response:
            _check_status(response, "download")
            if response.headers.get("Content-Type", "").startswith("text/html"):
                raise BandwidthError("download: the URL returned an HTML page (a login "
                                     "or error page?), not test data")
            expected = response.headers.get("Content-Length")
            while True:
                with cap.read(phase.streams) as size:
                    chunk = response.raw.read(size, decode_content=False) if size else None
                    if chunk:
                        got += len(chunk)
                        tally.add("download", len(chunk))
                if chunk == b"":
                    break
                if done.is_set():
                    return got
                if cap.remaining() <= 0:
                    done.set()
                    return got
                if chunk is None:  # another stream's read takes the rest; it may fail
                    done.wait(READ_WAIT)
            if got == 0:
                raise BandwidthError("download: empty response body")
            if expected is not None and expected.isdigit() and got < int(expected):
                raise BandwidthError(f"download: body truncated at {got} of {expected} bytes")
        return got

    def _upload_stream(self, phase: Phase, done: threading.Event, tally: ByteTally,
                       progress: list[_SentBytes], cap: ByteCap) -> None:
        parts = urlsplit(phase.url)
        https = parts.scheme == "https"
        connection_class = http.client.HTTPSConnection if https else http.client.HTTPConnection
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        frame = b"%x\r\n" % len(self._block) + self._block + b"\r\n"
        fixed = self.upload_body_bytes
        while not done.is_set():
            connection = connection_class(parts.hostname or "", parts.port,
                                          timeout=phase.io_timeout)
            try:
                connection.putrequest("POST", target, skip_accept_encoding=True)
                connection.putheader("Content-Type", "application/octet-stream")
                if fixed is None:
                    connection.putheader("Transfer-Encoding", "chunked")
                else:
                    connection.putheader("Content-Length", str(fixed))
                connection.endheaders()
                sent = _SentBytes(connection.sock)
                progress.append(sent)
                try:
                    if fixed is None:
                        self._send_chunked(connection, frame, phase, done, tally, sent, cap)
                    elif not self._send_fixed(connection, fixed, phase, done, tally, sent, cap):
                        sent.finish()
                        return  # the phase ended mid-body: drop it, as a browser would
                except OSError as exc:
                    sent.finish()
                    raise BandwidthError(_refusal(connection, exc)) from exc
                response = connection.getresponse()
                response.read(4096)
                # only now: a finished body's unacknowledged tail must not count before then
                sent.finish()
                if not 200 <= response.status < 300:
                    raise BandwidthError(f"upload: HTTP {response.status} {response.reason}")
            finally:
                connection.close()


    @staticmethod
    def _send_chunked(connection: http.client.HTTPConnection, frame: bytes, phase: Phase,
                      done: threading.Event, tally: ByteTally, sent: _SentBytes,
                      cap: ByteCap) -> None:
        """One chunked body, frame by frame, until the phase ends or its cap is taken."""
        block = frame[frame.index(b"\r\n") + 2:-2]
        while not done.is_set():
            size = cap.claim(phase.streams, most=CHUNK)
            if size <= 0:
                done.set()
                break
            piece = frame if size == CHUNK else b"%x\r\n" % size + block[:size] + b"\r\n"
            connection.send(piece)
            sent.sent += len(piece)
            tally.add("upload", size)
            cap.remaining()  # notes when the cap was reached
        connection.send(b"0\r\n\r\n")

    def _send_fixed(self, connection: http.client.HTTPConnection, length: int, phase: Phase,
                    done: threading.Event, tally: ByteTally, sent: _SentBytes,
                    cap: ByteCap) -> bool:
        """One body of `length` bytes (Content-Length); False if the phase ended or the cap
        was taken before all of it was sent."""
        left = length
        while left and not done.is_set():
            size = cap.claim(phase.streams, most=min(CHUNK, left))
            if size <= 0:
                done.set()
                break
            connection.send(self._block[:size])
            sent.sent += size
            tally.add("upload", size)
            cap.remaining()
            left -= size
        return not left


class _SentBytes:
    """Bytes of one upload connection the receiver has acknowledged: bytes written minus the
    socket's unacknowledged queue (SIOCOUTQ). Counting bytes written alone would count the
    growing send buffer as throughput and read several per cent high on a shaped link."""

    def __init__(self, sock: socket.socket | None) -> None:
        self.sock = sock
        self.sent = 0
        self.done = False

    def finish(self) -> None:
        self.done = True

    def acked(self) -> int:
        sock = self.sock
        if self.done or sock is None:
            return self.sent
        try:
            queued: int = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ,
                                                     b"\0" * 4))[0]
        except (OSError, ValueError):
            return self.sent  # not Linux, or closed meanwhile: count what was written
        return self.sent - queued


def _refusal(connection: http.client.HTTPConnection, exc: OSError) -> str:
    """The server may have answered (413, 403 ...) before dropping the body: say so."""
    try:
        response = connection.getresponse()
    except (OSError, http.client.HTTPException):
        return f"upload: rejected or dropped by the server (connection reset while sending: {exc})"
    return f"upload: rejected by the server with HTTP {response.status} {response.reason}"
