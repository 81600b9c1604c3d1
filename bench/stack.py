"""Outage -> phone with the shipped intervals: how long until InternetDown reaches the phone,
and the resolved message after the link comes back.

The real daemon (config/home-monitor.yml's latency settings: 15 s rounds, 5 pings, 2 s packet
timeout) pings a host in a network namespace; Prometheus runs the repo's prometheus.yml (15 s
scrapes and evaluation) and rules; Alertmanager the repo's routing (critical: 5 s group_wait,
30 s group_interval) with the phone webhook pointed at a local sink. Only addresses and
Alertmanager 0.25's missing `*_file` fields are rewritten (tests/support/stack_e2e.py).
The link is cut at a random moment of the ping cycle. Goal (issue 7): outage -> phone <= 75 s.

Run as root: .venv/bin/python -m bench.stack [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.support.stack_e2e import Timing, alert_path

GOAL_SECONDS = 75.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=240, help="per notification")
    args = parser.parse_args()
    fired, resolved = [], []
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as home, \
            alert_path("bst", Path(home), Timing()) as stack:
        print("shipped timing: ping rounds 15 s (5 pings, 2 s packet timeout), scrape/eval 15 s, "
              "critical group_wait 5 s / group_interval 30 s", flush=True)
        stack.wait_internet_up(timeout=180)
        for run in range(1, args.runs + 1):
            time.sleep(random.uniform(0, 15))  # noqa: S311 - a random phase, not crypto
            cut = stack.cut()
            at, _ = stack.wait_notification("InternetDown", "firing", after=cut,
                                            timeout=args.timeout)
            fired.append(at - cut)
            time.sleep(random.uniform(0, 15))  # noqa: S311
            back = stack.restore()
            at, _ = stack.wait_notification("InternetDown", "resolved", after=back,
                                            timeout=args.timeout)
            resolved.append(at - back)
            print(f"run {run}: outage -> phone {fired[-1]:5.1f} s   "
                  f"recovery -> phone {resolved[-1]:5.1f} s", flush=True)
            stack.wait_internet_up(timeout=180)
    print(f"outage -> phone:   mean {statistics.mean(fired):.1f} s, min {min(fired):.1f} s, "
          f"max {max(fired):.1f} s (goal <= {GOAL_SECONDS:.0f} s)")
    print(f"recovery -> phone: mean {statistics.mean(resolved):.1f} s, "
          f"min {min(resolved):.1f} s, max {max(resolved):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
