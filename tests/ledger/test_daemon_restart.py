"""The real daemon over its ledger: a SIGTERM and a kill -9 keep the outage list and the 24 h
charts (/api/status and /api/history before and after), the time off shows as a monitor_off
gap of that length (± one write interval), it reaches /metrics for the phone, and /report
serves the month as HTML, CSV and JSON.

The latency job pings 127.0.0.1 (raw ICMP: the tests run as root); the internet outages are
seeded through the ledger's own API before the first start, as a past run would have left them.
"""

from __future__ import annotations

import csv
import io
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from monitor.ledger import MONITOR_OFF, LatencyMinute, Ledger, OutageRow
from tests.support.procs import (
    daemon,
    free_port,
    http_get,
    minimal_config,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.slow

WRITE_INTERVAL = 1.0
OFF_FOR = 3.0
SLACK = 1.5  # process start-up (imports before the ledger opens) on a loaded machine


def _config(tmp_path: Path, port: int) -> dict[str, Any]:
    config = minimal_config(tmp_path, port, latency={
        "enabled": True, "interval": "1s", "timeout": "1500ms", "count": 1,
        "packet_interval": "200ms", "targets": [{"host": "127.0.0.1", "name": "lo"}]})
    config["ledger"] = {"write_interval": "1s", "monitor_off_report_after": "2s"}
    return config


def _json(url: str) -> Any:
    status, body = http_get(url)
    assert status == 200, body
    return json.loads(body)


def _outages(base: str) -> list[dict[str, Any]]:
    return list(_json(f"{base}/api/status")["outages"])


def _rtt(base: str) -> list[list[float]]:
    return list(_json(f"{base}/api/history")["latency"].get("rtt_ms/lo", []))


def _seed(path: Path, now: float) -> list[OutageRow]:
    ledger = Ledger(path, write_interval=WRITE_INTERVAL)
    ledger.open(start_thread=False)
    seeded = [OutageRow(now - 7200, now - 7140, "internet"),
              OutageRow(now - 3600, now - 3595.5, "internet")]
    for row in seeded:
        ledger.record_outage(row)
    first = int(now - 7200) // 60 * 60
    for minute in range(first, first + 6000, 60):  # 100 minutes: 20 chart slots
        rtt = 0.001 + (minute % 7) / 10000
        ledger.record_latency_minute(LatencyMinute(minute, "lo", 60, 59, rtt, rtt * 2, 1e-4))
    ledger.close()
    return seeded


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, int]:
    port = free_port()
    return write_config(tmp_path / "config.yml", _config(tmp_path, port)), port


def _wait_for_history(base: str, points: int) -> None:
    wait_until(lambda: len(_rtt(base)) >= points, 30, what=f"{points} RTT slots from the ledger")


def _gap(outages: list[dict[str, Any]]) -> dict[str, Any]:
    gaps = [o for o in outages if o["cause"] == MONITOR_OFF]
    return gaps[0]  # newest first


