"""The month's data use, kept under state_dir across restarts."""

from __future__ import annotations

import json
from pathlib import Path

from monitor.jobs.bandwidth.budget import UsageStore, current_month


def test_usage_store_keeps_the_month_and_starts_a_new_one(tmp_path: Path):
    store = UsageStore(tmp_path / "usage.json")
    assert store.used("2026-11") == 0
    store.add(1000, "2026-11")
    assert store.add(500, "2026-11") == 1500
    assert UsageStore(tmp_path / "usage.json").used("2026-11") == 1500  # a "restart"
    assert store.used("2026-12") == 0
    assert store.add(7, "2026-12") == 7
    assert json.loads((tmp_path / "usage.json").read_text()) == {"month": "2026-12", "bytes": 7}
    assert list(tmp_path.iterdir()) == [tmp_path / "usage.json"]  # no temp files left


def test_usage_store_survives_a_damaged_file(tmp_path: Path):
    (tmp_path / "usage.json").write_text("{not json")
    store = UsageStore(tmp_path / "usage.json")
    assert store.used() == 0
    assert store.add(10) == 10


def test_current_month_is_utc():
    assert current_month(0) == "1970-01"


def test_bytes_that_cannot_be_written_still_count_and_are_written_later(tmp_path: Path,
                                                                         caplog) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")  # every write fails
    failures: list[OSError] = []
    store = UsageStore(blocker / "usage.json", on_write_failure=failures.append)
    with caplog.at_level("WARNING", logger="monitor.jobs.bandwidth"):
        assert store.add(1000, "2026-11") == 1000
        assert store.add(500, "2026-11") == 1500
    assert store.used("2026-11") == 1500  # the budget still sees them
    assert len(failures) == 2
    assert [r.message for r in caplog.records].count(
        "cannot write the bandwidth usage file; keeping the month's usage in memory and "
        "retrying after each test") == 1  # logged once per streak, counted every time
    blocker.unlink()
    blocker.mkdir()  # the disk is writable again
    assert store.add(1, "2026-11") == 1501
    assert json.loads((blocker / "usage.json").read_text()) == {"month": "2026-11",
                                                                 "bytes": 1501}
    assert UsageStore(blocker / "usage.json").used("2026-11") == 1501
