"""The `ledger:` section: where the ledger lives, how often it writes, how long it keeps rows,
and the plan the ISP report compares against."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.configschema import Duration, bounded

DAY = 86400.0


@dataclass
class RetentionConfig:
    """How long each kind of row is kept; the writer prunes older ones about once an hour."""

    events: Duration = bounded(Duration(400 * DAY), min=35 * DAY)  # outages, tests, start/stop
    latency_minutes: Duration = bounded(Duration(40 * DAY), min=2 * DAY)
    air_quality_hours: Duration = bounded(Duration(400 * DAY), min=2 * DAY)


@dataclass
class ReportPlanConfig:
    """The contracted speeds; unset: the first job config with a `plan` (the speed test's),
    else no plan comparison."""

    download_mbps: float | None = bounded(None, positive=True)
    upload_mbps: float | None = bounded(None, positive=True)


@dataclass
class LedgerConfig:
    enabled: bool = True  # false: the daemon keeps no ledger (the report has nothing to read)
    file: str = "ledger.db"  # relative to state_dir (an absolute path is taken as it is)
    # rows wait in memory this long at most; a kill -9 or power cut loses at most this much
    write_interval: Duration = bounded(Duration(30), min=1, max=300)
    max_buffered_rows: int = bounded(200_000, min=1000)  # while the disk is full or read-only
    # a monitor_off gap at least this long goes to the phone (once wired into the daemon)
    monitor_off_report_after: Duration = bounded(Duration(300), min=0)
    monthly_report: bool = False  # the month's headline figures to the phone on the 1st
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    plan: ReportPlanConfig | None = None

    def validate(self) -> list[tuple[str, str]]:
        name = self.file.strip()
        if not name or name.endswith("/") or name in (".", ".."):
            return [("file", f'expected a file name such as "ledger.db", got "{self.file}"')]
        return []
