"""Benchmark: one latency round over 20 targets x 5 packets, all pinged concurrently.

    sudo .venv/bin/python bench/latency.py            # namespace pair + ICMP responder
    .venv/bin/python bench/latency.py --loopback      # 127.0.0.1-20, the kernel answers

Prints the wall time of a round next to `count x packet_interval + packet_timeout` (what a
round should take at most when the targets run concurrently) and the CPU seconds the job spent.
The namespace run also times rounds in which no target answers (the worst case), with the
default 2 s packet timeout and with 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from prometheus_client import CollectorRegistry  # noqa: E402

from monitor.config import LatencyConfig, PingTarget  # noqa: E402
from monitor.jobs.latency import LatencyJob  # noqa: E402
from monitor.metrics import LatencyMetrics  # noqa: E402

TARGETS = 20
COUNT = 5
PACKET_INTERVAL = 0.2
PACKET_TIMEOUT = 2.0
RESPONDER_DELAY_MS = 10


def rounds(addresses: list[str], repeat: int, packet_timeout: float) -> dict[str, object]:
    """Run `repeat` rounds in this process; wall and CPU seconds per round."""
    config = LatencyConfig(targets=[PingTarget(address, internet=True) for address in addresses],
                           count=COUNT, packet_interval=PACKET_INTERVAL,
                           packet_timeout=packet_timeout, privileged=True, timeout=600)
    job = LatencyJob(config, LatencyMetrics(CollectorRegistry()))
    walls, cpus, received = [], [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        figures = job.run(threading.Event())
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        received.append(sum(target["received"] for target in figures["targets"].values()))
    return {"wall": walls, "cpu": cpus, "received": received,
            "expected": COUNT * PACKET_INTERVAL + packet_timeout,
            "schedule": (COUNT - 1) * PACKET_INTERVAL + packet_timeout}


def report(title: str, result: dict[str, object]) -> None:
    walls, cpus = result["wall"], result["cpu"]
    print(f"{title}: {TARGETS} targets x {COUNT} packets, {len(walls)} rounds")
    print(f"  round wall time   median {statistics.median(walls):.3f} s, max {max(walls):.3f} s"
          f"  (count x packet_interval + packet_timeout = {result['expected']:.3f} s; "
          f"a silent target's schedule (count - 1) x packet_interval + packet_timeout = "
          f"{result['schedule']:.3f} s)")
    print(f"  CPU per round     median {statistics.median(cpus) * 1000:.1f} ms, "
          f"max {max(cpus) * 1000:.1f} ms")
    print(f"  replies per round {result['received']} of {TARGETS * COUNT}")


def inner(args: argparse.Namespace) -> None:
    addresses = args.addresses.split(",")
    print(json.dumps(rounds(addresses, args.repeat, args.packet_timeout)))


def in_namespaces(repeat: int) -> None:
    from tests.support.latency_netns import LatencyLab
    from tests.support.netns import NetnsPair

    addresses = [f"10.77.1.{n}" for n in range(1, TARGETS + 1)]
    with NetnsPair("latb") as pair:
        lab = LatencyLab(pair, addresses)
        try:
            def run(title: str, packet_timeout: float, repeat: int) -> None:
                out = subprocess.run(
                    lab.command_a([sys.executable, __file__, "--inner", "--repeat", str(repeat),
                                   "--packet-timeout", str(packet_timeout),
                                   "--addresses", ",".join(addresses)]),
                    capture_output=True, text=True, check=True, cwd=REPO)
                report(title, json.loads(out.stdout.strip().splitlines()[-1]))

            profiles = [f"{address}:{RESPONDER_DELAY_MS}:2:0" for address in addresses]
            with lab.responder("bench", profiles):
                run(f"namespace, responder answers after {RESPONDER_DELAY_MS} ms",
                    PACKET_TIMEOUT, repeat)
            run("namespace, no target answers (worst case), packet_timeout 2 s",
                PACKET_TIMEOUT, min(repeat, 3))
            run("namespace, no target answers (worst case), packet_timeout 0.5 s", 0.5,
                min(repeat, 3))
        finally:
            lab.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loopback", action="store_true", help="127.0.0.x, no namespaces")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--addresses", help=argparse.SUPPRESS)
    parser.add_argument("--packet-timeout", type=float, default=PACKET_TIMEOUT,
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args)
    elif args.loopback:
        addresses = [f"127.0.0.{n}" for n in range(1, TARGETS + 1)]
        report("loopback, kernel answers", rounds(addresses, args.repeat, PACKET_TIMEOUT))
    else:
        in_namespaces(args.repeat)


if __name__ == "__main__":
    main()
