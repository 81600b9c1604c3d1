"""A real process restarted with SIGTERM and with kill -9: the gap shows as monitor_off of the
time it was off (± one write interval), and a kill -9 loses at most the last interval."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from monitor.ledger import MONITOR_OFF, Reader
from tests.support.procs import REPO

pytestmark = pytest.mark.slow

WRITE_INTERVAL = 1.0
OFF_FOR = 3.0
SLACK = 0.5  # process start-up and scheduling on a loaded machine


def start(path: Path) -> tuple[subprocess.Popen[str], dict[str, Any], float]:
    spawned = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.ledger_process", str(path),
                             str(WRITE_INTERVAL)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, "the process died before opening the ledger"
    return proc, json.loads(line), spawned


def test_sigterm_and_kill_9_leave_a_monitor_off_gap_of_the_time_off(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    procs: list[subprocess.Popen[str]] = []
    try:
        first, found, _ = start(path)
        procs.append(first)
        assert found["monitor_off"] is None  # a first start
        time.sleep(2.5)
        first.send_signal(signal.SIGTERM)
        assert first.wait(10) == 0
        stopped = time.time()

        time.sleep(OFF_FOR)
        second, found, spawned = start(path)
        procs.append(second)
        off = found["monitor_off"]
        assert off["clean_stop"] is True
        assert stopped - SLACK <= off["last_seen"] <= stopped  # close() wrote the last sign
        assert spawned <= off["restarted_at"] <= spawned + 5
        assert OFF_FOR - SLACK <= found["seconds"] <= OFF_FOR + 5
        time.sleep(3.5)
        second.kill()  # kill -9: no close, the buffer and the open minute are lost
        second.wait(10)
        killed = time.time()

        time.sleep(OFF_FOR)
        third, found, spawned = start(path)
        procs.append(third)
        off = found["monitor_off"]
        assert off["clean_stop"] is False
        # the last sign of life is the last periodic write: at most one interval before the kill
        assert killed - WRITE_INTERVAL - SLACK <= off["last_seen"] <= killed
        assert OFF_FOR - SLACK <= found["seconds"] <= OFF_FOR + WRITE_INTERVAL + 5
        third.send_signal(signal.SIGTERM)
        assert third.wait(10) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    reader = Reader(path)
    gaps = [o for o in reader.outages(0, 2e9) if o.cause == MONITOR_OFF]
    assert len(gaps) == 2
    starts = [e.at for e in reader.daemon_events(0, 2e9) if e.kind == "start"]
    # the killed run's probes (10 a second) are stored up to one write interval before the kill
    probes = sum(m.sent for m in reader.latency_minutes(starts[1] - 60, gaps[1].start + 1))
    expected = (gaps[1].start - starts[1]) * 10
    assert probes >= expected - 3
    last_probe_minute = max(m.minute for m in reader.latency_minutes(0, gaps[1].start + 1))
    assert last_probe_minute >= int(gaps[1].start // 60) * 60 - 60
