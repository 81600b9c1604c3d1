"""monitor.schedule: first run after its delay, then every interval; overruns skip slots."""

from __future__ import annotations

import threading
import time

from monitor.schedule import IntervalScheduler


def test_runs_every_interval_one_at_a_time_and_skips_overrun_slots() -> None:
    scheduler = IntervalScheduler()
    fast: list[float] = []
    slow: list[float] = []
    running = threading.Lock()
    overlapped: list[bool] = []

    def slow_call() -> None:
        overlapped.append(not running.acquire(blocking=False))
        slow.append(time.monotonic())
        time.sleep(0.35)  # overruns its 0.1 s interval
        running.release()

    def failing_call() -> None:
        fast.append(time.monotonic())
        raise RuntimeError("a bug in a scheduled call does not stop its schedule")

    scheduler.add("fast", 0.1, failing_call, 0.2)
    scheduler.add("slow", 0.1, slow_call, 0.0)
    started = time.monotonic()
    scheduler.start()
    assert scheduler.running
    time.sleep(1.5)
    scheduler.shutdown()
    assert not scheduler.running
    stopped = time.monotonic()
    time.sleep(0.5)

    assert fast
    assert fast[0] - started >= 0.2
    assert len(fast) >= 5, "a raising call keeps its schedule"
    assert not any(overlapped)
    gaps = [b - a for a, b in zip(slow, slow[1:], strict=False)]
    # one at a time, and the missed slots are skipped, not run back to back
    assert gaps
    assert all(gap >= 0.35 for gap in gaps)
    assert len(slow) <= 1.5 / 0.35 + 1
    assert all(at <= stopped for at in fast + slow), "no run starts after shutdown"
