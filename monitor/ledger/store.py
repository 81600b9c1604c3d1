"""The ledger: an embedded SQLite database in state_dir holding what the daemon learns.

One writer: rows wait in a bounded memory buffer and a background thread writes them in one
transaction every `write_interval` (WAL, synchronous=NORMAL: no fsync per commit, so an SD card
sees a few small appends a minute). Every write also refreshes the last sign of life, so at the
next start the gap since then is known (a kill -9 or a power cut loses at most one interval).

A database that cannot be written (read-only directory, full disk) is counted and logged while
the rows stay in memory (up to `max_buffered_rows`, then the oldest are dropped and counted); a
corrupt one is moved aside with one log line and a fresh one started. Nothing here raises into
the daemon's measuring.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.ledger.config import LedgerConfig
from monitor.ledger.latency import HourAccumulator, MinuteAccumulator
from monitor.ledger.records import (
    MONITOR_OFF,
    AirQualityHour,
    DaemonEvent,
    LatencyMinute,
    LedgerRecord,
    LedgerStats,
    MonitorOff,
    OutageRow,
    SpeedTestRow,
)
from monitor.ledger.schema import MIGRATIONS, SchemaTooNew, migrate
from monitor.logs import event

log = logging.getLogger("monitor.ledger")

DAY = 86400.0
PAGE_SIZE = 1024  # a commit rewrites whole pages: small pages, fewer bytes per minute
PRUNE_EVERY = 3600.0
ERROR_LOG_EVERY = 600.0  # while writes keep failing, one log line per this many seconds

_INSERT = {
    "outage": "INSERT INTO outages (start, end, cause, detail) VALUES (?, ?, ?, ?)",
    "speed": "INSERT INTO speed_tests (at, job, backend, server, download_bps, upload_bps, "
             "latency_seconds, bytes_used, ok, error, against_plan) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "latency": "INSERT OR REPLACE INTO latency_minutes (minute, target, sent, received, "
               "rtt_mean, rtt_p95, jitter) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "air_quality": "INSERT OR REPLACE INTO air_quality_hours (hour, sensor, pm25, pm10, samples) "
           "VALUES (?, ?, ?, ?, ?)",
    "daemon": "INSERT INTO daemon_events (at, kind, version) VALUES (?, ?, ?)",
}


@dataclass(frozen=True)
class Retention:
    events: float = 400 * DAY
    latency_minutes: float = 40 * DAY
    air_quality_hours: float = 400 * DAY


@dataclass
class MonthRows:
    """Everything the report reads for [start, end): outages overlapping it, the rest inside."""

    start: float
    end: float
    outages: list[OutageRow] = field(default_factory=list)
    speed_tests: list[SpeedTestRow] = field(default_factory=list)
    latency: list[LatencyMinute] = field(default_factory=list)  # only with full=True
    air_quality: list[AirQualityHour] = field(default_factory=list)
    daemon_events: list[DaemonEvent] = field(default_factory=list)
    # (minute, sent, received, rtt_mean) of every target-minute: what the report's hourly
    # figures need, as plain tuples (a month of three targets is 134 000 of them)
    latency_points: list[tuple[int, int, int, float | None]] = field(default_factory=list)


@dataclass(frozen=True)
class LatencySlot:
    """One target's minutes within a chart slot: summed counts, mean of the minute means
    (weighted by replies), the highest minute p95 and the mean jitter."""

    start: int
    target: str
    sent: int
    received: int
    rtt_mean: float | None
    rtt_p95_max: float | None
    jitter: float | None


@dataclass
class Series24h:
    since: float
    latency: list[LatencySlot]
    speed_tests: list[SpeedTestRow]
    outages: list[OutageRow]
    air_quality: list[AirQualityHour]


def _is_corrupt(exc: sqlite3.Error | SchemaTooNew) -> bool:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    return code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or isinstance(
        exc, SchemaTooNew)


def connect(path: Path, migrations: Sequence[str] = MIGRATIONS) -> sqlite3.Connection:
    """Open (creating if needed) and migrate; raises sqlite3.Error, OSError or SchemaTooNew."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                 timeout=5.0)
    try:
        connection.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # only before the first table
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA journal_size_limit = 1048576")
        migrate(connection, migrations)
    except BaseException:
        connection.close()
        raise
    return connection


