"""The ledger's tables, versioned with PRAGMA user_version.

MIGRATIONS[i] takes a database from version i to i + 1; a new version appends a script and
never edits an old one, so every database ever written can be brought up to date.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

V1 = """
CREATE TABLE outages (
    start REAL NOT NULL,
    end REAL,
    cause TEXT
);
CREATE INDEX outages_by_start ON outages (start);
CREATE TABLE speed_tests (
    at REAL NOT NULL,
    job TEXT NOT NULL,
    backend TEXT NOT NULL,
    server TEXT NOT NULL,
    download_bps REAL,
    upload_bps REAL,
    latency_seconds REAL,
    bytes_used INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT,
    against_plan INTEGER NOT NULL
);
CREATE INDEX speed_tests_by_at ON speed_tests (at);
CREATE TABLE latency_minutes (
    minute INTEGER NOT NULL,
    target TEXT NOT NULL,
    sent INTEGER NOT NULL,
    received INTEGER NOT NULL,
    rtt_mean REAL,
    rtt_p95 REAL,
    jitter REAL,
    PRIMARY KEY (minute, target)
) WITHOUT ROWID;
CREATE TABLE air_quality_hours (
    hour INTEGER NOT NULL,
    sensor TEXT NOT NULL,
    pm25 REAL,
    pm10 REAL,
    samples INTEGER NOT NULL,
    PRIMARY KEY (hour, sensor)
) WITHOUT ROWID;
CREATE TABLE daemon_events (
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    version TEXT NOT NULL
);
CREATE TABLE life (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seen REAL NOT NULL
);
"""

# where an outage broke, in words (the latency job's cause detail: what answered, what not)
V2 = """
ALTER TABLE outages ADD COLUMN detail TEXT;
"""

MIGRATIONS: tuple[str, ...] = (V1, V2)


class SchemaTooNew(Exception):
    """The file was written by a newer home-monitor: moved aside like a corrupt one, kept."""


def migrate(connection: sqlite3.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Bring the database to len(migrations); each step in its own transaction."""
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if version > len(migrations):
        raise SchemaTooNew(f"schema version {version}, this program knows {len(migrations)}")
    for index in range(version, len(migrations)):
        # executescript commits first; the BEGIN makes the step and its version bump one unit
        connection.executescript(
            f"BEGIN;\n{migrations[index]}\nPRAGMA user_version = {index + 1};\nCOMMIT;")
    return len(migrations)
