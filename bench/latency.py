"""Benchmark: home-monitor's latency job next to smokeping_prober on one responder.

    sudo .venv/bin/python -m bench.latency [--seconds 60]

Both run side by side in namespace a on their defaults (a request a second per target,
unprivileged ICMP sockets: ping_group_range is opened in a) against
tests/support/icmp_responder.py in namespace b (30 ms ± 3, 5 % loss, the figures of issue 13).
After a warm-up, each program's own /metrics and /proc give, over `--seconds`:
requests per target per minute, mean RTT against the responder's record (its mean applied
delay; the difference is the network stack and the programs' own delay), loss, RSS and CPU
per request, first with one target (issue 22's RSS goal: at most 2x smokeping_prober's), then
with 3 (issue 13's); then the same with 20 targets for the CPU share of one core; then 3
targets plus the two path hops (issue 24: the home router and the ISP's first hop, pinned to
two more responder addresses, probed every second by their own prober), smokeping_prober
pinging all 5.

smokeping_prober is Debian's prometheus-smokeping-prober (`make bench` installs it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.latency_netns import LatencyLab
from tests.support.netns import NetnsPair
from tests.support.procs import REPO, stop_process, wait_until

SMOKEPING = "prometheus-smokeping-prober"
PROFILE = "30:3:0.05"  # delay ms : jitter ms : loss
HM_PORT, SP_PORT = 10140, 10141
WARM_UP = 10.0
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Reading:
    at: float
    cpu: float  # seconds
    rss: int  # bytes
    sent: float
    rtt_sum: float
    rtt_count: float


def _proc(pid: int) -> tuple[float, int]:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / TICKS  # utime, stime
    rss = next(int(line.split()[1]) * 1024 for line in
               Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return cpu, rss


def _scrape(lab: LatencyLab, port: int) -> dict[str, float]:
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(lab.http_a(f"http://127.0.0.1:{port}/metrics")[1]):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


class Program:
    def __init__(self, name: str, proc: subprocess.Popen[Any], port: int,
                 sent: Sequence[str], rtt: Sequence[str]) -> None:
        self.name, self.proc, self.port = name, proc, port
        self.sent_metrics, self.rtt_metrics = sent, rtt

    def read(self, lab: LatencyLab) -> Reading:
        metrics = _scrape(lab, self.port)
        cpu, rss = _proc(self.proc.pid)
        return Reading(time.time(), cpu, rss,
                       sum(metrics.get(name, 0.0) for name in self.sent_metrics),
                       sum(metrics.get(f"{name}_sum", 0.0) for name in self.rtt_metrics),
                       sum(metrics.get(f"{name}_count", 0.0) for name in self.rtt_metrics))


def _start(lab: LatencyLab, addresses: Sequence[str], logs: Path,
           hops: Sequence[str] = ()) -> list[Program]:
    latency: dict[str, Any] = {
        "interval": "15s", "targets": [{"host": a, "internet": True} for a in addresses]}
    if hops:
        latency["path"] = {"discover": False, "gateway": hops[0], "isp_hop": hops[1]}
    config = lab.write_config("bench-hm.yml", latency, port=HM_PORT)
    hm = lab.monitor_a(["run", "--config", str(config)], stdout=open(logs / "hm.log", "w"),  # noqa: SIM115
                       stderr=subprocess.STDOUT)
    sp = subprocess.Popen(lab.command_a([SMOKEPING, f"--web.listen-address=127.0.0.1:{SP_PORT}",
                                         "--config.file=/nonexistent/smokeping.yml", *addresses,
                                         *hops]),
                          stdout=open(logs / "sp.log", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    programs = [Program("home-monitor", hm, HM_PORT,
                        ("homemon_ping_sent_total", "homemon_path_sent_total"),
                        ("homemon_ping_rtt_seconds", "homemon_path_rtt_seconds")),
                Program("smokeping_prober", sp, SP_PORT, ("smokeping_requests_total",),
                        ("smokeping_response_duration_seconds",))]
    for program in programs:
        wait_until(lambda program=program: program.read(lab).sent > 0, 30,
                   what=f"{program.name} probing")
    return programs


def _measure(lab: LatencyLab, addresses: Sequence[str], seconds: float, logs: Path,
             hops: Sequence[str] = ()
             ) -> tuple[dict[str, tuple[Reading, Reading]], tuple[float, float]]:
    profiles = [f"{address}:{PROFILE}" for address in [*addresses, *hops]]
    with lab.responder(f"bench-{len(addresses)}-{len(hops)}", profiles) as responder:
        programs = _start(lab, addresses, logs, hops)
        try:
            time.sleep(WARM_UP + len(addresses))  # smokeping starts a pinger a second
            first = {p.name: p.read(lab) for p in programs}
            time.sleep(seconds)
            last = {p.name: p.read(lab) for p in programs}
        finally:
            for program in programs:
                stop_process(program.proc)
        record = responder.stop()
    start, end = min(r.at for r in first.values()), max(r.at for r in last.values())
    entries = [entry for address in [*addresses, *hops] for entry in record[address]
               if start <= entry["at"] <= end]
    answered = [entry["delay"] for entry in entries if not entry["dropped"]]
    truth = (sum(answered) / len(answered), 1 - len(answered) / len(entries))
    return {name: (first[name], last[name]) for name in first}, truth


def _report(title: str, targets: int, readings: dict[str, tuple[Reading, Reading]],
            truth: tuple[float, float]) -> None:
    print(f"\n{title}: {targets} target(s); responder truth: mean delay "
          f"{truth[0] * 1000:.2f} ms, loss {truth[1]:.1%}")
    print(f"{'':28}" + "".join(f"{name:>20}" for name in readings))
    rows: dict[str, list[str]] = {"requests per target per minute": [],
                                  "mean RTT (truth +)": [], "loss": [], "RSS": [],
                                  "CPU per request": [], "CPU share of one core": []}
    for first, last in readings.values():
        elapsed = last.at - first.at
        sent = last.sent - first.sent
        count = last.rtt_count - first.rtt_count
        mean = (last.rtt_sum - first.rtt_sum) / count if count else float("nan")
        cpu = last.cpu - first.cpu
        rows["requests per target per minute"].append(f"{sent / targets / elapsed * 60:.1f}")
        rows["mean RTT (truth +)"].append(f"{mean * 1000:.2f} ms ({(mean - truth[0]) * 1000:+.2f})")
        rows["loss"].append(f"{1 - count / sent:.1%}" if sent else "-")
        rows["RSS"].append(f"{last.rss / 2**20:.1f} MiB")
        rows["CPU per request"].append(f"{cpu / sent * 1000:.2f} ms" if sent else "-")
        rows["CPU share of one core"].append(f"{cpu / elapsed:.2%}")
    for label, values in rows.items():
        print(f"{label:28}" + "".join(f"{value:>20}" for value in values))
    hm, sp = readings["home-monitor"][1], readings["smokeping_prober"][1]
    first = readings["home-monitor"][0]
    count = hm.rtt_count - first.rtt_count
    offset = ((hm.rtt_sum - first.rtt_sum) / count - truth[0]) * 1000 if count else float("nan")
    share = (hm.cpu - first.cpu) / (hm.at - first.at)
    # issue 13's goals: RSS <= 2x smokeping_prober's (3 targets), <= 1 % of a core (20 targets),
    # mean RTT within 0.5 ms of the truth; issue 22's: RSS <= 2x with one target
    ratio = hm.rss / sp.rss
    print(f"goals (home-monitor): RSS {ratio:.2f}x smokeping_prober's (<= 2 with 1 and 3 "
          f"targets{_verdict(ratio) if targets <= 3 else ''}), {share:.2%} of a core (<= 1 % "
          f"with 20), mean RTT {offset:+.2f} ms vs truth over {count:.0f} replies (within 0.5)")


def _verdict(ratio: float) -> str:
    return ": met" if ratio <= 2 else ": NOT met"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--targets", type=int, default=20, help="for the CPU run")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which(SMOKEPING) is None:
        print(f"bench.latency: needs root (namespaces) and {SMOKEPING} (make bench installs it)")
        return 0
    addresses = [f"10.77.1.{n}" for n in range(1, args.targets + 1)]
    hops = [f"10.77.1.{n}" for n in range(args.targets + 1, args.targets + 3)]
    with NetnsPair("latb") as pair:
        lab = LatencyLab(pair, [*addresses, *hops])
        try:
            lab.ping_group_range(0, 2147483647)  # both on their unprivileged defaults
            logs = lab.shared
            for count in (1, 3):
                readings, truth = _measure(lab, addresses[:count], args.seconds, logs)
                _report("side by side", count, readings, truth)
            readings, truth = _measure(lab, addresses, args.seconds, logs)
            _report("side by side", len(addresses), readings, truth)
            readings, truth = _measure(lab, addresses[:3], args.seconds, logs, hops)
            _report("with the 2 path hops (issue 24)", 5, readings, truth)
        finally:
            for name in ("hm.log", "sp.log"):
                tail = (lab.shared / name).read_text(errors="replace").splitlines()[-3:]
                if any("Traceback" in line or "level=error" in line for line in tail):
                    print(f"{name}: " + json.dumps(tail))
            lab.close()
    print(f"\n(python {sys.version.split()[0]}, {REPO.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
