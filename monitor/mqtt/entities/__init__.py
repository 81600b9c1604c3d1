"""Each job's Home Assistant entities, one module per job.

TO MOVE: after the job cards land (monitor/jobs/<name>/card.py), each module here becomes its
card's `entities(config)`, and this registry becomes the card registry.
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.config import Config
from monitor.mqtt.entities import aqi, bandwidth, iperf, latency
from monitor.mqtt.entity import Entity

ENTITIES: dict[str, Callable[[Config], list[Entity]]] = {
    "latency": latency.entities,
    "bandwidth": bandwidth.entities,
    "iperf": iperf.entities,
    "aqi": aqi.entities,
}


def job_entities(job: str, config: Config) -> list[Entity]:
    """A job's entities under `config`; none for a job that declares none."""
    declare = ENTITIES.get(job)
    return declare(config) if declare is not None else []
