"""Config of the latency job's path discovery (`path:`) and DNS check (`dns:`).

Both are fields of LatencyConfig (`jobs.latency.path`, `jobs.latency.dns`); they live here so
that the latency package owns its whole slice.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Literal

from monitor.configschema import Duration, bounded


def _address_problem(key: str, value: str | None) -> list[tuple[str, str]]:
    if value is None:
        return []
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return [(key, f"expected an IP address, got {value!r}")]
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
