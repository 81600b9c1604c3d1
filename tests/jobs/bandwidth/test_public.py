"""The cloudflare and librespeed backends, the fallback and the cross-check, against the
protocol stand-ins on loopback (tests/support/bandwidth_server.py in a thread)."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.config import ConfigError, parse
from monitor.configschema import ByteSize, Duration
from monitor.jobs.bandwidth.config import CloudflareConfig, HttpSpeedConfig, LibreSpeedConfig
from monitor.jobs.bandwidth.failures import failure_reason
from monitor.jobs.bandwidth.job import BandwidthJob
from monitor.jobs.bandwidth.metrics import BandwidthMetrics
from monitor.jobs.bandwidth.public import (
    CloudflareBackend,
    LibreSpeedBackend,
    LibreSpeedServer,
    absolute,
    nearest,
    parse_server_list,
)
from monitor.jobs.bandwidth.result import BandwidthError, ByteTally
from tests.support.bandwidth_server import Handler, Server, State

SHORT = HttpSpeedConfig(streams=2, duration=Duration(1), warmup=Duration(0),
                        max_bytes=ByteSize(60_000_000), io_timeout=Duration(3))


@pytest.fixture
def stand_in() -> Iterator[str]:
    server = Server(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    server.state = State("127.0.0.1", port, 2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def control(base: str, what: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{base}/{what}", timeout=5) as response:  # noqa: S310
        body = response.read()
    return json.loads(body) if what == "_stats" else {}


@pytest.mark.parametrize(("message", "reason"), [
    ("download 1.2.3.4: HTTP 403 Forbidden", "forbidden"),
    ("speedtest configuration (speedtest-config.php): HTTP Error 403: Forbidden", "forbidden"),
    ("download x: HTTP 429 Too Many Requests (rate limited; Retry-After 3600)", "rate_limited"),
    ("speedtest server selection: server 4242 did not answer latency.txt", "no_server"),
    ("librespeed: no server answered (of 12 in the list)", "no_server"),
    ("cannot connect to h:443: [Errno 111] Connection refused", "no_server"),
    ("download h: timed out (server stalled?): read timeout", "timeout"),
    ("download h: the URL returned an HTML page (a login or error page?)", "bad_response"),
    ("download h: body truncated at 5 of 9 bytes", "bad_response"),
    ("download h: body truncated at 403 of 429 bytes", "bad_response"),
    ("upload h: rejected by the server with HTTP 413 Payload Too Large", "rejected"),
    ("download h: HTTP 502 Bad Gateway", "http_error"),
    ("download h: connection reset mid-transfer", "connection"),
    ("download h: stopped (job timeout or shutdown)", "stopped"),
    ("something new", "other"),
])
def test_failure_reasons(message: str, reason: str):
    assert failure_reason(message) == reason


def test_server_list_parsing_keeps_usable_entries():
    servers = parse_server_list([
        {"name": "A", "server": "//a.example/backend", "dlURL": "garbage.php",
         "ulURL": "empty.php", "pingURL": "empty.php", "getIpURL": "getIP.php"},
        {"name": "B", "server": "http://b.example/", "dlURL": "g.php", "ulURL": "e.php",
         "pingURL": "e.php"},
        {"name": "no dlURL", "server": "http://c.example/", "ulURL": "e.php", "pingURL": "e"},
        {"name": "relative", "server": "c/", "dlURL": "g", "ulURL": "e", "pingURL": "e"},
        "junk",
    ])
    assert [(s.name, s.download, s.upload, s.ping) for s in servers] == [
        ("A", "https://a.example/backend/garbage.php", "https://a.example/backend/empty.php",
         "https://a.example/backend/empty.php"),
        ("B", "http://b.example/g.php", "http://b.example/e.php", "http://b.example/e.php")]
    assert absolute(" //x/ ") == "https://x/"
    with pytest.raises(BandwidthError, match="JSON array"):
        parse_server_list({"servers": []})


def test_nearest_is_the_lowest_round_trip_of_those_that_answer():
    servers = [LibreSpeedServer(n, f"http://{n}/", "", "", n) for n in ("far", "dead", "near")]
    rtts = {"far": 0.080, "dead": None, "near": 0.012}
    assert nearest(servers, lambda s: rtts[s.ping]).name == "near"
    with pytest.raises(BandwidthError, match="no server answered"):
        nearest(servers, lambda s: None)
    with pytest.raises(BandwidthError, match="no server in the server list"):
        nearest([], lambda s: 0.1)


def test_cloudflare_speaks_down_and_up_with_fixed_sizes(stand_in: str):
    backend = CloudflareBackend(CloudflareConfig(url=stand_in), SHORT)
    tally = ByteTally()
    result = backend.measure(threading.Event(), tally, None)
    assert result.backend == "cloudflare"
    assert result.server == stand_in.removeprefix("http://")
    assert result.download_bps
    assert result.download_bps > 0
    assert result.upload_bps
    assert result.upload_bps > 0
    stats = control(stand_in, "_stats")
    assert set(stats["requests"]) >= {"/__down", "/__up"}  # type: ignore[arg-type]
    # what the client counted is what the server read (uploads) / what it wrote (downloads)
    assert stats["upload_bytes"] == tally.get("upload")
    assert 0 < tally.get("download") <= stats["written"]  # type: ignore[operator]


@pytest.mark.parametrize("backend", ["cloudflare", "librespeed"])
def test_public_backends_keep_to_max_bytes(stand_in: str, backend: str):
    """Neither server honours Range and both take fixed-length upload bodies (25 and 20 MiB),
    yet each direction stops at its half of max_bytes."""
    capped = replace(SHORT, max_bytes=ByteSize(4_000_000), duration=Duration(3))
    measured = CloudflareBackend(CloudflareConfig(url=stand_in), capped) \
        if backend == "cloudflare" else \
        LibreSpeedBackend(LibreSpeedConfig(url=f"{stand_in}/backend"), capped)
    tally = ByteTally()
    measured.measure(threading.Event(), tally, None)
    for direction in ("download", "upload"):
        assert 1_000_000 < tally.get(direction) <= 2_000_000, direction
    assert control(stand_in, "_stats")["upload_bytes"] <= 2_000_000  # type: ignore[operator]


def test_librespeed_picks_the_listed_server_that_answers(stand_in: str):
    config = LibreSpeedConfig(server_list=f"{stand_in}/backend-servers/servers.php")
    backend = LibreSpeedBackend(config, SHORT)
    assert backend.choose().name == "Namespace B"  # 127.0.0.1:9 refuses
    result = backend.measure(threading.Event(), ByteTally(), None)
    assert result.backend == "librespeed"
    assert result.download_bps
    assert result.upload_bps
    requests = control(stand_in, "_stats")["requests"]
    assert requests["/backend/garbage.php"] >= 1  # type: ignore[index]
    assert requests["/backend/empty.php"] >= 1 + 3  # type: ignore[index]  # pings + uploads


def test_librespeed_own_server_and_no_server(stand_in: str):
    own = LibreSpeedBackend(LibreSpeedConfig(url=f"{stand_in}/backend"), SHORT)
    assert own.choose().download == f"{stand_in}/backend/garbage.php"
    control(stand_in, "_mode?set=403@librespeed")
    listed = LibreSpeedBackend(LibreSpeedConfig(
        server_list=f"{stand_in}/backend-servers/servers.php"), SHORT)
    with pytest.raises(BandwidthError) as failed:
        listed.measure(threading.Event(), ByteTally(), None)
    assert failure_reason(str(failed.value)) == "forbidden"  # the list itself answered 403


def make_job(tmp_path: Path, base: str, **bandwidth: object
             ) -> tuple[BandwidthJob, CollectorRegistry]:
    http = {"download_url": f"{base}/download", "upload_url": f"{base}/upload", "streams": 2,
            "duration": "1s", "warmup": "0s", "max_bytes": "60MB", "io_timeout": "3s"}
    config = parse({"jobs": {"latency": {"targets": [{"host": "10.0.0.1"}]},
                             "bandwidth": {"http": http, "cloudflare": {"url": base},
                                           "librespeed": {"url": f"{base}/backend/"}}
                             | bandwidth}}, "test.yml")
    registry = CollectorRegistry()
    job = BandwidthJob(config.jobs.bandwidth, BandwidthMetrics(registry), state_dir=tmp_path,
                       rtt_targets=config.jobs.latency.targets)
    return job, registry


def test_fallback_figure_comes_from_the_next_backend(tmp_path: Path, stand_in: str):
    job, registry = make_job(tmp_path, stand_in, backend="http",
                             fallback=["cloudflare", "librespeed"])
    get = registry.get_sample_value
    control(stand_in, "_mode?set=429@http")
    summary = job.run(threading.Event())
    assert summary["backend"] == "cloudflare"
    assert [(f["backend"], f["reason"]) for f in summary["failed_backends"]] == [
        ("http", "rate_limited")]
    assert get("homemon_bandwidth_backend_failures_total",
               {"backend": "http", "reason": "rate_limited"}) == 1
    labels = {"backend": "cloudflare", "server": stand_in.removeprefix("http://")}
    assert get("homemon_bandwidth_download_bits_per_second", labels) > 0
    for name in ("homemon_bandwidth_download_bits_per_second",
                 "homemon_bandwidth_upload_bits_per_second"):
        assert get(name, labels | {"backend": "http"}) is None  # no figure, no zero

    control(stand_in, "_mode?set=403")  # every family refuses now
    with pytest.raises(BandwidthError, match="every backend failed: http: .*403.*; "
                                             "cloudflare: .*403.*; librespeed: .*403"):
        job.run(threading.Event())
    for backend in ("http", "cloudflare", "librespeed"):
        assert get("homemon_bandwidth_backend_failures_total",
                   {"backend": backend, "reason": "forbidden"}) == 1


def test_cross_check_exports_the_ratio_on_its_schedule(tmp_path: Path, stand_in: str):
    job, registry = make_job(tmp_path, stand_in, backend="cloudflare",
                             cross_check={"backend": "librespeed", "interval": "1h"})
    get = registry.get_sample_value
    first = job.run(threading.Event())
    check = first["cross_check"]
    assert check["backend"] == "librespeed"
    for direction in ("download", "upload"):
        ratio = get("homemon_bandwidth_cross_check_ratio", {
            "direction": direction, "backend": "librespeed", "reference": "cloudflare"})
        assert ratio is not None
        assert ratio > 0
        assert ratio == pytest.approx(check[f"{direction}_ratio"], rel=1e-3)
        assert ratio == pytest.approx(check[f"{direction}_mbps"] / first[f"{direction}_mbps"],
                                      rel=1e-2)
    assert "cross_check" not in job.run(threading.Event())  # not due again within the hour


def test_backend_config_errors_name_the_key():
    with pytest.raises(ConfigError) as bad:
        parse({"jobs": {"bandwidth": {"backend": "cloudflare",
                                      "fallback": ["librespeed", "ookla"]}}}, "c.yml")
    assert "jobs.bandwidth.fallback[1]" in str(bad.value)
    with pytest.raises(ConfigError, match="fallback"):
        parse({"jobs": {"bandwidth": {"backend": "cloudflare",
                                      "fallback": ["cloudflare"]}}}, "c.yml")
    with pytest.raises(ConfigError, match="cross_check.backend"):
        parse({"jobs": {"bandwidth": {"backend": "speedtest",
                                      "cross_check": {"backend": "speedtest"}}}}, "c.yml")
    with pytest.raises(ConfigError, match="http"):
        parse({"jobs": {"bandwidth": {"fallback": ["http"]}}}, "c.yml")
    config = parse({"jobs": {"bandwidth": {"backend": "librespeed"}}}, "c.yml")
    assert config.jobs.bandwidth.cloudflare.url == "https://speed.cloudflare.com"
    assert config.jobs.bandwidth.librespeed.url is None


def test_no_cross_check_against_itself_after_a_fallback(tmp_path: Path, stand_in: str):
    job, registry = make_job(tmp_path, stand_in, backend="http", fallback=["cloudflare"],
                             cross_check={"backend": "cloudflare"})
    control(stand_in, "_mode?set=403@http")
    summary = job.run(threading.Event())
    assert summary["backend"] == "cloudflare"
    assert "cross_check" not in summary
    assert registry.get_sample_value("homemon_bandwidth_cross_check_ratio", {
        "direction": "download", "backend": "cloudflare", "reference": "cloudflare"}) is None
