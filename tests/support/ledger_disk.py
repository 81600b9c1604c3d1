"""Run inside `unshare -m` (a private mount namespace): a tiny tmpfs as the state directory,
filled up or remounted read-only under a live ledger. Prints one JSON object with what the
ledger did; the log lines go to stderr."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from monitor.ledger import Ledger, OutageRow, SpeedTestRow
from monitor.logs import setup

T0 = 1_790_000_000.0


def mount(state: Path, options: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(state)], check=True)


def fill(state: Path) -> Path:
    filler = state / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 1024)
    except OSError:
        pass  # ENOSPC: the disk is full
    finally:
        os.close(fd)
    return filler


def rows(ledger: Ledger, start: int, count: int) -> None:
    for i in range(start, start + count):
        ledger.record_speed_test(SpeedTestRow(T0 + i, "bandwidth", "http", "server-1",
                                              9e7, 2e7, 0.01, 10**8))


def full_disk(state: Path) -> dict[str, object]:
    mount(state, "size=2m")
    ledger = Ledger(state / "ledger.db", write_interval=1)
    ledger.open(start_thread=False)
    rows(ledger, 0, 10)
    first = ledger.flush()
    filler = fill(state)
    rows(ledger, 10, 3000)
    full = [ledger.flush() for _ in range(3)]
    errors, buffered = ledger.stats.write_errors, ledger.stats.buffered
    filler.unlink()
    after = ledger.flush()
    ledger.close()
    return {"first": first, "full": full, "errors": errors, "buffered": buffered,
            "after": after, "stored": len(ledger.speed_tests(0, 2e9)),
            "last_error": ledger.stats.last_error}


def read_only(state: Path) -> dict[str, object]:
    """A state directory that is a read-only mount at start (a volume mounted :ro), once with
    a ledger from an earlier run in it and once empty; writable again later."""
    mount(state, "size=4m")
    earlier = Ledger(state / "ledger.db", write_interval=1)
    earlier.open(start_thread=False)
    earlier.record_outage(OutageRow(T0, T0 + 3, "internet"))
    earlier.close()
    results: dict[str, object] = {}
    for name, path in (("existing", state / "ledger.db"), ("fresh", state / "new" / "l.db")):
        subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
        ledger = Ledger(path, write_interval=1)
        ledger.open(start_thread=False)
        ledger.record_outage(OutageRow(T0 + 10, T0 + 13, "internet"))
        blocked = ledger.flush()
        errors, buffered = ledger.stats.write_errors, ledger.stats.buffered
        subprocess.run(["mount", "-o", "remount,rw", str(state)], check=True)
        after = ledger.flush()
        ledger.close()
        results[name] = {"blocked": blocked, "errors": errors, "buffered": buffered,
                         "after": after, "stored": len(ledger.outages(0, 2e9))}
        ledger.close_reader()  # its open files would keep the remount below busy
    return results


def main() -> None:
    setup("info", "json", sys.stderr)
    logging.getLogger("monitor.ledger").setLevel(logging.INFO)
    case, state = sys.argv[1], Path(sys.argv[2])
    result = full_disk(state) if case == "full" else read_only(state)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
