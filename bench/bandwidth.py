"""Bandwidth job benchmark: each backend's accuracy, data used, duration and memory side by side.

    sudo .venv/bin/python bench/bandwidth.py [--rate 100] [--testlength 10] [--max-bytes 200MB]

Builds a namespace pair shaped with tbf to RATE Mbit/s in both directions, measures the
truth with iperf3 (4 streams, receiver side), then runs the job through
tests.support.bandwidth_runner in namespace a while sampling the process's RSS every 20 ms,
once per backend: http, speedtest (10 s and 6 s), cloudflare and librespeed, each against its
protocol stand-in (tests/support/bandwidth_server.py), with the default http settings (4
streams, 2 s warm-up, up to 10 s). For comparison it also runs the stock speedtest-cli upload
(pre_allocate=False) without our streamed upload bodies.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.bandwidth_env import bandwidth_config, iperf3_mbps, start_server  # noqa: E402
from tests.support.netns import NetnsPair  # noqa: E402
from tests.support.procs import REPO  # noqa: E402

STOCK_UPLOAD = """
import speedtest, time
s = speedtest.Speedtest(secure=False)
s.get_servers(); s.get_best_server()
t = time.monotonic(); bps = s.upload(pre_allocate=False)
print(bps / 1e6, time.monotonic() - t)
"""


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_sampled(cmd: list[str], env: dict[str, str]) -> tuple[str, int, float]:
    """Run cmd, return (stdout, peak RSS KiB, wall seconds)."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kib(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate(timeout=300)
    done.set()
    sampler.join()
    return out, peak, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--testlength", type=int, default=10, help="speedtest stand-in seconds")
    parser.add_argument("--max-bytes", default="200MB", help="http.max_bytes (the default)")
    args = parser.parse_args()
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    with NetnsPair("bwbench") as pair, tempfile.TemporaryDirectory() as tmp:
        pair.shape("b", args.rate)
        pair.shape("a", args.rate)
        base = start_server(pair, testlength=args.testlength)
        truth = {"download": iperf3_mbps(pair, download=True, seconds=6),
                 "upload": iperf3_mbps(pair, download=False, seconds=6)}
        print(f"link: tbf {args.rate:g} Mbit/s each way; iperf3 truth download "
              f"{truth['download']:.2f}, upload {truth['upload']:.2f} Mbit/s")
        runs: list[tuple[str, str, dict[str, object]]] = [
            ("http", "http", {}), ("speedtest", "speedtest", {}),
            ("speedtest 6s", "speedtest", {"speedtest": {"secure": False, "duration": "6s"}}),
            ("cloudflare", "cloudflare", {"cloudflare": {"url": base}}),
            ("librespeed", "librespeed", {"librespeed": {"url": f"{base}/backend/"}})]
        for label, backend, extra in runs:
            name = label.replace(" ", "_")
            config = bandwidth_config(Path(tmp) / f"{name}.yml", Path(tmp) / name, base,
                                      pair.ip_b, backend=backend, duration="10s",
                                      warmup="2s", io_timeout="10s", timeout="120s",
                                      max_bytes=args.max_bytes, **extra)
            backend = label
            cmd = ["ip", "netns", "exec", pair.ns_a, sys.executable, "-m",
                   "tests.support.bandwidth_runner", "--config", str(config), "--control", base]
            out, peak, _ = run_sampled(cmd, env | {"http_proxy": base})
            run = json.loads(out)["runs"][0]
            summary = run["summary"]
            if run["result"] != "success":
                print(f"{backend}: {run['result']}: {run['error']}")
                continue
            used = summary["bytes_download"] + summary["bytes_upload"]
            print(f"{backend:12s} download {summary['download_mbps']:.2f} Mbit/s "
                  f"(ratio {summary['download_mbps'] / truth['download']:.3f}), "
                  f"upload {summary['upload_mbps']:.2f} Mbit/s "
                  f"(ratio {summary['upload_mbps'] / truth['upload']:.3f}); "
                  f"data {used / 1e6:.1f} MB; test {run['duration']:.1f} s; "
                  f"peak RSS {peak / 1024:.1f} MiB; loaded RTT down "
                  f"{summary.get('loaded_rtt_download_ms')} ms, up "
                  f"{summary.get('loaded_rtt_upload_ms')} ms, idle {summary.get('idle_rtt_ms')} ms")
        cmd = ["ip", "netns", "exec", pair.ns_a, sys.executable, "-c", STOCK_UPLOAD]
        out, peak, _ = run_sampled(cmd, env | {"http_proxy": base})
        mbps, seconds = (float(x) for x in out.split())
        print(f"stock speedtest-cli upload(pre_allocate=False): {mbps:.2f} Mbit/s in "
              f"{seconds:.1f} s, peak RSS {peak / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
