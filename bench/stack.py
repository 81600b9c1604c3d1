"""Outage -> phone with the shipped intervals, in the topology of a real home: how long until
InternetDown reaches the local ntfy during the cut, how long after the restore the outage report
reaches the phone app beyond the cut, and the heartbeat's period.

The real daemon (config/home-monitor.yml's latency settings: a ping a second, an outage after 3
silent seconds) pings a host in a network namespace; Prometheus runs the repo's prometheus.yml
(the monitor scraped and rules evaluated every 5 s) and rules; Alertmanager the repo's routing,
rendered by the shipped renderer, with the cloud phone app and the dead-man's switch beyond the
cut and the local ntfy at home (tests/support/stack_e2e.py). The link is cut at a random moment
of the scrape cycle, for `--cut` seconds, once the previous outage's InternetDown has resolved
(a new alert in a group Alertmanager still holds waits a whole group_interval: that is a
flapping link, not a new outage). Goals: cut -> local phone <= 30 s on average (issue 13),
restore -> report <= 120 s and a heartbeat at least every 60 s (issue 10).

Run as root: .venv/bin/python -m bench.stack [--runs 3] [--cut 90]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.support.procs import wait_until
from tests.support.stack_e2e import Timing, alert_path

LOCAL_GOAL, REPORT_GOAL, HEARTBEAT_GOAL = 30.0, 120.0, 60.0


def summary(name: str, values: list[float], goal: float) -> str:
    return (f"{name}: mean {statistics.mean(values):.1f} s, min {min(values):.1f} s, "
            f"max {max(values):.1f} s (goal <= {goal:.0f} s)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cut", type=float, default=90, help="outage length, seconds")
    parser.add_argument("--timeout", type=float, default=240, help="per notification")
    args = parser.parse_args()
    local, report = [], []
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as home, \
            alert_path("bst", Path(home), Timing()) as stack:
        print("shipped timing: a ping a second, outage after 3 silent s, scrape/eval 5 s, "
              "InternetDown -> local ntfy group_wait 5 s, report group_wait 5 s, heartbeat "
              f"group_interval 30 s; cuts of {args.cut:.0f} s", flush=True)
        stack.wait_internet_up(timeout=180)
        wait_until(stack.heartbeats, 180, interval=0.5, what="the first heartbeat")
        for run in range(1, args.runs + 1):
            time.sleep(random.uniform(0, 5))  # noqa: S311 - a random phase, not crypto
            cut = stack.cut()
            at, _ = stack.wait_notification("InternetDown", "firing", after=cut,
                                            timeout=min(args.timeout, args.cut - 1),
                                            where="home")
            local.append(at - cut)
            time.sleep(max(0.0, cut + args.cut - time.time()))
            back = stack.restore()
            at, body = stack.wait_notification("InternetOutageReport", "firing", after=back,
                                               timeout=args.timeout)
            report.append(at - back)
            print(f"run {run}: cut -> local ntfy {local[-1]:5.1f} s   restore -> report "
                  f"{report[-1]:5.1f} s   ({body['alerts'][0]['annotations']['summary']})",
                  flush=True)
            stack.wait_notification("InternetDown", "resolved", after=back,
                                    timeout=args.timeout, where="home")
            stack.wait_internet_up(timeout=180)
        since = time.time()
        wait_until(lambda: len(stack.heartbeats(after=since)) >= 4, 240, interval=0.5,
                   what="four heartbeats")
        beats = stack.heartbeats(after=since)
        gaps = [later - earlier for earlier, later in zip(beats, beats[1:], strict=False)]
        assert stack.notifications("InternetDown") == [], "InternetDown reached the cloud app"
    print(summary("cut -> local ntfy (InternetDown)", local, LOCAL_GOAL))
    print(summary("restore -> phone (InternetOutageReport)", report, REPORT_GOAL))
    print(summary("heartbeat period", gaps, HEARTBEAT_GOAL))
    print("dead-man's switch -> phone (documented): period + grace = 1 min + 2 min = 3 min "
          "after the last heartbeat, checked by healthchecks.io about once a minute")
    return 0


if __name__ == "__main__":
    sys.exit(main())
