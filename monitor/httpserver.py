"""An HTTP/1.0 server that idle, slow or numerous clients cannot stall.

One event-loop thread accepts connections, reads each request head and writes each response
without blocking; only a complete head is handed to a small pool of worker threads, which run
a stdlib `BaseHTTPRequestHandler` on it into a buffer (no network I/O in a worker). So:

- a client that sends nothing, or its head a byte at a time, holds a socket but no thread, and
  is dropped `read_timeout` seconds after it connected (slowloris);
- a client that does not read its response holds no thread either, and is dropped when
  `write_timeout` seconds pass without a byte sent, or at the latest `write_timeout` plus the
  time the response takes at `MIN_WRITE_RATE` (a month's CSV report is ~12 MB);
- at most `max_connections` sockets are open; a new connection at the cap closes the oldest
  one that has not sent a complete request yet (so a scrape gets through a flood of idle
  sockets) and, when every open one is being served, waits in the listen backlog;
- when accept() fails for lack of file descriptors, the oldest waiting connection is closed
  and accepting pauses briefly instead of spinning on a listen socket that stays readable.

TLS (an `ssl.SSLContext`) is handshaken in the event loop too, under the same deadline.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import io
import ipaddress
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.logs import event

log = logging.getLogger("monitor.web")

READ_TIMEOUT = 5.0  # seconds from connect to a complete request head
WRITE_TIMEOUT = 10.0  # seconds a response may go without progress (and its base allowance)
MIN_WRITE_RATE = 125_000  # bytes/s: 1 Mbit/s, the slowest client a large response waits for
MAX_CONNECTIONS = 128
BACKLOG = 128
WORKERS = 4
MAX_HEAD_BYTES = 16 * 1024
ACCEPT_PAUSE = 0.2  # seconds without accept() after the descriptors ran out
_FD_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


@dataclass
class HeadRequest:
    """What a handler gets as its `request`: the socket, the head already read, and (once
    the handler is done) the response it wrote, which the event loop sends."""

    sock: socket.socket
    head: bytes
    response: bytes = b""


class BufferedRequestHandler(BaseHTTPRequestHandler):
    """A stdlib handler whose request head the server's event loop has already read."""

    def setup(self) -> None:
        request: HeadRequest = self.request
        self.connection = request.sock
        self.rfile = io.BytesIO(request.head)
        self._response = io.BytesIO()
        self.wfile = self._response

    def finish(self) -> None:
        request: HeadRequest = self.request
        request.response = self._response.getvalue()
        self.wfile.close()
        self.rfile.close()


@dataclass
class _Waiting:
    """A connection whose request head is not complete yet."""

    sock: socket.socket
    peer: tuple[str, int]
    deadline: float
    handshaking: bool
    head: bytearray = field(default_factory=bytearray)


@dataclass
class _Writing:
    """A connection whose response is being sent."""

    sock: socket.socket
    data: memoryview
    deadline: float  # the whole response sent by then
    stalled_at: float  # no byte sent since, by then: dropped
    sent: int = 0

    @property
    def expires(self) -> float:
        return min(self.deadline, self.stalled_at)


