"""The user's config: YAML -> typed, validated dataclasses. Unknown keys are errors."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

from monitor.configschema import ByteSize, Duration, Problems, bounded, convert_dataclass

DEFAULT_PORT = 10132
CONFIG_ENV = "HOMEMON_CONFIG"
DEFAULT_CONFIG_FILE = "home-monitor.yml"
AQI_PARALLEL_REQUESTS = 4  # the aqi job's concurrent requests (monitor/jobs/aqi/job.py)
LATENCY_WINDOW_MARGIN = 0.5  # seconds the latency job keeps from its timeout for reporting


class ConfigError(Exception):
    """One or more problems, each already prefixed with the file and key path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --- what every job has --------------------------------------------------------------------


@dataclass
class JobConfig:
    """The part of a job's config the daemon reads: whether it runs, how often, how long at most.

    A job's config class subclasses this (redeclaring a field changes only its default) and is
    one field of `JobsConfig`; the field's name is the job's name and its key under `jobs:`.
    """

    enabled: bool = True
    interval: Duration = bounded(Duration(60), positive=True)
    timeout: Duration = bounded(Duration(30), positive=True)
    # the module with `build(env) -> Job`; None: monitor.jobs.<the job's name>
    module: ClassVar[str | None] = None

    def validate(self) -> list[tuple[str, str]]:
        """Problems as (key, message); the loader prefixes the file and `jobs.<name>.`."""
        return []


# --- latency -------------------------------------------------------------------------------


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
        labels = [target.label for target in self.targets if target is not None]
        for label in sorted({lbl for lbl in labels if labels.count(lbl) > 1}):
            problems.append(("targets", f"two targets share the label {label!r}; give one a name"))
        return problems


# --- bandwidth -----------------------------------------------------------------------------


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
    backend: BackendName = "speedtest"
    speedtest: SpeedtestConfig = field(default_factory=SpeedtestConfig)
    http: HttpSpeedConfig = field(default_factory=HttpSpeedConfig)
    cloudflare: CloudflareConfig = field(default_factory=lambda: CloudflareConfig())
    librespeed: LibreSpeedConfig = field(default_factory=lambda: LibreSpeedConfig())
    fallback: list[BackendName] = field(default_factory=list)
    cross_check: CrossCheckConfig | None = None
    plan: PlanConfig | None = None
    monthly_data_budget: ByteSize | None = bounded(None, positive=True)

    def validate(self) -> list[tuple[str, str]]:
        if not self.enabled:
            return []
        return check_backends(self.backend, self.fallback, self.cross_check,
                              bool(self.http.download_url or self.http.upload_url))


# --- iperf / EC2 ---------------------------------------------------------------------------


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
                                    f'got "{self.instance_id}"')]
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