class Reader:
    """Reads the ledger file; usable without a writer (the `report` and `backup` commands)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # one read-only connection, shared under a lock: opening one per read costs more than
        # the status page's whole query; reopened when the file was replaced (moved aside)
        self._read_lock = threading.Lock()
        self._read_connection: sqlite3.Connection | None = None
        self._read_inode: int | None = None

    def _reader(self) -> sqlite3.Connection | None:
        try:
            inode = self.path.stat().st_ino
        except OSError:
            inode = None
        if self._read_connection is not None and inode == self._read_inode:
            return self._read_connection
        self.close_reader()
        if inode is None:
            return None
        try:
            self._read_connection = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0,
                check_same_thread=False)
        except sqlite3.Error:
            return None
        self._read_inode = inode
        return self._read_connection

    def close_reader(self) -> None:
        if self._read_connection is not None:
            self._read_connection.close()
            self._read_connection = None

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            connection = self._reader()
            if connection is None:
                return []
            try:
                return connection.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                self.close_reader()
                event(log, logging.WARNING, "ledger: read failed", path=str(self.path),
                      error=str(exc))
                return []

    def outages(self, since: float, until: float) -> list[OutageRow]:
        """Outages overlapping [since, until), oldest first; one still going on counts."""
        rows = self._query("SELECT start, end, cause, detail FROM outages WHERE start < ? AND "
                           "(end IS NULL OR end > ?) ORDER BY start", (until, since))
        return [OutageRow(*row) for row in rows]

    def speed_tests(self, since: float, until: float) -> list[SpeedTestRow]:
        rows = self._query(
            "SELECT at, job, backend, server, download_bps, upload_bps, latency_seconds, "
            "bytes_used, ok, error, against_plan FROM speed_tests WHERE at >= ? AND at < ? "
            "ORDER BY at", (since, until))
        return [SpeedTestRow(at=row[0], job=row[1], backend=row[2], server=row[3],
                             download_bps=row[4], upload_bps=row[5], latency_seconds=row[6],
                             bytes_used=row[7], ok=bool(row[8]), error=row[9],
                             against_plan=bool(row[10])) for row in rows]

    def latency_minutes(self, since: float, until: float) -> list[LatencyMinute]:
        rows = self._query(
            "SELECT minute, target, sent, received, rtt_mean, rtt_p95, jitter FROM "
            "latency_minutes WHERE minute >= ? AND minute < ? ORDER BY minute, target",
            (since, until))
        return [LatencyMinute(*row) for row in rows]

    def air_quality_hours(self, since: float, until: float) -> list[AirQualityHour]:
        rows = self._query("SELECT hour, sensor, pm25, pm10, samples FROM air_quality_hours WHERE "
                           "hour >= ? AND hour < ? ORDER BY hour, sensor", (since, until))
        return [AirQualityHour(*row) for row in rows]

    def daemon_events(self, since: float, until: float) -> list[DaemonEvent]:
        rows = self._query("SELECT at, kind, version FROM daemon_events WHERE at >= ? AND "
                           "at < ? ORDER BY at", (since, until))
        return [DaemonEvent(*row) for row in rows]

    def last_seen(self) -> float | None:
        rows = self._query("SELECT last_seen FROM life WHERE id = 1")
        return float(rows[0][0]) if rows else None

    def latency_slots(self, since: float, until: float, slot: int = 300) -> list[LatencySlot]:
        """Per target and `slot` seconds, summed in SQL: a day is 288 rows per target."""
        rows = self._query(
            "SELECT minute / ? * ? AS slot, target, sum(sent), sum(received), "
            "sum(rtt_mean * received) / nullif(sum(CASE WHEN rtt_mean IS NULL THEN 0 ELSE "
            "received END), 0), max(rtt_p95), avg(jitter) FROM latency_minutes "
            "WHERE minute >= ? AND minute < ? GROUP BY slot, target ORDER BY slot, target",
            (slot, slot, since, until))
        return [LatencySlot(*row) for row in rows]

    def latency_points(self, since: float, until: float) -> list[tuple[int, int, int,
                                                                       float | None]]:
        rows = self._query("SELECT minute, sent, received, rtt_mean FROM latency_minutes "
                           "WHERE minute >= ? AND minute < ?", (since, until))
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    def database_bytes(self) -> int:
        """The file and its write-ahead log, as they are on disk now."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += self.path.with_name(self.path.name + suffix).stat().st_size
        return total

    def first_seen(self) -> float | None:
        """The ledger's first sign of life still kept (its oldest start)."""
        rows = self._query("SELECT min(at) FROM daemon_events")
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    def series_24h(self, now: float) -> Series24h:
        """The status page's history: the last 24 h of every kind."""
        since = now - DAY
        return Series24h(since, self.latency_slots(since - since % 300, now + 60),
                         self.speed_tests(since, now + 1), self.outages(since, now + 1),
                         self.air_quality_hours(since - 3600, now + 1))

    def outage_list(self, since: float, until: float) -> list[OutageRow]:
        """Newest first, as the page lists them."""
        return sorted(self.outages(since, until), key=lambda o: o.start, reverse=True)

    def month_rows(self, start: float, end: float, full: bool = False) -> MonthRows:
        """`full`: also every latency minute as a row (the CSV); the figures need only
        latency_points."""
        return MonthRows(start, end, self.outages(start, end), self.speed_tests(start, end),
                         self.latency_minutes(start, end) if full else [],
                         self.air_quality_hours(start, end), self.daemon_events(start, end),
                         self.latency_points(start, end))

    def backup(self, target: Path) -> None:
        """A consistent copy with SQLite's online backup API (the daemon may keep writing)."""
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no ledger here")
        source = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                 timeout=10.0)
        destination = sqlite3.connect(target)
        try:
            source.backup(destination)
            # a single file, openable without its -wal: switch the copy to a rollback journal
            destination.execute("PRAGMA journal_mode = DELETE")
        finally:
            destination.close()
            source.close()


