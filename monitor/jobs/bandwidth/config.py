"""The bandwidth job's config: `jobs.bandwidth` (docs/bandwidth.md): the backends (speedtest,
http, cloudflare, librespeed), the fallback order and the cross-check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from monitor.configschema import ByteSize, Duration, bounded
from monitor.jobconfig import JobConfig

BackendName = Literal["speedtest", "http", "cloudflare", "librespeed"]

CLOUDFLARE_URL = "https://speed.cloudflare.com"
# the list LibreSpeed's own multi-server page and CLI read
LIBRESPEED_SERVER_LIST = "https://librespeed.org/backend-servers/servers.php"


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
class CloudflareConfig:
    # the host serving /__down?bytes=N and /__up (Cloudflare's, or a stand-in/self-hosted copy)
    url: str = CLOUDFLARE_URL


@dataclass
class LibreSpeedConfig:
    # a LibreSpeed backend's base URL (the folder holding garbage.php, empty.php, getIP.php);
    # None: the nearest server of `server_list`
    url: str | None = None
    server_list: str = LIBRESPEED_SERVER_LIST


@dataclass
class CrossCheckConfig:
    """Every `interval`, after a successful test, run `backend` straight after and export its
    figures divided by the first backend's."""

    backend: BackendName
    interval: Duration = bounded(Duration(24 * 3600), positive=True)


@dataclass
class PlanConfig:
    download_mbps: float | None = bounded(None, positive=True)
    upload_mbps: float | None = bounded(None, positive=True)


@dataclass
class BandwidthConfig(JobConfig):
    enabled: bool = True
    interval: Duration = bounded(Duration(3600), positive=True)
    timeout: Duration = bounded(Duration(120), positive=True)
    backend: BackendName = "speedtest"
    speedtest: SpeedtestConfig = field(default_factory=SpeedtestConfig)
    http: HttpSpeedConfig = field(default_factory=HttpSpeedConfig)
    cloudflare: CloudflareConfig = field(default_factory=CloudflareConfig)
    librespeed: LibreSpeedConfig = field(default_factory=LibreSpeedConfig)
    fallback: list[BackendName] = field(default_factory=list)
    cross_check: CrossCheckConfig | None = None
    plan: PlanConfig | None = None
    monthly_data_budget: ByteSize | None = bounded(None, positive=True)

    def validate(self) -> list[tuple[str, str]]:
        if not self.enabled:
            return []
        problems = []
        used = [self.backend, *self.fallback]
        if len(set(used)) != len(used):
            problems.append(("fallback", "lists a backend twice (or the main `backend` again)"))
        check = self.cross_check
        if check is not None and check.backend == self.backend:
            problems.append(("cross_check.backend", f"must differ from backend ({self.backend})"))
        if "http" in [*used, *([check.backend] if check else [])] and not (
                self.http.download_url or self.http.upload_url):
            problems.append(("http", "backend http needs download_url and/or upload_url"))
        return problems
