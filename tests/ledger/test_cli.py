"""`home-monitor report` and `home-monitor backup` as a user runs them (a real process), and
the `ledger:` config section's errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from monitor.ledger import Ledger, OutageRow, Reader, SpeedTestRow
from tests.ledger.test_report import LONDON, bounds
from tests.support.clock import Clock
from tests.support.procs import REPO


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)


def make_state(tmp_path: Path, plan: dict[str, float] | None = None) -> Path:
    state = tmp_path / "state"
    start, _ = bounds(2026, 10, LONDON)
    clock = Clock(start - 86400)
    ledger = Ledger(state / "ledger.db", clock=clock)
    ledger.open(start_thread=False)
    ledger.record_outage(OutageRow(start + 3600, start + 3900, "internet"))
    for day in range(3):
        ledger.record_speed_test(SpeedTestRow(start + day * 86400 + 20.5 * 3600, "bandwidth",
                                              "http", "s", 95e6, 19e6, bytes_used=10**8,
                                              against_plan=True))
    clock.now = start + 5 * 86400
    ledger.close()
    config = tmp_path / "c.yml"
    data: dict[str, object] = {"state_dir": str(state)}
    if plan:
        data["jobs"] = {"bandwidth": {"plan": plan}}
    config.write_text(yaml.safe_dump(data))
    return config


def test_report_json_uses_the_bandwidth_plan_and_the_given_zone(tmp_path: Path) -> None:
    config = make_state(tmp_path, {"download_mbps": 100, "upload_mbps": 20})
    done = cli("report", "--config", str(config), "--month", "2026-10", "--format", "json",
               "--tz", "Europe/London")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["plan"] == {"download_mbps": 100, "upload_mbps": 20}
    assert figures["download"]["peak_hours"]["tests"] == 3  # 20:30 local each day
    assert figures["download"]["all_hours"]["share_at_90"] == 1.0
    assert figures["outages_by_cause"][0]["total_seconds"] == 300
    assert figures["start"] == "2026-10-01T00:00:00+01:00"


def test_report_html_to_a_file_and_csv_to_stdout(tmp_path: Path) -> None:
    config = make_state(tmp_path)
    out = tmp_path / "r.html"
    done = cli("report", "--config", str(config), "--month", "2026-10", "--out", str(out),
               "--tz", "Europe/London")
    assert done.returncode == 0, done.stderr
    assert "Internet report October 2026" in out.read_text()
    assert "no plan set" in out.read_text()
    done = cli("report", "--config", str(config), "--month", "2026-10", "--format", "csv")
    assert done.stdout.splitlines()[0].startswith("record,start,end")
    assert sum(1 for line in done.stdout.splitlines() if line.startswith("speed_test,")) == 3


def test_report_errors(tmp_path: Path) -> None:
    config = make_state(tmp_path)
    assert cli("report", "--config", str(config), "--month", "2026-13").returncode == 2
    done = cli("report", "--config", str(config), "--tz", "Mars/Olympus")
    assert done.returncode == 2
    assert "Mars/Olympus" in done.stderr
    empty = tmp_path / "empty.yml"
    empty.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "nothing")}))
    done = cli("report", "--config", str(empty))
    assert done.returncode == 1
    assert "no ledger" in done.stderr


def test_backup_copies_and_refuses_to_overwrite(tmp_path: Path) -> None:
    config = make_state(tmp_path)
    copy = tmp_path / "backup.db"
    done = cli("backup", str(copy), "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert Reader(copy).outages(0, 2e9) == Reader(tmp_path / "state" / "ledger.db").outages(
        0, 2e9)
    again = cli("backup", str(copy), "--config", str(config))
    assert again.returncode == 1
    assert "exists" in again.stderr


def test_a_bad_ledger_key_exits_2_naming_its_path(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump({"ledger": {"write_interval": "0s", "file": "",
                                                 "retention": {"events": "10d"}}}))
    done = cli("check-config", "--config", str(config))
    assert done.returncode == 2
    assert "ledger.write_interval" in done.stderr
    assert "ledger.retention.events" in done.stderr
    assert "ledger.file" in done.stderr
