"""The cloudflare and librespeed backends over shaped links (tbf in a namespace pair, iperf3 as
ground truth), and the fallback when the speedtest.net stand-in refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.jobs.bandwidth.test_job_netns import assert_no_zero_gauges, assert_within
from tests.support.bandwidth_env import (
    bandwidth_config,
    iperf3_mbps,
    run_job,
    sample,
    start_server,
)
from tests.support.netns import NetnsPair


def public_backends(base: str) -> dict[str, object]:
    return {"cloudflare": {"url": base}, "librespeed": {"url": f"{base}/backend/"}}


@pytest.mark.parametrize("rate", [40, 400])
@pytest.mark.parametrize("backend", ["cloudflare", "librespeed"])
def test_public_backend_matches_iperf3_and_counts_bytes(tmp_path: Path, backend: str,
                                                        rate: int):
    with NetnsPair("bwp") as pair:
        pair.shape("b", rate)
        pair.shape("a", rate)
        base = start_server(pair)
        truth_down = iperf3_mbps(pair, download=True)
        truth_up = iperf3_mbps(pair, download=False)
        config = bandwidth_config(tmp_path / "c.yml", tmp_path / "state", base, pair.ip_b,
                                  backend=backend, max_bytes="1GB", **public_backends(base))
        result = run_job(pair, config, ["ok"], control=base)

    run = result["runs"][0]
    assert run["result"] == "success", run["error"]
    assert run["summary"]["backend"] == backend
    assert_within(run["summary"]["download_mbps"], truth_down, 0.05, "download")
    assert_within(run["summary"]["upload_mbps"], truth_up, 0.05, "upload")
    for direction, seen in (("download", run["server"]["download_bytes"]),
                            ("upload", run["server"]["upload_bytes"])):
        counted = sample(result, "homemon_bandwidth_bytes_total", direction=direction)
        assert seen > 1_000_000
        assert counted is not None
        assert abs(counted / seen - 1) <= 0.03, f"{direction}: counted {counted}, server {seen}"
    assert sample(result, "homemon_bandwidth_download_bits_per_second", backend=backend)


def test_speedtest_refused_then_rate_limited_falls_back(tmp_path: Path):
    with NetnsPair("bwf") as pair:
        pair.shape("b", 40)
        base = start_server(pair, testlength=2)
        config = bandwidth_config(tmp_path / "c.yml", tmp_path / "state", base, pair.ip_b,
                                  backend="speedtest", duration="2s", warmup="1s",
                                  fallback=["cloudflare", "librespeed"], **public_backends(base))
        # the whole stand-in refuses speedtest.net's paths: 403 first, then 429
        result = run_job(pair, config, ["403@speedtest", "429@speedtest"], control=base,
                         proxy=base)

    for run, reason in zip(result["runs"], ("forbidden", "rate_limited"), strict=True):
        assert run["result"] == "success", run["error"]
        assert run["summary"]["backend"] == "cloudflare"
        assert [(f["backend"], f["reason"]) for f in run["summary"]["failed_backends"]] == [
            ("speedtest", reason)]
        assert 30 < run["summary"]["download_mbps"] < 42
    for reason in ("forbidden", "rate_limited"):
        assert sample(result, "homemon_bandwidth_backend_failures_total", backend="speedtest",
                      reason=reason) == 1
    assert sample(result, "homemon_bandwidth_download_bits_per_second",
                  backend="cloudflare") is not None
    assert sample(result, "homemon_bandwidth_download_bits_per_second",
                  backend="speedtest") is None
    assert sample(result, "homemon_job_runs_total", job="bandwidth", result="success") == 2
    assert_no_zero_gauges(result)
