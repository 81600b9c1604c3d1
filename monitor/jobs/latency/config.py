"""The latency job's config: `jobs.latency` (docs/latency.md)."""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from monitor.configschema import Duration, bounded, describe_value
from monitor.jobconfig import JobConfig

WINDOW_MARGIN = 0.5  # seconds the job keeps from its timeout for reporting


def _address_problem(key: str, value: str | None) -> list[tuple[str, str]]:
    if value is None:
        return []
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return [(key, f"expected an IP address, got {describe_value(value)}")]
    return []


@dataclass
class PathConfig:
    """Where the path to the internet runs: the home router and the ISP's first hop."""

    discover: bool = True
    # rediscover this often (and whenever the default route changes)
    refresh: Duration = bounded(Duration(3600), min=10)
    # pin the hops by hand: each pinned hop is used as it is (discovery finds only the others)
    gateway: str | None = None
    isp_hop: str | None = None
    # trace towards this address; None: the first internet target that is an IP address
    trace_to: str | None = None
    max_hops: int = bounded(10, min=2, max=30)
    # is the first hop a Docker host's bridge (not the router)? auto: running in a container on
    # its own network (monitor/jobs/latency/path.py, in_container)
    docker_bridge: Literal["auto", True, False] = "auto"

    def validate(self) -> list[tuple[str, str]]:
        return (_address_problem("gateway", self.gateway)
                + _address_problem("isp_hop", self.isp_hop)
                + _address_problem("trace_to", self.trace_to))


@dataclass
class DnsConfig:
    """Name lookups, continuously: through the system resolver and the listed resolvers."""

    enabled: bool = True
    interval: Duration = bounded(Duration(5), positive=True)
    timeout: Duration = bounded(Duration(2), positive=True)
    name: str = "example.com"
    system: bool = True  # look up through the system resolver (getaddrinfo)
    resolvers: list[str] = field(default_factory=list)  # IP addresses, asked directly (UDP 53)
    # consecutive failed checks (while pings answer) that make a DNS outage
    outage_after: int = bounded(2, min=1, max=1000)

    @classmethod
    def coerce(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value

    def validate(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if not self.name.strip():
            problems.append(("name", "must not be empty"))
        if self.enabled and not self.system and not self.resolvers:
            problems.append(("resolvers", "needs a resolver when `system: false`"))
        for index, resolver in enumerate(self.resolvers):
            problems += _address_problem(f"resolvers[{index}]", resolver)
        if self.timeout >= self.interval:
            problems.append(("timeout", "must be shorter than `interval`"))
        return problems


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
    path: PathConfig = field(default_factory=PathConfig)  # where it broke (docs/latency.md)
    dns: DnsConfig = field(default_factory=DnsConfig)

    def validate(self) -> list[tuple[str, str]]:
        problems = []
        if self.enabled and not self.targets:
            problems.append(("targets", "needs at least one target while the job is enabled"))
        labels = Counter(target.label for target in self.targets if target is not None)
        for label in sorted(label for label, seen in labels.items() if seen > 1):
            # a referenced label's repr names its source, not its content
            problems.append(("targets", f"two targets share the label {label!r}; give one a name"))
        return problems
