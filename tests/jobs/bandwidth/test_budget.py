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
