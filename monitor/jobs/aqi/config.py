"""The aqi job's config: `jobs.aqi` (docs/aqi.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from monitor.configschema import Duration, bounded, describe_value
from monitor.jobconfig import JobConfig

PARALLEL_REQUESTS = 4  # concurrent requests (job.py)


@dataclass
class AreaConfig:
    latitude: float = bounded(min=-90, max=90)
    longitude: float = bounded(min=-180, max=180)
    radius_km: float = bounded(positive=True, max=100)


@dataclass
class LocalSensorConfig:
    name: str
    url: str
    # data.json carries no location; give one so the sensor shows on Grafana's map
    latitude: float | None = bounded(None, min=-90, max=90)
    longitude: float | None = bounded(None, min=-180, max=180)
    indoor: bool | None = None

    def validate(self) -> list[tuple[str, str]]:
        problems = []
        if not self.name.strip():
            problems.append(("name", "must not be empty"))
        if not self.url.startswith(("http://", "https://")):
            problems.append(("url", 'expected "http://<device>/data.json", '
                             f"got {describe_value(self.url)}"))
        return problems


@dataclass
class AqiConfig(JobConfig):
    enabled: bool = False
    interval: Duration = bounded(Duration(300), positive=True)
    timeout: Duration = bounded(Duration(60), positive=True)
    request_timeout: Duration = bounded(Duration(15), positive=True)
    api_url: str = "https://data.sensor.community"
    sensors: list[int] = bounded([])
    area: AreaConfig | None = None
    local: list[LocalSensorConfig] = bounded([])
    scales: list[Literal["uk_daqi", "us_epa", "eu_eaqi"]] = bounded(["uk_daqi"])
    stale_after: Duration = bounded(Duration(3600), positive=True)
    # after a 403/429/5xx a source waits backoff_initial, doubling per failure up to backoff_max
    backoff_initial: Duration = bounded(Duration(300), positive=True)
    backoff_max: Duration = bounded(Duration(3600), positive=True)

    def validate(self) -> list[tuple[str, str]]:
        problems = []
        if self.enabled and not (self.sensors or self.area or self.local):
            problems.append(("sensors", "the aqi job needs sensors, an area or a local sensor"))
        if not self.api_url.startswith(("http://", "https://")):
            problems.append(("api_url",
                             f"expected an http(s) URL, got {describe_value(self.api_url)}"))
        names = [local.name for local in self.local if local is not None]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(("local", f"two local sensors share the name {name!r}"))
        if self.backoff_max < self.backoff_initial:
            problems.append(("backoff_max", "must be at least backoff_initial"))
        sources = len(self.sensors) + (self.area is not None) + len(self.local)
        rounds = -(-sources // PARALLEL_REQUESTS)  # requests go 4 at a time
        if self.enabled and rounds * self.request_timeout >= self.timeout:
            problems.append(("timeout", f"{sources} sources of up to {self.request_timeout:g} s "
                             f"each, {PARALLEL_REQUESTS} at a time, can take "
                             f"{rounds * self.request_timeout:g} s: raise timeout or lower "
                             f"request_timeout (or use an area instead of many sensor ids)"))
        return problems
