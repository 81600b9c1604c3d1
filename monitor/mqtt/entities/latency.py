"""The latency job's entities (TO MOVE onto monitor/jobs/latency/card.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from monitor.config import Config
from monitor.mqtt.entity import Entity, Reading, gauge_value, number, on_off, slug


def _target(label: str, figure: str, scale: float = 1.0) -> Any:
    def value(reading: Reading) -> float | None:
        figures = (reading.summary.get("targets") or {}).get(label)
        return number(figures.get(figure), scale) if isinstance(figures, Mapping) else None
    return value


def _internet(reading: Reading) -> str | None:
    """The prober's verdict as of now (it decides every packet interval, between runs too);
    unknown while the run says there is no verdict (no internet target, not decided yet)."""
    if reading.summary.get("internet_up") is None:
        return None
    return on_off(gauge_value(reading.metrics.latency.internet_up))


def _current_outage(reading: Reading) -> float | None:
    return gauge_value(reading.metrics.latency.current_outage)


def _newest_outage(reading: Reading) -> Any:
    recent = reading.metrics.latency.recent_outages.recent()
    return recent[0] if recent else None


def _last_outage(reading: Reading) -> float | None:
    outage = _newest_outage(reading)
    return None if outage is None else number(outage.end - outage.start, digits=1)


def _last_outage_attributes(reading: Reading) -> Mapping[str, Any] | None:
    outage = _newest_outage(reading)
    if outage is None:
        return None
    attributes: dict[str, Any] = {
        "start": datetime.fromtimestamp(outage.start, UTC).isoformat(),
        "end": datetime.fromtimestamp(outage.end, UTC).isoformat()}
    cause = getattr(outage, "cause", None)  # set once the outage classifier lands
    if cause is not None:
        attributes["cause"] = str(cause)
    return attributes


def entities(config: Config) -> list[Entity]:
    found = [
        Entity("internet", "Internet", _internet, component="binary_sensor",
               device_class="connectivity", state_class=None, live=True),
        Entity("current_outage", "Current outage", _current_outage, device_class="duration",
               unit="s", precision=0),
        Entity("last_outage", "Last outage", _last_outage, device_class="duration", unit="s",
               precision=0, expires=False, keep_last=True, attributes=_last_outage_attributes,
               live=True),
    ]
    for target in config.jobs.latency.targets:
        label, key = target.label, slug(target.label)
        found += [
            Entity(f"rtt_{key}", f"RTT {label}", _target(label, "avg_ms"),
                   device_class="duration", unit="ms", precision=1),
            Entity(f"jitter_{key}", f"Jitter {label}", _target(label, "jitter_ms"),
                   device_class="duration", unit="ms", precision=1),
            Entity(f"loss_{key}", f"Loss {label}", _target(label, "loss", 100.0), unit="%",
                   precision=0, icon="mdi:lan-disconnect"),
        ]
    return found
