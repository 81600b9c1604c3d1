"""The bandwidth job's config: `jobs.bandwidth` (docs/bandwidth.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from monitor.configschema import ByteSize, Duration, bounded
from monitor.jobconfig import JobConfig


@dataclass
class SpeedtestConfig:
    server_id: int | None = None
    secure: bool = True
    # seconds per direction; None: what speedtest.net's configuration says (10 s today)
    duration: Duration | None = bounded(None, positive=True)


@dataclass
class HttpSpeedConfig:
    download_url: str | None = None
    upload_url: str | None = None
    streams: int = bounded(4, min=1, max=32)
    duration: Duration = bounded(Duration(10), positive=True)
    warmup: Duration = bounded(Duration(2), min=0)
    max_bytes: ByteSize = bounded(ByteSize(200_000_000), positive=True)
    io_timeout: Duration = bounded(Duration(10), positive=True)  # per socket operation


@dataclass
class PlanConfig:
    download_mbps: float | None = bounded(None, positive=True)
    upload_mbps: float | None = bounded(None, positive=True)


@dataclass
class BandwidthConfig(JobConfig):
    enabled: bool = True
    interval: Duration = bounded(Duration(3600), positive=True)
    timeout: Duration = bounded(Duration(120), positive=True)
    backend: Literal["speedtest", "http"] = "speedtest"
    speedtest: SpeedtestConfig = field(default_factory=SpeedtestConfig)
    http: HttpSpeedConfig = field(default_factory=HttpSpeedConfig)
    plan: PlanConfig | None = None
    monthly_data_budget: ByteSize | None = bounded(None, positive=True)

    def validate(self) -> list[tuple[str, str]]:
        if self.enabled and self.backend == "http" and not (
            self.http.download_url or self.http.upload_url
        ):
            return [("http", "backend http needs download_url and/or upload_url")]
        return []
