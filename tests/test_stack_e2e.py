"""Outage -> phone, for real, in the topology of a real home (issues 7 and 10).

The real daemon pings a host in network namespace b; Debian's real Prometheus runs the repo's
prometheus.yml and rules; real Alertmanager the repo's routing, its config rendered by the
shipped renderer. The cloud phone app and the dead-man's switch are webhook sinks *beyond the
cut* (in b), the local ntfy server a sink at home (in a): cutting the veth cuts the pings and
the way to the phone alike (tests/support/stack_e2e.py).

Rewritten for this test, and nothing else: addresses; the secret files (the sinks' URLs); and,
to keep the test near four minutes, the intervals — pings every 5 s (3 per round instead of 5),
scrapes and rule evaluation every 5 s instead of 15 s, the critical route's group_interval
10 s. The rules (InternetDown's window, the report's minimum length) and the heartbeat and
report routes are the repo's. bench/stack.py runs the same path with the shipped intervals.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import wait_until
from tests.support.stack_configs import dashboard_queries, rule_expressions
from tests.support.stack_e2e import AlertPath, Timing, alert_path

FAST = Timing(ping_interval="5s", ping_timeout="5s", ping_count=3, scrape_interval="5s",
              evaluation_interval="5s", critical_group_interval="10s")
ROUND = 5.0        # FAST's ping interval: the report's resolution
SLACK = 1.5        # cutting/restoring both ends of the veth, process start-up
HEARTBEAT_MAX_GAP = 60.0
LATENCY_SERIES = re.compile(r"homemon(_ping_|_internet_|:ping_)|homemon_job_runs_total")
# ...then where it broke (issue 24); this topology has no router, so that part says "unknown"
DURATION = re.compile(r"Internet was down ((?:\d+h )?(?:\d+m )?\d+s) "
                      r"\((\d\d:\d\d:\d\d)–(\d\d:\d\d:\d\d)\): (.+)")


def latency_panel_queries() -> list[tuple[str, str]]:
    """Prometheus queries of dashboard panels that read what the latency job records."""
    return [(where, expr) for where, expr in dashboard_queries("prometheus")
            if LATENCY_SERIES.search(expr)]


def seconds(text: str) -> int:
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(part[:-1]) * units[part[-1]] for part in text.split())


def outage(stack: AlertPath, length: float) -> tuple[float, float]:
    cut = stack.cut()
    time.sleep(length)
    return cut, stack.restore()


def check_report(stack: AlertPath, cut: float, restored: float) -> float:
    """The one report of that outage: at the phone within 2 min of restore, right figures.
    Returns when it arrived."""
    at, body = stack.wait_notification("InternetOutageReport", "firing", after=restored,
                                       timeout=120)
    [alert] = body["alerts"]
    summary = alert["annotations"]["summary"]
    match = DURATION.fullmatch(summary)
    assert match, summary
    assert alert["labels"]["cause"] == "unknown", alert["labels"]  # no router to tell by
    start = datetime.fromisoformat(alert["labels"]["start"])
    end = datetime.fromisoformat(alert["labels"]["end"])
    assert start.utcoffset() == end.utcoffset()
    assert start.utcoffset().total_seconds() == -3.5 * 3600, "the daemon's TZ, with its offset"
    assert abs(start.timestamp() - cut) <= ROUND + SLACK, (start, cut)
    assert abs(end.timestamp() - restored) <= ROUND + SLACK, (end, restored)
    assert (match.group(2), match.group(3)) == (f"{start:%H:%M:%S}", f"{end:%H:%M:%S}")
    assert abs(seconds(match.group(1)) - (restored - cut)) <= ROUND + SLACK, summary
    print(f"cut {restored - cut:.1f} s -> report {summary!r}, restore -> phone "
          f"{at - restored:.1f} s")
    return at


def reports_of(stack: AlertPath, start: float) -> list[dict[str, Any]]:
    return [body for _, body in stack.notifications("InternetOutageReport")
            if abs(datetime.fromisoformat(body["alerts"][0]["labels"]["start"]).timestamp()
                   - start) <= ROUND + SLACK]


def assert_heartbeat_steady(beats: list[float], since: float, until: float) -> None:
    inside = [since, *[b for b in beats if since <= b <= until], until]
    gaps = [later - earlier for earlier, later in zip(inside, inside[1:], strict=False)]
    assert max(gaps) <= HEARTBEAT_MAX_GAP, f"heartbeat gaps {gaps}"


def test_outages_reach_the_phone_as_reports_and_the_local_ntfy_during_the_cut(
        tmp_path: Path) -> None:
    with alert_path("stk", tmp_path, FAST) as stack:
        try:
            stack.wait_internet_up(timeout=90)

            # A cut too short for InternetDown (it pages after 12 s down) but long enough for the
            # report (10 s): no InternetDown, a report all the same.
            short_cut, short_back = outage(stack, 11)
            check_report(stack, short_cut, short_back)
            assert not stack.notifications("InternetDown", after=short_cut, where="home")
            # Prometheus sends a rule's first alerts before it has found Alertmanager and
            # re-sends after its 1 min resend delay: the first beat comes ~1 min after start.
            wait_until(lambda: len(stack.heartbeats(after=short_back)) >= 2, 150, interval=0.5,
                       what="two heartbeats at the dead-man's switch")
            first_beat = stack.heartbeats(after=short_back)[0]

            # A 90 s cut: InternetDown reaches the local ntfy during it; afterwards the
            # phone gets one report and no stale "internet down".
            cut = stack.cut()
            local_at, firing = stack.wait_notification("InternetDown", "firing", after=cut,
                                                       timeout=85, where="home")
            assert firing["alerts"][0]["labels"]["probe"] == "home"  # external label
            time.sleep(max(0.0, cut + 90 - time.time()))
            restored = stack.restore()
            reported = check_report(stack, cut, restored)
            stack.wait_notification("InternetDown", "resolved", after=restored, timeout=120,
                                    where="home")
            resumed = wait_until(lambda: stack.heartbeats(after=restored), 60, interval=0.5,
                                 what="the heartbeat after the long cut")[0]
            print(f"cut -> local ntfy {local_at - cut:.1f} s, heartbeat resumed "
                  f"{resumed - restored:.1f} s after restore")

            beats = stack.heartbeats()
            for down, up in ((short_cut, short_back), (cut, restored)):
                assert not [b for b in beats if down + SLACK < b < up], "a beat during a cut"
            # while up: at least one beat a minute
            wait_until(lambda: len(stack.heartbeats(after=restored)) >= 2, 90, interval=0.5,
                       what="two heartbeats after the long cut")
            beats = stack.heartbeats()
            assert_heartbeat_steady(beats, first_beat, cut)
            assert_heartbeat_steady(beats, resumed, beats[-1])
            steady = [b for b in beats if first_beat <= b <= cut]
            print(f"heartbeat period while up: "
                  f"{(steady[-1] - steady[0]) / (len(steady) - 1):.1f} s")
            assert not stack.notifications("InternetDown"), \
                "InternetDown never goes to the cloud app: it could only arrive stale"
            assert not stack.notifications("InternetDown", "firing", after=restored + SLACK,
                                           where="home")
            time.sleep(max(0.0, reported + 35 - time.time()))  # the group's next tick: 30 s
            assert len(reports_of(stack, short_cut)) == 1
            assert len(reports_of(stack, cut)) == 1
            assert not stack.notifications("InternetOutageReport", "resolved")

            # Every expression runs on this Prometheus; the latency panels have data.
            for where, expr in rule_expressions() + dashboard_queries("prometheus"):
                try:
                    stack.query(expr)
                except AssertionError as exc:
                    pytest.fail(f"{where}: {exc}")
            empty = [where for where, expr in latency_panel_queries() if not stack.query(expr)]
            assert not empty, f"no data: {empty}"
            assert stack.query("increase(homemon_internet_outages_total[10m]) > 0")
        except BaseException:
            print(stack.logs())
            raise
