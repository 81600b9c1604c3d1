"""The bandwidth job against real servers in a namespace pair, iperf3 as ground truth."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.bandwidth_env import (
    bandwidth_config,
    iperf3_mbps,
    run_job,
    sample,
    start_server,
)
from tests.support.netns import NetnsPair
from tests.support.procs import daemon, free_port, minimal_config, wait_until, write_config

GAUGES = ("homemon_bandwidth_download_bits_per_second",
          "homemon_bandwidth_upload_bits_per_second", "homemon_bandwidth_latency_seconds")


def assert_within(reported: float, truth: float, tolerance: float, what: str) -> None:
    assert abs(reported / truth - 1) <= tolerance, (
        f"{what}: reported {reported:.2f} vs iperf3 {truth:.2f} Mbit/s "
        f"({(reported / truth - 1) * 100:+.1f} %, allowed ±{tolerance * 100:.0f} %)")


def assert_no_zero_gauges(result: dict) -> None:
    for item in result["samples"]:
        if item["name"] in GAUGES:
            assert item["value"] > 0, f"{item} exported as 0"


@pytest.mark.parametrize(("down", "up"), [(40, 20), (200, 100)])
def test_http_backend_matches_iperf3_counts_bytes_and_shows_bufferbloat(tmp_path: Path,
                                                                        down: int, up: int):
    with NetnsPair("bwh") as pair:
        pair.shape("b", down)  # leaves b: a's download; tbf queue 50 ms deep
        pair.shape("a", up)
        base = start_server(pair)
        # Both sides measure ~3 s windows (the job stops once its rate is stable), whose spread
        # on a 20 Mbit/s bucket reaches ±5 % now and then (a full CI run saw -5.1 %): a pair
        # outside the tolerance is measured once more, ground truth included, and the second
        # pair must hold. A systematic error fails both.
        for attempt in (1, 2):
            truth_down = iperf3_mbps(pair, download=True)
            truth_up = iperf3_mbps(pair, download=False)
            config = bandwidth_config(tmp_path / f"c{attempt}.yml", tmp_path / "state", base,
                                      pair.ip_b)
            result = run_job(pair, config, ["ok"], control=base)
            summary = result["runs"][0]["summary"] or {}
            if all(abs((summary.get(f"{d}_mbps") or 0) / truth - 1) <= 0.05
                   for d, truth in (("download", truth_down), ("upload", truth_up))):
                break
            print(f"attempt {attempt}: {summary.get('download_mbps')} / "
                  f"{summary.get('upload_mbps')} vs iperf3 {truth_down:.2f} / {truth_up:.2f}")

    run = result["runs"][0]
    assert run["result"] == "success", run["error"]
    assert_within(run["summary"]["download_mbps"], truth_down, 0.05, "download")
    assert_within(run["summary"]["upload_mbps"], truth_up, 0.05, "upload")
    # Done 2: what we count is what the server saw
    for direction, seen in (("download", run["server"]["download_bytes"]),
                            ("upload", run["server"]["upload_bytes"])):
        counted = sample(result, "homemon_bandwidth_bytes_total", direction=direction)
        assert seen > 1_000_000
        assert abs(counted / seen - 1) <= 0.01, f"{direction}: counted {counted}, server {seen}"
    # Done 5: the saturated tbf queue shows in RTT measured during the load
    idle = sample(result, "homemon_bandwidth_idle_rtt_seconds")
    assert idle is not None
    for direction in ("download", "upload"):
        loaded = sample(result, "homemon_bandwidth_loaded_rtt_seconds", direction=direction)
        assert loaded is not None
        assert loaded > idle + 0.002, (direction, loaded, idle)


def test_speedtest_backend_through_proxy_matches_iperf3(tmp_path: Path):
    with NetnsPair("bws") as pair:
        pair.shape("b", 40)
        pair.shape("a", 20)
        base = start_server(pair, testlength=6)
        truth_down = iperf3_mbps(pair, download=True)
        truth_up = iperf3_mbps(pair, download=False)
        # http_proxy points at the stand-in; speedtest.net itself is never contacted
        config = bandwidth_config(tmp_path / "c.yml", tmp_path / "state", base, pair.ip_b,
                                  backend="speedtest")
        result = run_job(pair, config, ["ok"], control=base, proxy=base)

    run = result["runs"][0]
    assert run["result"] == "success", run["error"]
    assert run["summary"]["server"] == "4242"
    assert_within(run["summary"]["download_mbps"], truth_down, 0.10, "download")
    assert_within(run["summary"]["upload_mbps"], truth_up, 0.10, "upload")
    for direction, seen in (("download", run["server"]["download_bytes"]),
                            ("upload", run["server"]["upload_bytes"])):
        counted = sample(result, "homemon_bandwidth_bytes_total", direction=direction)
        assert abs(counted / seen - 1) <= 0.01, f"{direction}: counted {counted}, server {seen}"


HTTP_BAD = {"403": "HTTP 403", "429": "HTTP 429", "html": "HTML page",
            "truncated": "truncated", "reset": "reset", "reject_upload": "rejected",
            "stall": "timed out"}
SPEEDTEST_BAD = {"403": "403", "429": "429", "html": "HTML page", "malformed": "Malformed",
                 "truncated": "truncated", "reset": "reset", "reject_upload": "rejected"}


@pytest.mark.parametrize(("backend", "expected"), [("http", HTTP_BAD),
                                                   ("speedtest", SPEEDTEST_BAD)])
def test_bad_servers_are_counted_failures_without_zeros(tmp_path: Path, backend: str,
                                                        expected: dict[str, str]):
    with NetnsPair("bwbad") as pair:
        base = start_server(pair, testlength=2)
        config = bandwidth_config(tmp_path / "c.yml", tmp_path / "state", base, pair.ip_b,
                                  backend=backend, duration="1s", warmup="0s")
        result = run_job(pair, config, list(expected), control=base, proxy=base)

    for run, (mode, needle) in zip(result["runs"], expected.items(), strict=True):
        assert run["result"] == "failure", (mode, run)
        assert needle.lower() in run["error"].lower(), (mode, run["error"])
    assert sample(result, "homemon_job_runs_total", job="bandwidth",
                  result="failure") == len(expected)
    assert_no_zero_gauges(result)
    # upload rejected after a good download: the download is recorded, the upload is not
    assert sample(result, "homemon_bandwidth_download_bits_per_second") is not None
    assert sample(result, "homemon_bandwidth_upload_bits_per_second") is None


def ns_get(pair: NetnsPair, side: str, url: str) -> str:
    code = ("import urllib.request;"
            f"print(urllib.request.urlopen({url!r}, timeout=3).read().decode())")
    return pair.run(side, [sys.executable, "-c", code], timeout=10).stdout


def test_daemon_survives_a_refusing_server_and_exports_no_zero(tmp_path: Path):
    with NetnsPair("bwd") as pair:
        base = start_server(pair)
        ns_get(pair, "b", f"{base}/_mode?set=403")
        port = free_port()
        config = minimal_config(tmp_path, port)
        scratch = bandwidth_config(tmp_path / "scratch.yml", tmp_path / "state", base, pair.ip_b)
        jobs = yaml.safe_load(scratch.read_text())["jobs"]
        config["jobs"]["bandwidth"] = jobs["bandwidth"] | {"enabled": True}
        config["jobs"]["latency"]["targets"] = jobs["latency"]["targets"]
        path = write_config(tmp_path / "daemon.yml", config)
        with daemon(path, netns=pair.ns_a, log_path=tmp_path / "daemon.log") as proc:
            metrics_url = f"http://127.0.0.1:{port}/metrics"
            text = wait_until(lambda: (t := ns_get(pair, "a", metrics_url)) and
                              'job="bandwidth",result="failure"} 1.0' in t and t, 30,
                              what="a counted bandwidth failure")
            assert proc.poll() is None, "daemon died"
            health = ns_get(pair, "a", f"http://127.0.0.1:{port}/healthz")
        assert "homemon_bandwidth_download_bits_per_second{" not in text
        assert "homemon_bandwidth_upload_bits_per_second{" not in text
        assert 'homemon_bandwidth_bytes_total{direction="download"} 0.0' in text
        assert health.strip()
        log_lines = [json.loads(line) for line in (tmp_path / "daemon.log").read_text()
                     .splitlines() if line.startswith("{")]
        failures = [line for line in log_lines if line.get("msg") == "job bandwidth failure"]
        assert failures
        assert "HTTP 403" in failures[0]["error"]


def test_budget_skips_the_next_run_and_survives_a_restart(tmp_path: Path):
    with NetnsPair("bwb") as pair:
        base = start_server(pair)
        config = bandwidth_config(tmp_path / "c.yml", tmp_path / "state", base, pair.ip_b,
                                  duration="1s", warmup="0s", monthly_data_budget="1MB")
        first = run_job(pair, config, ["ok", "ok"], control=base)
        restarted = run_job(pair, config, ["ok"], control=base)

    assert [run["result"] for run in first["runs"]] == ["success", "skipped"]
    assert "budget" in first["runs"][1]["error"]
    assert restarted["runs"][0]["result"] == "skipped"
    assert restarted["runs"][0]["server"]["download_bytes"] == 0  # nothing moved
    usage = json.loads((tmp_path / "state" / "bandwidth_usage.json").read_text())
    assert usage["bytes"] >= 1_000_000


def test_iperf3_reference_is_itself_shaped(tmp_path: Path):
    """Guards the ground truth: iperf3 sees the tbf rate, so the comparisons above mean it."""
    with NetnsPair("bwi") as pair:
        pair.shape("b", 40)
        down = iperf3_mbps(pair, download=True, seconds=4)
    # above the rate only by what tbf's 50 ms queue (250 kB) and burst carry over from iperf3's
    # omitted first second: ~0.6 Mbit/s over 4 s (seen: 41.7 over a 2 s run)
    assert 34 < down < 42
