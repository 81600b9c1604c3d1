"""The ledger's metrics on a real registry: self-metrics follow the ledger's counters, the
monitor_off gauge appears only for a long enough gap and only for an hour, and the monthly
report's text only on the morning of the 1st (local time), computed from the ledger."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, generate_latest

from monitor.ledger import Ledger, OutageRow
from monitor.ledger.report import Plan
from monitor.ledger_metrics import LedgerCollector, MonthlyReport
from tests.support.clock import Clock

UTC = ZoneInfo("UTC")
DECEMBER = datetime(2026, 12, 1, tzinfo=UTC).timestamp()


def _sample(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for family in registry.collect()
            for s in family.samples if s.name == name}


def _ledger(tmp_path: Path, clock: Clock, off_for: float) -> Ledger:
    """A ledger that was last alive `off_for` seconds before clock.now."""
    restart = clock.now
    clock.now = restart - off_for - 7200
    first = Ledger(tmp_path / "ledger.db", clock=clock)
    first.open(start_thread=False)
    first.record_outage(OutageRow(clock.now + 60, clock.now + 120, "internet"))
    clock.now = restart - off_for
    first.close()
    clock.now = restart
    ledger = Ledger(tmp_path / "ledger.db", clock=clock)
    ledger.open(start_thread=False)
    return ledger


def test_monitor_off_gauge_for_an_hour_after_a_long_enough_gap(tmp_path: Path) -> None:
    clock = Clock(DECEMBER + 86400 * 3)
    ledger = _ledger(tmp_path, clock, off_for=600)
    registry = CollectorRegistry()
    LedgerCollector(ledger, registry, report_after=300, clock=clock)
    (labels, seconds), = _sample(registry, "homemon_monitor_off_recent_seconds").items()
    assert seconds == 600
    assert [key for key, _ in labels] == ["last_seen", "restarted"]
    assert _sample(registry, "homemon_ledger_rows_written_total")[()] > 0
    assert _sample(registry, "homemon_ledger_database_bytes")[()] > 0
    assert _sample(registry, "homemon_ledger_write_errors_total")[()] == 0
    clock.now += 3601
    assert _sample(registry, "homemon_monitor_off_recent_seconds") == {}
    short = CollectorRegistry()
    LedgerCollector(ledger, short, report_after=601, clock=Clock(DECEMBER + 86400 * 3))
    assert _sample(short, "homemon_monitor_off_recent_seconds") == {}
    assert b"homemon_monthly_report_info" not in generate_latest(registry)  # off by default
    ledger.close()


def test_monthly_report_text_on_the_morning_of_the_first(tmp_path: Path) -> None:
    clock = Clock(DECEMBER + 3600)  # 1 December 2026, 01:00 UTC
    ledger = _ledger(tmp_path, clock, off_for=60)
    registry = CollectorRegistry()
    LedgerCollector(ledger, registry, report_after=300, clock=clock,
                    monthly=MonthlyReport(ledger, Plan(100, 20), UTC))
    (labels, value), = _sample(registry, "homemon_monthly_report_info").items()
    found = dict(labels)
    assert value == 1
    assert found["month"] == "2026-11"
    assert found["text"].startswith("Internet report November 2026\nAvailable ")
    assert ": 1 outages, 1 min in all" in found["text"]  # the seeded minute on 30 November
    clock.now = DECEMBER + 12 * 3600  # noon: no longer
    assert _sample(registry, "homemon_monthly_report_info") == {}
    clock.now = DECEMBER + 86400 + 3600  # the 2nd
    assert _sample(registry, "homemon_monthly_report_info") == {}
    ledger.close()
