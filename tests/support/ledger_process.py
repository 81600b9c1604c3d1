"""A stand-in daemon for the ledger's restart tests: opens the ledger, prints the monitor_off
gap it found as one JSON line, then records a probe every 0.1 s until SIGTERM (clean close)
or SIGKILL."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType

from monitor.ledger import Ledger


def main() -> None:
    path, write_interval = Path(sys.argv[1]), float(sys.argv[2])
    ledger = Ledger(path, write_interval=write_interval, version="test")
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    off = ledger.open()
    print(json.dumps({"monitor_off": None if off is None else asdict(off),
                      "seconds": None if off is None else off.seconds}), flush=True)
    while not stop.wait(0.1):
        ledger.record_probe("isp", time.time(), 0.012)
    ledger.close()


if __name__ == "__main__":
    main()