def test_sigterm_and_kill_9_keep_outages_and_charts(tmp_path: Path,
                                                     setup: tuple[Path, int]) -> None:
    config_path, port = setup
    base = f"http://127.0.0.1:{port}"
    seeded = _seed(tmp_path / "state" / "ledger.db", time.time())

    with daemon(config_path, port=port, log_path=tmp_path / "first.log") as first:
        wait_until(lambda: len(_outages(base)) == 3, 20, what="the ledger's outages")
        _wait_for_history(base, 21)  # the seeded slots and the first of this run
        time.sleep(2.5 * WRITE_INTERVAL)  # a few committed minutes' worth of probes
        outages_before, rtt_before = _outages(base), _rtt(base)
        page = http_get(f"{base}/")[1].decode()
        first.send_signal(signal.SIGTERM)
        assert first.wait(15) == 0
        stopped = time.time()
    assert 21 <= len(rtt_before) <= 23
    internet = [o for o in outages_before if o["cause"] == "internet"]
    assert [o["seconds"] for o in internet] == [round(r.end - r.start, 1) for r in
                                                reversed(seeded)]  # type: ignore[operator]
    assert "no data: monitor off (power cut or restart)" in page.lower()
    assert 'href="/report"' in page

    time.sleep(OFF_FOR)
    with daemon(config_path, port=port, log_path=tmp_path / "second.log") as second:
        wait_until(lambda: len(_outages(base)) == 4, 20, what="the new monitor_off gap")
        outages_after = _outages(base)
        # the same list, the new gap on top
        assert outages_after[1:] == outages_before
        gap = _gap(outages_after)
        # close() wrote the last sign of life: exact, up to the new process's start-up
        assert OFF_FOR <= gap["seconds"] <= OFF_FOR + SLACK + 1, gap
        assert abs(time.time() - gap["seconds"] - stopped) < 60
        # the 24 h chart: every slot before the stop is there, the same (the stop's last
        # write may add probes to the newest slot only)
        rtt_after = _rtt(base)
        assert rtt_after[:len(rtt_before) - 1] == rtt_before[:-1]
        assert len(rtt_after) >= len(rtt_before)
        metrics = http_get(f"{base}/metrics")[1].decode()
        assert 'homemon_monitor_off_recent_seconds{last_seen="' in metrics
        assert "homemon_ledger_write_errors_total 0.0" in metrics
        written = [line for line in metrics.splitlines()
                   if line.startswith("homemon_ledger_rows_written_total ")]
        assert written
        assert float(written[0].split()[1]) > 0

        time.sleep(2.5 * WRITE_INTERVAL)
        committed_outages, committed_rtt = _outages(base), _rtt(base)
        second.kill()  # kill -9: no stop record, the last write interval is lost
        second.wait(10)
        killed = time.time()

    time.sleep(OFF_FOR)
    with daemon(config_path, port=port, log_path=tmp_path / "third.log"):
        wait_until(lambda: len(_outages(base)) == 5, 20, what="the gap after the kill")
        outages_after = _outages(base)
        assert outages_after[1:] == committed_outages
        gap = _gap(outages_after)
        # the last sign of life is at most one write interval before the kill
        assert OFF_FOR <= gap["seconds"] <= OFF_FOR + WRITE_INTERVAL + SLACK + 1, gap
        assert abs(time.time() - gap["seconds"] - killed) < 60
        rtt_after = _rtt(base)
        assert rtt_after[:len(committed_rtt) - 1] == committed_rtt[:-1]


def test_report_route_serves_html_csv_and_json(tmp_path: Path,
                                               setup: tuple[Path, int]) -> None:
    config_path, port = setup
    base = f"http://127.0.0.1:{port}"
    now = time.time()
    _seed(tmp_path / "state" / "ledger.db", now)
    month = time.strftime("%Y-%m", time.localtime(now - 7200))
    with daemon(config_path, port=port, log_path=tmp_path / "daemon.log"):
        status, html = http_get(f"{base}/report?month={month}")
        assert status == 200
        text = html.decode()
        assert text.startswith("<!doctype html>") or text.lower().startswith("<!doctype html>")
        assert "<script" not in text

        status, body = http_get(f"{base}/report?month={month}&format=json")
        assert status == 200
        figures = json.loads(body)
        assert figures["month"] == month

        status, body = http_get(f"{base}/report?month={month}&format=csv")
        assert status == 200
        table = list(csv.DictReader(io.StringIO(body.decode())))
        outages = [row for row in table if row["record"] == "outage"]
        assert sorted(float(row["seconds"]) for row in outages if row["cause"] == "internet") \
            == [4.5, 60.0]

        assert http_get(f"{base}/report?month=2026-13")[0] == 400
        assert http_get(f"{base}/report?month={month}&format=pdf")[0] == 400


def test_a_corrupt_ledger_is_moved_aside_and_the_daemon_keeps_measuring(
        tmp_path: Path, setup: tuple[Path, int]) -> None:
    config_path, port = setup
    base = f"http://127.0.0.1:{port}"
    state = tmp_path / "state"
    state.mkdir()
    (state / "ledger.db").write_bytes(b"this is no SQLite file " * 200)
    log = tmp_path / "daemon.log"
    with daemon(config_path, port=port, log_path=log):
        wait_until(lambda: len(_rtt(base)) >= 1, 30, what="RTT from the fresh ledger")
        assert http_get(f"{base}/healthz")[0] == 200
        metrics = http_get(f"{base}/metrics")[1].decode()
        assert "homemon_ledger_databases_moved_aside_total 1.0" in metrics
        assert 'homemon_job_runs_total{job="latency",result="success"}' in metrics
    moved = sorted(path.name for path in state.glob("ledger.db.corrupt-*"))
    assert len(moved) == 1
    assert "moved aside" in log.read_text()