def listen_socket(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A non-blocking listening socket for the parsed address; `::` also takes IPv4 where the
    OS allows (dual stack)."""
    family, _, _, _, sockaddr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and _unspecified(host):
            with contextlib.suppress(OSError):  # an IPv6-only OS: listen on IPv6 alone
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(sockaddr)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


class HttpServer:
    """Serves `handler` (a BufferedRequestHandler subclass) on `address`; see the module doc."""

    def __init__(self, address: tuple[str, int], handler: type[BufferedRequestHandler], *,
                 tls: ssl.SSLContext | None = None, read_timeout: float = READ_TIMEOUT,
                 write_timeout: float = WRITE_TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS, workers: int = WORKERS) -> None:
        self.handler = handler
        self.tls = tls
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.max_connections = max_connections
        self.listener = listen_socket(*address)
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._waiting: dict[socket.socket, _Waiting] = {}  # oldest first
        self._writing: dict[socket.socket, _Writing] = {}  # oldest first
        self._answered: collections.deque[HeadRequest] = collections.deque()  # from workers
        self._busy = 0  # connections handed to workers or being answered
        self._busy_lock = threading.Lock()
        self._accepting = False
        self._resume_accept_at = 0.0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="http-worker")
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="http", daemon=True)
        self.dropped = {"read_timeout": 0, "write_timeout": 0, "evicted": 0, "fd_exhausted": 0}

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def start(self) -> None:
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._set_accepting(True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake()
        if self._thread.is_alive():
            self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        for sock in [*self._waiting, *self._writing]:
            sock.close()
        self._waiting.clear()
        self._writing.clear()
        self._selector.close()
        self.listener.close()
        self._wake_read.close()
        self._wake_write.close()

    # --- the event loop ----------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(self._next_timeout()):
                if key.fileobj is self.listener:
                    self._accept()
                elif key.fileobj is self._wake_read:
                    self._drain_wake()
                    self._start_answers()
                elif isinstance(key.data, _Writing):
                    self._write(key.data)
                else:
                    self._read(key.data)
            self._expire(time.monotonic())
            self._update_accepting()

    def _next_timeout(self) -> float:
        now = time.monotonic()
        soonest = now + 1.0
        if self._waiting:
            soonest = min(soonest, next(iter(self._waiting.values())).deadline)
        if self._writing:  # at most max_connections: a scan is cheap
            soonest = min(soonest, min(w.expires for w in self._writing.values()))
        if not self._accepting and self._resume_accept_at:
            soonest = min(soonest, self._resume_accept_at)
        return max(0.0, soonest - now)

    def _open_count(self) -> int:
        with self._busy_lock:
            return len(self._waiting) + self._busy

    def _accept(self) -> None:
        for _ in range(64):  # a bounded batch, then the other sockets get a turn
            if self._open_count() >= self.max_connections and not self._evict_oldest("evicted"):
                self._set_accepting(False)  # all open ones are being served: use the backlog
                return
            try:
                sock, peer = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in _FD_EXHAUSTED:
                    self._out_of_descriptors()
                return  # ECONNABORTED and the like: the client gave up; nothing to do
            self._admit(sock, peer)

    def _admit(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        sock.setblocking(False)
        handshaking = False
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(sock, server_side=True,
                                            do_handshake_on_connect=False)
            except (OSError, ssl.SSLError):
                sock.close()
                return
            handshaking = True
        waiting = _Waiting(sock, peer, time.monotonic() + self.read_timeout, handshaking)
        self._waiting[sock] = waiting
        self._selector.register(sock, selectors.EVENT_READ, waiting)

    def _out_of_descriptors(self) -> None:
        """Free a descriptor held by the oldest client that has not sent a request yet, so the
        next accept() works; with none to free, stop polling accept() for a moment: the
        listen socket stays readable, and retrying at once would spin a core."""
        self.dropped["fd_exhausted"] += 1
        if self.dropped["fd_exhausted"] == 1:
            event(log, logging.WARNING, "out of file descriptors; dropping the oldest waiting "
                  "connections, pausing accept when there is none")
        if self._evict_oldest("evicted"):
            return
        self._set_accepting(False)
        self._resume_accept_at = time.monotonic() + ACCEPT_PAUSE

    def _evict_oldest(self, reason: str) -> bool:
        if not self._waiting:
            return False
        self._close_waiting(next(iter(self._waiting.values())), reason)
        return True

    def _read(self, waiting: _Waiting) -> None:
        sock = waiting.sock
        if waiting.handshaking and not self._handshake(waiting):
            return
        try:
            data = sock.recv(65536)
            while isinstance(sock, ssl.SSLSocket) and sock.pending() and \
                    len(data) < MAX_HEAD_BYTES:
                data += sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError:
            self._close_waiting(waiting, "")
            return
        if not data:
            self._close_waiting(waiting, "")
            return
        start = max(0, len(waiting.head) - 3)
        waiting.head += data
        if b"\r\n\r\n" in waiting.head[start:] or b"\n\n" in waiting.head[start:]:
            self._dispatch(waiting)
        elif len(waiting.head) > MAX_HEAD_BYTES:
            self._close_waiting(waiting, "")

    def _handshake(self, waiting: _Waiting) -> bool:
        sock = waiting.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._selector.modify(sock, selectors.EVENT_READ, waiting)
            return False
        except ssl.SSLWantWriteError:
            self._selector.modify(sock, selectors.EVENT_WRITE, waiting)
            return False
        except (OSError, ssl.SSLError):
            self._close_waiting(waiting, "")  # not TLS, or a certificate the client refused
            return False
        waiting.handshaking = False
        self._selector.modify(sock, selectors.EVENT_READ, waiting)
        return True

    def _dispatch(self, waiting: _Waiting) -> None:
        self._selector.unregister(waiting.sock)
        with self._busy_lock:
            del self._waiting[waiting.sock]
            self._busy += 1
        request = HeadRequest(waiting.sock, bytes(waiting.head))
        self._pool.submit(self._serve, request, waiting.peer)

    def _serve(self, request: HeadRequest, peer: tuple[str, int]) -> None:
        """In a worker: build the response into `request.response`; the loop sends it."""
        try:
            self.handler(request, peer, self)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - one broken request must not end the worker
            event(log, logging.WARNING, "HTTP request failed", error=repr(exc)[:200])
        finally:
            self._answered.append(request)
            self._wake()

    def _start_answers(self) -> None:
        while self._answered:
            request = self._answered.popleft()
            if not request.response:
                self._finish_writing(request.sock)
                continue
            now = time.monotonic()
            allowed = self.write_timeout + len(request.response) / MIN_WRITE_RATE
            writing = _Writing(request.sock, memoryview(request.response), now + allowed,
                               now + self.write_timeout)
            self._writing[request.sock] = writing
            self._selector.register(request.sock, selectors.EVENT_WRITE, writing)
            self._write(writing)

    def _write(self, writing: _Writing) -> None:
        try:
            writing.sent += writing.sock.send(writing.data[writing.sent:])
            writing.stalled_at = time.monotonic() + self.write_timeout
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return
        except OSError:
            self._finish_writing(writing.sock)
            return
        if writing.sent >= len(writing.data):
            self._finish_writing(writing.sock)

    def _finish_writing(self, sock: socket.socket, reason: str = "") -> None:
        if reason:
            self.dropped[reason] += 1
        if self._writing.pop(sock, None) is not None:
            self._selector.unregister(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)  # a FIN after the response, as socketserver does
        _close(sock)
        with self._busy_lock:
            self._busy -= 1

    def _expire(self, now: float) -> None:
        while self._waiting:
            oldest = next(iter(self._waiting.values()))
            if oldest.deadline > now:
                break
            self._close_waiting(oldest, "read_timeout")
        # deadlines grow with the response's size, so they are not in the order of insertion
        for late in [w for w in self._writing.values() if w.expires <= now]:
            self._finish_writing(late.sock, "write_timeout")

    def _close_waiting(self, waiting: _Waiting, reason: str) -> None:
        if reason:
            self.dropped[reason] += 1
        self._selector.unregister(waiting.sock)
        with self._busy_lock:
            del self._waiting[waiting.sock]
        _close(waiting.sock)

    def _update_accepting(self) -> None:
        if self._accepting or self._stopping.is_set():
            return
        if self._resume_accept_at and time.monotonic() < self._resume_accept_at:
            return
        if self._open_count() < self.max_connections or self._waiting:
            self._resume_accept_at = 0.0
            self._set_accepting(True)

    def _set_accepting(self, on: bool) -> None:
        if on and not self._accepting:
            self._selector.register(self.listener, selectors.EVENT_READ)
        elif not on and self._accepting:
            self._selector.unregister(self.listener)
        self._accepting = on

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (the loop will wake) or closed (stopping)
            self._wake_write.send(b"\0")

    def _drain_wake(self) -> None:
        try:
            while self._wake_read.recv(4096):
                pass
        except OSError:
            return


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


class DroppedConnectionsCollector(Collector):
    """`homemon_http_connections_dropped_total{reason}` from the server's own counts."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "homemon_http_connections_dropped", "HTTP connections the daemon closed without "
            "an answer: read_timeout (no complete request in time), write_timeout (response "
            "not read in time), evicted (oldest waiting one, at the connection cap or out of "
            "file descriptors), fd_exhausted (accept() failed for lack of descriptors)",
            labels=["reason"])
        for reason, count in self.server.dropped.items():
            family.add_metric([reason], count)
        return [family]
