"""The latency job (placeholder until its issue lands)."""

from __future__ import annotations

import threading
from typing import Any

from monitor.jobs.base import JobEnv


class _Placeholder:
    name = "latency"
    uses_link = False

    def run(self, stop: threading.Event) -> dict[str, Any]:
        raise NotImplementedError("the latency job is not implemented yet")


def build(env: JobEnv) -> _Placeholder:
    return _Placeholder()
