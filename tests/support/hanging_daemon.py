"""A real daemon process whose latency job hangs and ignores its stop event.

Usage: python -m tests.support.hanging_daemon CONFIG STARTED_FLAG_FILE
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from monitor import logs
from monitor.config import load_file
from monitor.daemon import Daemon
from tests.support.fake_jobs import HangingJob


def main() -> int:
    config = load_file(sys.argv[1])
    flag = Path(sys.argv[2])
    logs.setup("debug", "json")
    job = HangingJob("latency", obey_stop=False)
    daemon = Daemon(config, jobs={"latency": job})

    def announce() -> None:
        job.started.wait()
        flag.write_text("started")

    threading.Thread(target=announce, daemon=True).start()
    return daemon.run_until_signalled()


if __name__ == "__main__":
    raise SystemExit(main())
