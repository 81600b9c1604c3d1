"""The `cloudflare` and `librespeed` backends: public speed-test servers measured with the http
backend's engine (parallel streams, warm-up left out, loaded RTT, bytes counted, max_bytes).

Protocols, as upstream serves them:
- Cloudflare (github.com/cloudflare/speedtest, src/config/defaultConfig.ts and
  src/engines/BandwidthEngine): `GET <url>/__down?bytes=N` answers N bytes; `POST <url>/__up`
  takes a body of fixed length. Its request sizes run from 100 kB to 250 MB down, 50 MB up.
- LibreSpeed (github.com/librespeed/speedtest, backend/garbage.php, backend/empty.php and the
  client's defaults in speedtest_worker.js): `GET garbage.php?ckSize=100` streams 100 chunks of
  1 MiB (no Content-Length, flushed chunk by chunk); `POST empty.php` takes 20 MiB bodies and
  answers empty; `empty.php` is also the ping URL. The public server list is a JSON array of
  {name, server, dlURL, ulURL, pingURL, getIpURL, ...}; the client pings every server and
  takes the one with the lowest round trip.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import requests

from monitor.jobs.bandwidth.config import CloudflareConfig, HttpSpeedConfig, LibreSpeedConfig
from monitor.jobs.bandwidth.http import CONNECT_TIMEOUT, HttpBackend, server_label
from monitor.jobs.bandwidth.result import BandwidthError, BandwidthResult, ByteTally
from monitor.jobs.bandwidth.rtt import LoadedRttProbe

# one of upstream's request sizes; 100 MB requests have been seen refused with 403
CLOUDFLARE_DOWN_BYTES = 25_000_000
CLOUDFLARE_UP_BYTES = 25_000_000
LIBRESPEED_CHUNKS = 100  # garbagePhp_chunkSize: MiB per garbage.php request
LIBRESPEED_UP_BYTES = 20 * 1024 * 1024  # xhr_ul_blob_megabytes
PING_TRIES = 3
PING_PARALLEL = 16
# a dead server costs one timeout: the ~100 listed servers are done in ~15 s at worst
PING_TIMEOUT = 2.0
MAX_LIST_BYTES = 2_000_000


def _base(url: str) -> str:
    return url if url.endswith("/") else url + "/"


class CloudflareBackend:
    name = "cloudflare"

    def __init__(self, config: CloudflareConfig, http: HttpSpeedConfig) -> None:
        base = _base(config.url)
        self.engine = HttpBackend(
            replace(http, download_url=f"{base}__down?bytes={CLOUDFLARE_DOWN_BYTES}",
                    upload_url=f"{base}__up"),
            name=self.name, upload_body_bytes=CLOUDFLARE_UP_BYTES)

    def measure(self, stop: threading.Event, tally: ByteTally,
                probe: LoadedRttProbe | None) -> BandwidthResult:
        return self.engine.measure(stop, tally, probe)


@dataclass
class LibreSpeedServer:
    name: str
    base: str  # absolute, ends with "/"
    download: str
    upload: str
    ping: str


def absolute(server: str) -> str:
    """A list entry's `server` as an absolute base URL: the list writes most as `//host/path/`
    (the page's own scheme); without a page, that is HTTPS."""
    server = server.strip()
    if server.startswith("//"):
        server = "https:" + server
    return _base(server)


def parse_server_list(data: Any) -> list[LibreSpeedServer]:
    """The usable entries of a LibreSpeed server list; malformed ones are left out."""
    if not isinstance(data, list):
        raise BandwidthError("librespeed server list: expected a JSON array of servers")
    servers = []
    for entry in data:
        if not isinstance(entry, dict):
            continue
        fields = [entry.get(key) for key in ("server", "dlURL", "ulURL", "pingURL")]
        if not all(isinstance(value, str) and value for value in fields):
            continue
        server, download, upload, ping = (str(value) for value in fields)
        base = absolute(server)
        if not base.startswith(("http://", "https://")):
            continue
        servers.append(LibreSpeedServer(str(entry.get("name") or base), base, base + download,
                                        base + upload, base + ping))
    return servers


def server_at(url: str) -> LibreSpeedServer:
    """The user's own server: the backend folder at `url` with upstream's file names."""
    base = _base(url)
    return LibreSpeedServer(server_label(url), base, base + "garbage.php", base + "empty.php",
                            base + "empty.php")


def nearest(servers: Sequence[LibreSpeedServer],
            ping: Callable[[LibreSpeedServer], float | None]) -> LibreSpeedServer:
    """The server with the lowest round trip; servers that did not answer are left out."""
    if not servers:
        raise BandwidthError("librespeed: no server in the server list")
    with ThreadPoolExecutor(max_workers=min(PING_PARALLEL, len(servers))) as pool:
        rtts = list(pool.map(ping, servers))
    answered = [(rtt, i) for i, rtt in enumerate(rtts) if rtt is not None]
    if not answered:
        raise BandwidthError(f"librespeed: no server answered (of {len(servers)} in the list)")
    return servers[min(answered)[1]]


def http_ping(server: LibreSpeedServer, timeout: float = PING_TIMEOUT) -> float | None:
    """Median time of PING_TRIES GETs of the ping URL; None if any fails."""
    samples = []
    with requests.Session() as session:
        for _ in range(PING_TRIES):
            started = time.perf_counter()
            try:
                response = session.get(server.ping, timeout=timeout,
                                       headers={"Cache-Control": "no-cache"})
            except requests.RequestException:
                return None
            if not response.ok:
                return None
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def fetch_server_list(url: str, timeout: float = CONNECT_TIMEOUT) -> list[LibreSpeedServer]:
    try:
        with requests.get(url, timeout=timeout, stream=True) as response:
            if not response.ok:
                raise BandwidthError(f"librespeed server list {server_label(url)}: HTTP "
                                     f"{response.status_code} {response.reason}")
            body = response.raw.read(MAX_LIST_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise BandwidthError(f"librespeed server list {server_label(url)}: no server: "
                             f"{exc}") from exc
    if len(body) > MAX_LIST_BYTES:
        raise BandwidthError("librespeed server list: larger than 2 MB")
    try:
        return parse_server_list(json.loads(body))
    except ValueError as exc:
        raise BandwidthError(f"librespeed server list: malformed JSON ({exc})") from exc


class LibreSpeedBackend:
    name = "librespeed"

    def __init__(self, config: LibreSpeedConfig, http: HttpSpeedConfig, *,
                 ping: Callable[[LibreSpeedServer], float | None] = http_ping) -> None:
        self.config = config
        self.http = http
        self.ping = ping

    def choose(self) -> LibreSpeedServer:
        if self.config.url:
            return server_at(self.config.url)
        return nearest(fetch_server_list(self.config.server_list), self.ping)

    def measure(self, stop: threading.Event, tally: ByteTally,
                probe: LoadedRttProbe | None) -> BandwidthResult:
        server = self.choose()
        engine = HttpBackend(replace(self.http, download_url=f"{server.download}?ckSize="
                                     f"{LIBRESPEED_CHUNKS}", upload_url=server.upload),
                             name=self.name, upload_body_bytes=LIBRESPEED_UP_BYTES)
        return engine.measure(stop, tally, probe)
