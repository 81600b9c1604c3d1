"""What a probe costs its home uplink, and what the central site costs, with shipped settings.

Four probes run the default jobs of config/home-monitor.yml (latency: 3 targets every 15 s;
bandwidth hourly, here the http backend against a local server) with the repo's prometheus.yml
(15 s scrapes) and the remote_write block of docs/stack.md (30 s batches, write_relabel keeps
homemon_*, homemon:* and up). Probe `full` runs Prometheus as shipped, probe `agent` runs it in
agent mode (no local rules or alerts), probe `vmagent` runs vmagent instead (same scrape jobs,
relabelling and 30 s flushes), probe `meta` is `full` with Prometheus' default of sending metric
metadata every minute, which the docs' snippet turns off. All write to VictoriaMetrics and to a
central Prometheus receiver (tests/support/multisite.py; only addresses differ from the shipped
files; the ping targets keep their names but answer on loopback, so the uplink carries
remote_write only).

Measured over --seconds once every probe's series have arrived centrally:
- remote_write payload per probe and endpoint (Prometheus' prometheus_remote_storage_bytes_total:
  compressed bodies) and the bytes on the probe's link (both directions, both endpoints,
  TCP/IP and HTTP included), extrapolated to a day;
- samples/s and series sent per probe; central ingest (samples/s) of both stores (all probes);
- RSS of each probe's collector and of the central stores;
- WAL growth of the Prometheus probes: the disk an outage costs them.

Run as root: .venv/bin/python -m bench.multisite [--seconds 180]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.multisite import (
    CENTRAL_PROM_PORT,
    STORES,
    VM_PORT,
    Multisite,
    MultisiteTiming,
    ProbeSpec,
)
from tests.support.procs import REPO, wait_until
from tests.support.stack_configs import load_yaml

DAY = 86_400
SERVER_PORT = 8080


# (remote_write payload bytes, samples sent), each summed over the endpoints
SENT_METRICS = {"prometheus": ("prometheus_remote_storage_bytes_total",
                               "prometheus_remote_storage_samples_total"),
                "vmagent": ("vmagent_remotewrite_bytes_sent_total",
                            "vmagent_remotewrite_rows_pushed_after_relabel_total")}
PROBES = {"full": "prometheus-full", "agent": "prometheus-agent", "vmagent": "vmagent-vmagent",
          "meta": "prometheus-meta"}


def probe_spec(name: str, flags: list[str], collector: str = "prometheus",
               send_metadata: bool = False) -> ProbeSpec:
    shipped = load_yaml("config/home-monitor.yml")["jobs"]
    targets = [t | {"host": "127.0.0.1"} for t in shipped["latency"]["targets"]]
    bandwidth = shipped["bandwidth"] | {"backend": "http", "timeout": "60s", "http": {
        "download_url": f"http://127.0.0.1:{SERVER_PORT}/download",
        "upload_url": f"http://127.0.0.1:{SERVER_PORT}/upload",
        "duration": "3s", "warmup": "1s", "max_bytes": "50MB"}}
    server = [sys.executable, str(REPO / "tests" / "support" / "bandwidth_server.py"),
              "--port", str(SERVER_PORT), "--advertise", "127.0.0.1"]
    return ProbeSpec(name, latency_targets=targets, extra_jobs={"bandwidth": bandwidth},
                     prometheus_flags=flags, helpers=[server], collector=collector,
                     send_metadata=send_metadata)


def link_bytes(sites: Multisite, probe: str) -> int:
    out = subprocess.run(["ip", "-n", sites.ns[probe], "-s", "-j", "link", "show", "dev",
                          sites.veth[probe][1]], capture_output=True, text=True, check=True)
    stats = json.loads(out.stdout)[0]["stats64"]
    return int(stats["tx"]["bytes"]) + int(stats["rx"]["bytes"])


def rss_mib(sites: Multisite, name: str) -> float:
    status = Path(f"/proc/{sites.named[name].pid}/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return kib / 1024


def du_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def snapshot(sites: Multisite) -> dict[str, float]:
    probe_url = "http://127.0.0.1:9090/metrics"
    snap: dict[str, float] = {"time": time.time()}
    for probe in PROBES:
        ns = sites.ns[probe]
        payload, samples = SENT_METRICS["vmagent" if probe == "vmagent" else "prometheus"]
        snap[f"{probe}.link"] = link_bytes(sites, probe)
        snap[f"{probe}.wal"] = du_mib(sites.home / f"probe-{probe}" / "data" / "wal") * 2**20
        snap[f"{probe}.payload"] = sites.metric(ns, probe_url, payload)
        snap[f"{probe}.samples"] = sites.metric(ns, probe_url, samples)
    snap["vm.rows"] = sites.metric(sites.hub, f"http://127.0.0.1:{VM_PORT}/metrics",
                                   "vm_rows_inserted_total")
    snap["prom.samples"] = sites.metric(sites.hub, f"http://127.0.0.1:{CENTRAL_PROM_PORT}/metrics",
                                        "prometheus_tsdb_head_samples_appended_total")
    return snap


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=180)
    args = parser.parse_args()
    probes = [probe_spec("full", []), probe_spec("agent", ["--enable-feature=agent"]),
              probe_spec("vmagent", [], collector="vmagent"),
              probe_spec("meta", [], send_metadata=True)]
    with tempfile.TemporaryDirectory(prefix="bench-multisite-") as tmp, \
            Multisite("msb", Path(tmp), probes, MultisiteTiming()) as sites:
        for store in STORES:
            wait_until(lambda store=store: {r["metric"].get("probe") for r in sites.query(
                store, 'up{job="home-monitor"}')} == set(PROBES), 180, interval=2,
                what=f"both probes in {store}")
        time.sleep(35)   # one full batch_send_deadline so both queues are in their rhythm
        first = snapshot(sites)
        print(f"measuring {args.seconds:.0f} s with shipped intervals (15 s scrapes, 30 s "
              "batches); each probe writes to 2 endpoints", flush=True)
        time.sleep(args.seconds)
        last = snapshot(sites)
        span = last["time"] - first["time"]

        def per_s(key: str) -> float:
            return (last[key] - first[key]) / span

        for probe in PROBES:
            series = sites.query("victoriametrics",
                                 f'count({{probe="{probe}", __name__!~"ALERTS.*"}})')
            payload_day = per_s(f"{probe}.payload") / 2 * DAY / 1e6
            link_day = per_s(f"{probe}.link") / 2 * DAY / 1e6
            print(f"probe {probe:5}: {series[0]['value'][1] if series else '?'} series, "
                  f"{per_s(f'{probe}.samples') / 2:.2f} samples/s per endpoint; upstream per "
                  f"endpoint {payload_day:.1f} MB/day payload, {link_day:.1f} MB/day on the wire "
                  f"({link_day * 30 / 1000:.2f} GB/month)")
        print(f"central ingest: VictoriaMetrics {per_s('vm.rows'):.2f} samples/s, "
              f"Prometheus receiver {per_s('prom.samples'):.2f} samples/s (all {len(PROBES)} "
              "probes)")
        print("RSS: " + ", ".join(f"probe {probe} {rss_mib(sites, name):.0f} MiB"
                                  for probe, name in PROBES.items())
              + f"; central VictoriaMetrics {rss_mib(sites, 'victoriametrics'):.0f} MiB (+ vmalert "
              f"{rss_mib(sites, 'vmalert'):.0f} MiB), central Prometheus "
              f"{rss_mib(sites, 'central-prometheus'):.0f} MiB")
        # The WAL holds every scraped sample (not only what write_relabel_configs sends): its
        # growth is the disk an agent needs per hour of outage it bridges. vmagent writes to
        # disk only what it cannot send, so it has nothing to show here.
        for probe in ("full", "agent"):
            print(f"probe {probe:5} WAL grows {per_s(f'{probe}.wal') * 3600 / 1e6:.2f} MB/hour "
                  f"({last[f'{probe}.wal'] / 1024:.0f} KiB after {span + 35:.0f} s of measuring)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