class Ledger(Reader):
    """The daemon's ledger: `open()` at start, `record_*()` from any thread, `close()` at stop."""

    def __init__(self, path: Path, *, write_interval: float = 30.0,
                 retention: Retention | None = None, max_buffered_rows: int = 200_000,
                 version: str = "", clock: Callable[[], float] = time.time,
                 migrations: Sequence[str] = MIGRATIONS) -> None:
        super().__init__(path)
        self.write_interval = write_interval
        self.retention = retention or Retention()
        self.max_buffered_rows = max_buffered_rows
        self.version = version
        self.clock = clock
        self.migrations = migrations
        self.stats = LedgerStats()
        self._lock = threading.Lock()  # the buffer and the accumulator
        self._write_lock = threading.Lock()  # one writer at a time: the thread, flush, close
        self._pending: deque[tuple[str, tuple[Any, ...]]] = deque()
        self._minutes = MinuteAccumulator()
        self._hours = HourAccumulator()
        self._connection: sqlite3.Connection | None = None
        self._monitor_off: MonitorOff | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = -float("inf")
        self._failing_since: float | None = None
        self._last_error_log = -float("inf")

    @classmethod
    def from_config(cls, config: LedgerConfig, state_dir: Path, version: str = "",
                    clock: Callable[[], float] = time.time) -> Ledger:
        retention = Retention(config.retention.events, config.retention.latency_minutes,
                              config.retention.air_quality_hours)
        return cls(state_dir / config.file, write_interval=config.write_interval,
                   retention=retention, max_buffered_rows=config.max_buffered_rows,
                   version=version, clock=clock)

    # --- life cycle ---------------------------------------------------------------------------

    def open(self, start_thread: bool = True) -> MonitorOff | None:
        """Connect, note the gap since the last sign of life as a monitor_off outage, record
        the start. Returns that gap (None on a first start or a database just started fresh)."""
        now = self.clock()
        self._connection = self._connect()
        if self._connection is not None:
            self._monitor_off = self._gap(self._connection, now)
        if self._monitor_off is not None:
            self.record_outage(OutageRow(self._monitor_off.last_seen, now, MONITOR_OFF))
        self._add("daemon", (now, "start", self.version))
        self.flush()
        if start_thread:
            self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
            self._thread.start()
        return self._monitor_off

    def monitor_off(self) -> MonitorOff | None:
        """The gap found at this start, for the daemon to report when it is long enough."""
        return self._monitor_off

    def close(self) -> None:
        """Record the stop and write everything still in memory (called on SIGTERM)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        now = self.clock()
        self._add("daemon", (now, "stop", self.version))
        if not self.flush(final_minutes=True):
            event(log, logging.ERROR, "ledger: rows lost at stop, the database could not be "
                  "written", path=str(self.path), rows=self.stats.buffered,
                  error=self.stats.last_error)
        with self._write_lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
        with self._read_lock:
            self.close_reader()

    def _run(self) -> None:
        while not self._stop.wait(self.write_interval):
            self.flush()

    # --- recording (any thread, never blocks on the disk) -------------------------------------

    def record(self, row: LedgerRecord) -> None:
        """Any record a card hands over (monitor/cards.py `ledger_rows`)."""
        if isinstance(row, OutageRow):
            self.record_outage(row)
        elif isinstance(row, SpeedTestRow):
            self.record_speed_test(row)
        elif isinstance(row, LatencyMinute):
            self.record_latency_minute(row)
        elif isinstance(row, AirQualityHour):
            self.record_air_quality_hour(row)
        else:
            self.record_air_quality_sample(row.sensor, row.at, row.pm25, row.pm10)

    def record_outage(self, row: OutageRow) -> None:
        self._add("outage", (row.start, row.end, row.cause, row.detail))

    def record_speed_test(self, row: SpeedTestRow) -> None:
        self._add("speed", (row.at, row.job, row.backend, row.server, row.download_bps,
                            row.upload_bps, row.latency_seconds, row.bytes_used, int(row.ok),
                            row.error, int(row.against_plan)))

    def record_probe(self, target: str, at: float, rtt_seconds: float | None) -> None:
        """One echo request: its RTT, or None when no reply came back in time."""
        with self._lock:
            self._minutes.add(target, at, rtt_seconds)

    def record_latency_minute(self, row: LatencyMinute) -> None:
        """An already summarised minute (tests, imports); probes go through record_probe."""
        self._add("latency", _latency_args(row))

    def record_air_quality_sample(self, sensor: str, at: float, pm25: float | None,
                          pm10: float | None) -> None:
        """One reading of a sensor; stored as the hour's mean (and count)."""
        with self._lock:
            self._hours.add(sensor, at, pm25, pm10)

    def record_air_quality_hour(self, row: AirQualityHour) -> None:
        self._add("air_quality", _air_quality_args(row))

    def _add(self, kind: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            self._pending.append((kind, args))
            self._bound()

    def _bound(self) -> None:
        while len(self._pending) > self.max_buffered_rows:
            self._pending.popleft()
            self.stats.rows_dropped += 1

    # --- writing ------------------------------------------------------------------------------

    def flush(self, final_minutes: bool = False) -> bool:
        """Write what is buffered now; False when it stays buffered (the reason is logged)."""
        with self._write_lock:
            now = self.clock()
            with self._lock:
                batch = list(self._pending)
                self._pending.clear()
                latency = [("latency", _latency_args(row)) for row in self._minutes.rows()]
                air = [("air_quality", _air_quality_args(row)) for row in self._hours.rows()]
                # minutes (hours) over for a write interval get no more probes (readings):
                # this is their last row
                closing = float("inf") if final_minutes else now - self.write_interval
                self._minutes.close(closing)
                self._hours.close(closing)
            if self._connection is None:
                self._connection = self._connect()
            ok = self._connection is not None and self._write(batch + latency + air, now)
            with self._lock:
                if not ok:
                    # a minute or hour still open is written whole next time: keep closed ones
                    closed = [row for row in latency
                              if not self._minutes.is_open(row[1][1], row[1][0])]
                    closed += [row for row in air if not self._hours.is_open(row[1][1], row[1][0])]
                    self._pending.extendleft(reversed(batch + closed))
                    self._bound()
                self.stats.buffered = len(self._pending)
                self.stats.late = self._minutes.late + self._hours.late
            return ok

    def _write(self, rows: list[tuple[str, tuple[Any, ...]]], now: float) -> bool:
        assert self._connection is not None
        connection = self._connection
        try:
            connection.execute("BEGIN")
            try:
                for kind in _INSERT:
                    args = [row for row_kind, row in rows if row_kind == kind]
                    if args:
                        connection.executemany(_INSERT[kind], args)
                connection.execute("INSERT INTO life (id, last_seen) VALUES (1, ?) ON CONFLICT "
                                   "(id) DO UPDATE SET last_seen = excluded.last_seen "
                                   "WHERE excluded.last_seen > life.last_seen", (now,))
                if now - self._last_prune >= PRUNE_EVERY:
                    self._prune(connection, now)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, now)
            return False
        self.stats.rows_written += len(rows)
        self.stats.last_commit_at = now
        self.stats.commits += 1
        if self._failing_since is not None:
            event(log, logging.INFO, "ledger: writing again", path=str(self.path),
                  failed_for_seconds=round(now - self._failing_since))
            self._failing_since = None
        return True

    def _prune(self, connection: sqlite3.Connection, now: float) -> None:
        events = now - self.retention.events
        connection.execute("DELETE FROM outages WHERE end IS NOT NULL AND end < ?", (events,))
        connection.execute("DELETE FROM speed_tests WHERE at < ?", (events,))
        connection.execute("DELETE FROM daemon_events WHERE at < ?", (events,))
        connection.execute("DELETE FROM latency_minutes WHERE minute < ?",
                           (now - self.retention.latency_minutes,))
        connection.execute("DELETE FROM air_quality_hours WHERE hour < ?",
                           (now - self.retention.air_quality_hours,))
        self._last_prune = now

    def _failed(self, exc: BaseException, now: float) -> None:
        self.stats.write_errors += 1
        self.stats.last_error = str(exc)
        if isinstance(exc, sqlite3.Error) and _is_corrupt(exc):
            self._move_aside(str(exc))
            return
        if self._failing_since is None:
            self._failing_since = now
        if now - self._last_error_log >= ERROR_LOG_EVERY:
            self._last_error_log = now
            event(log, logging.ERROR, "ledger: cannot write; rows kept in memory",
                  path=str(self.path), error=str(exc), buffered=len(self._pending),
                  write_errors=self.stats.write_errors, dropped=self.stats.rows_dropped)

    # --- opening, and what to do with a database that cannot be used ---------------------------

    def _connect(self) -> sqlite3.Connection | None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return connect(self.path, self.migrations)
        except (sqlite3.Error, SchemaTooNew) as exc:
            if _is_corrupt(exc):
                self._move_aside(str(exc))
                try:
                    return connect(self.path, self.migrations)
                except (sqlite3.Error, OSError) as again:
                    self._failed(again, self.clock())
                    return None
            self._failed(exc, self.clock())
        except OSError as exc:
            self._failed(exc, self.clock())
        return None

    def _move_aside(self, reason: str) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self.clock()))
        moved = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            self.path.rename(moved)
            for suffix in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    side.rename(moved.with_name(moved.name + suffix))
        except OSError as exc:
            event(log, logging.ERROR, "ledger: unusable database could not be moved aside",
                  path=str(self.path), reason=reason, error=exc.strerror)
            return
        self.stats.databases_moved_aside += 1
        event(log, logging.ERROR, "ledger: database unusable; moved aside, starting a fresh one",
              path=str(self.path), moved_to=str(moved), reason=reason)

    def _gap(self, connection: sqlite3.Connection, now: float) -> MonitorOff | None:
        try:
            life = connection.execute("SELECT last_seen FROM life WHERE id = 1").fetchone()
            last = connection.execute(
                "SELECT at, kind FROM daemon_events ORDER BY at DESC LIMIT 1").fetchone()
        except sqlite3.Error:
            return None
        if life is None or life[0] >= now:
            return None
        clean = last is not None and last[1] == "stop" and last[0] >= life[0] - 1
        return MonitorOff(float(life[0]), now, clean)


def _latency_args(row: LatencyMinute) -> tuple[Any, ...]:
    return (row.minute, row.target, row.sent, row.received, row.rtt_mean, row.rtt_p95,
            row.jitter)


def _air_quality_args(row: AirQualityHour) -> tuple[Any, ...]:
    return (row.hour, row.sensor, row.pm25, row.pm10, row.samples)
