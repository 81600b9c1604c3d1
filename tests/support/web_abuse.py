"""Clients that abuse an HTTP server on loopback: idle sockets, slow-header (slowloris)
clients, and the measures the tests and bench/web.py take while they are held open."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator


@contextlib.contextmanager
def idle_sockets(port: int, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections that never send a byte; closed on exit."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


@contextlib.contextmanager
def slow_clients(port: int, count: int, every: float = 0.5) -> Iterator[list[int]]:
    """`count` clients sending a request head one header line every `every` seconds, never
    finishing it; yields a one-item list with how many the server has closed so far."""
    stop = threading.Event()
    closed = [0]
    lock = threading.Lock()

    def dribble() -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                while not stop.wait(every):
                    sock.sendall(b"X-Slow: 1\r\n")
        except OSError:
            with lock:
                closed[0] += 1

    threads = [threading.Thread(target=dribble, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield closed
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)


def wait_all_closed(sockets: list[socket.socket], timeout: float) -> float:
    """Seconds until the server closed every socket (EOF or reset); TimeoutError if not."""
    started = time.monotonic()
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    left = len(sockets)
    try:
        while left:
            remaining = timeout - (time.monotonic() - started)
            if remaining <= 0:
                raise TimeoutError(f"{left} of {len(sockets)} sockets still open after "
                                   f"{timeout} s")
            for key, _ in selector.select(remaining):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(1024)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    selector.unregister(sock)
                    left -= 1
        return time.monotonic() - started
    finally:
        selector.close()


def latencies_ms(url: str, count: int, timeout: float = 10) -> list[float]:
    """Sequential GETs of `url`, each one's time in ms, sorted."""
    out = []
    for _ in range(count):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
        out.append((time.perf_counter() - started) * 1000)
    return sorted(out)


def p99(sorted_values: list[float]) -> float:
    return sorted_values[max(0, int(len(sorted_values) * 0.99) - 1)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