# --- air quality ---------------------------------------------------------------------------


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
            problems.append(("url", f'expected "http://<device>/data.json", got "{self.url}"'))
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
            problems.append(("api_url", f'expected an http(s) URL, got "{self.api_url}"'))
        names = [local.name for local in self.local if local is not None]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(("local", f"two local sensors share the name {name!r}"))
        if self.backoff_max < self.backoff_initial:
            problems.append(("backoff_max", "must be at least backoff_initial"))
        sources = len(self.sensors) + (self.area is not None) + len(self.local)
        rounds = -(-sources // AQI_PARALLEL_REQUESTS)  # requests go 4 at a time
        if self.enabled and rounds * self.request_timeout >= self.timeout:
            problems.append(("timeout", f"{sources} sources of up to {self.request_timeout:g} s "
                             f"each, {AQI_PARALLEL_REQUESTS} at a time, can take "
                             f"{rounds * self.request_timeout:g} s: raise timeout or lower "
                             f"request_timeout (or use an area instead of many sensor ids)"))
        return problems


# --- top level -----------------------------------------------------------------------------


@dataclass
class JobsConfig:
    """The job registry: one field per job, named as the job, typed with its config class."""

    latency: LatencyConfig = field(default_factory=LatencyConfig)
    bandwidth: BandwidthConfig = field(default_factory=BandwidthConfig)
    iperf: IperfConfig = field(default_factory=IperfConfig)
    aqi: AqiConfig = field(default_factory=AqiConfig)


@dataclass
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    # auto: text for a person at a terminal, JSON lines (for Loki) when stdout is not a TTY
    format: Literal["auto", "json", "text"] = "auto"


@dataclass
class Config:
    listen: str = f"0.0.0.0:{DEFAULT_PORT}"
    state_dir: str = "./state"
    log: LogConfig = field(default_factory=LogConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    # the file it came from, set by parse(); init=False: not a config key
    source: str = field(default="(defaults)", init=False, repr=False, compare=False)

    def validate(self) -> list[tuple[str, str]]:
        try:
            split_listen(self.listen)
        except ValueError as exc:
            return [("listen", str(exc))]
        return []

    @property
    def listen_address(self) -> tuple[str, int]:
        return split_listen(self.listen)

    def job(self, name: str) -> JobConfig:
        """The config of the job `name`; KeyError for a name that is no job."""
        return self.job_configs()[name]

    def job_configs(self) -> dict[str, JobConfig]:
        """Every job's config by name, in registry order (enabled or not)."""
        return job_configs(self.jobs)


# here, after Config: importing the bandwidth package imports monitor.jobs, which needs
# JobConfig and Config; job_configs(JobsConfig()) below needs these names
from monitor.jobs.bandwidth.backend_config import (  # noqa: E402
    BackendName,
    CloudflareConfig,
    CrossCheckConfig,
    LibreSpeedConfig,
    check_backends,
)


def job_configs(jobs: JobsConfig) -> dict[str, JobConfig]:
    found = {f.name: getattr(jobs, f.name) for f in fields(jobs)}
    return {name: config for name, config in found.items() if isinstance(config, JobConfig)}


JOB_NAMES = tuple(job_configs(JobsConfig()))  # the built-in jobs, for `once JOB`


def split_listen(text: str) -> tuple[str, int]:
    """'0.0.0.0:10132', '[::]:10132', ':10132', 'localhost:10132' -> (host, port)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f'expected "host:port" with a port from 1 to 65535, got "{text}"')
    host = host.strip("[]") or "0.0.0.0"
    if " " in host or "/" in host:
        raise ValueError(f'expected "host:port", got "{text}"')
    return host, int(port_text)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse(data: Any, source: str, kind: type[Config] = Config) -> Config:
    """Validate already-parsed YAML data; raises ConfigError naming `source` and key paths.
    `kind` is Config or a subclass with more jobs (tests register a job that way)."""
    problems = Problems()
    if data is None:
        problems.add("", "the file is empty; expected a mapping with keys such as listen, jobs")
    elif not isinstance(data, dict):
        problems.add("", f"expected a mapping at the top level, got a {type(data).__name__}")
    if problems:
        raise ConfigError([f"{source}: {problem}" for problem in problems])
    config: Config | None = convert_dataclass(kind, data, "", problems)
    if problems or config is None:
        raise ConfigError([f"{source}: {problem}" for problem in problems])
    config.source = source
    return config


def load_file(path: str | os.PathLike[str]) -> Config:
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{name}: (file): not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{name}: (file): cannot read: {exc.strerror}"]) from None
    try:
        text = raw.decode("utf-8")
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except UnicodeDecodeError:
        raise ConfigError([f"{name}: (file): not UTF-8 text; expected a YAML file"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{name}: {where}: invalid YAML: {problem}"]) from None
    return parse(data, name)


def resolve_path(explicit: str | None) -> str | None:
    """--config, else $HOMEMON_CONFIG, else ./home-monitor.yml if present, else None (defaults)."""
    if explicit:
        return explicit
    if os.environ.get(CONFIG_ENV):
        return os.environ[CONFIG_ENV]
    return DEFAULT_CONFIG_FILE if Path(DEFAULT_CONFIG_FILE).is_file() else None


def load(explicit: str | None = None) -> Config:
    path = resolve_path(explicit)
    return Config() if path is None else load_file(path)

