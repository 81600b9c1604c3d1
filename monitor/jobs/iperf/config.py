"""The iperf job's config: `jobs.iperf` (docs/iperf.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from monitor.configschema import Duration, bounded, describe_value
from monitor.jobconfig import JobConfig


@dataclass
class Ec2Config:
    instance_id: str
    region: str | None = None
    endpoint_url: str | None = None
    stop_orphaned: bool = True
    max_running: Duration = bounded(Duration(1200), positive=True)
    start_timeout: Duration = bounded(Duration(300), positive=True)
    stop_timeout: Duration = bounded(Duration(300), positive=True)

    def validate(self) -> list[tuple[str, str]]:
        if not self.instance_id.startswith("i-"):
            return [("instance_id", f'expected an id like "i-0123456789abcdef0", '
                                    f"got {describe_value(self.instance_id)}")]
        return []


@dataclass
class IperfConfig(JobConfig):
    enabled: bool = False
    interval: Duration = bounded(Duration(6 * 3600), positive=True)
    timeout: Duration = bounded(Duration(600), positive=True)
    duration: Duration = bounded(Duration(10), positive=True)
    omit: Duration = bounded(Duration(1), min=0)
    streams: int = bounded(4, min=1, max=128)
    port: int = bounded(5201, min=1, max=65535)
    directions: list[Literal["upload", "download"]] = bounded(["upload", "download"])
    host: str | None = None
    ec2: Ec2Config | None = None

    def validate(self) -> list[tuple[str, str]]:
        problems = []
        if self.enabled and self.ec2 is None and not self.host:
            problems.append(("ec2", "the iperf job needs ec2.instance_id or a fixed host"))
        if self.enabled and not self.directions:
            problems.append(("directions", "needs upload and/or download"))
        return problems
