"""The latency job's config: `jobs.latency` (docs/latency.md)."""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from monitor.configschema import Duration, bounded
from monitor.jobconfig import JobConfig

WINDOW_MARGIN = 0.5  # seconds the job keeps from its timeout for reporting


@dataclass
class PingTarget:
    host: str
    name: str | None = None
    internet: bool | None = None  # None: decided from the address (private -> False)

    @classmethod
    def coerce(cls, value: Any) -> Any:
        return {"host": value} if isinstance(value, str) else value

    @property
    def label(self) -> str:
        return self.name or self.host

    @property
    def counts_for_internet(self) -> bool:
        if self.internet is not None:
            return self.internet
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            return True  # a DNS name: assume a public host
        return not (address.is_private or address.is_link_local or address.is_loopback)

    def validate(self) -> list[tuple[str, str]]:
        return [("host", "must not be empty")] if not self.host.strip() else []


@dataclass
class LatencyConfig(JobConfig):
    enabled: bool = True
    interval: Duration = bounded(Duration(15), positive=True)
    # the job waits for a first window of `count` requests until timeout - 0.5 s at most
    timeout: Duration = bounded(Duration(15), positive=True)
    targets: list[PingTarget] = field(
        default_factory=lambda: [PingTarget("1.1.1.1"), PingTarget("8.8.8.8"),
                                 PingTarget("9.9.9.9")]
    )
    count: int = bounded(5, min=1, max=1000)  # the fewest requests per target a run reports
    packet_interval: Duration = bounded(Duration(1), positive=True)  # each target's schedule
    packet_timeout: Duration = bounded(Duration(2), positive=True)
    outage_after: int = bounded(3, min=1, max=3600)  # consecutive silent slots
    privileged: Literal["auto", True, False] = "auto"

    def validate(self) -> list[tuple[str, str]]:
        problems = []
        if self.enabled and not self.targets:
            problems.append(("targets", "needs at least one target while the job is enabled"))
        labels = Counter(target.label for target in self.targets if target is not None)
        for label in sorted(label for label, seen in labels.items() if seen > 1):
            # a referenced label's repr names its source, not its content
            problems.append(("targets", f"two targets share the label {label!r}; give one a name"))
        return problems
