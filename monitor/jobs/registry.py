"""The job registry: one field of `JobsConfig` per job, typed with its config class.

The field's name is the job's name, its key under `jobs:` and its `job` label. Only the light
config classes are imported here; a job's other modules load when it is built (jobs/base.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.jobs.aqi.config import AqiConfig
from monitor.jobs.bandwidth.config import BandwidthConfig
from monitor.jobs.iperf.config import IperfConfig
from monitor.jobs.latency.config import LatencyConfig


@dataclass
class JobsConfig:
    """The job registry: one field per job, named as the job, typed with its config class."""

    latency: LatencyConfig = field(default_factory=LatencyConfig)
    bandwidth: BandwidthConfig = field(default_factory=BandwidthConfig)
    iperf: IperfConfig = field(default_factory=IperfConfig)
    aqi: AqiConfig = field(default_factory=AqiConfig)
