"""The ledger: what the daemon learns, kept in SQLite across restarts (see docs/ledger.md)."""

from monitor.ledger.records import (
    MONITOR_OFF,
    AirQualityHour,
    AirQualitySample,
    DaemonEvent,
    LatencyMinute,
    LedgerRecord,
    LedgerStats,
    MonitorOff,
    OutageRow,
    SpeedTestRow,
)
from monitor.ledger.store import (
    LatencySlot,
    Ledger,
    MonthRows,
    Reader,
    Retention,
    Series24h,
)

__all__ = ["MONITOR_OFF", "AirQualityHour", "AirQualitySample", "DaemonEvent", "LatencyMinute",
           "LatencySlot", "Ledger", "LedgerRecord", "LedgerStats", "MonitorOff", "MonthRows",
           "OutageRow", "Reader", "Retention", "Series24h", "SpeedTestRow"]
