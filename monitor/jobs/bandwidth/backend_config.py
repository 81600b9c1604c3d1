"""Config of the public speed-test backends (Cloudflare, LibreSpeed), the fallback order and the
cross-check. Kept apart from BandwidthConfig, which only holds one field line for each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from monitor.configschema import Duration, bounded

BackendName = Literal["speedtest", "http", "cloudflare", "librespeed"]

CLOUDFLARE_URL = "https://speed.cloudflare.com"
# the list LibreSpeed's own multi-server page and CLI read
LIBRESPEED_SERVER_LIST = "https://librespeed.org/backend-servers/servers.php"


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


def check_backends(primary: str, fallback: list[BackendName],
                   cross_check: CrossCheckConfig | None, http_urls: bool
                   ) -> list[tuple[str, str]]:
    """Problems as (key, message) for BandwidthConfig.validate."""
    problems = []
    used = [primary, *fallback]
    if len(set(used)) != len(used):
        problems.append(("fallback", "lists a backend twice (or the main `backend` again)"))
    if cross_check is not None and cross_check.backend == primary:
        problems.append(("cross_check.backend", f"must differ from backend ({primary})"))
    if "http" in used + ([cross_check.backend] if cross_check else []) and not http_urls:
        problems.append(("http", "backend http needs download_url and/or upload_url"))
    return problems
