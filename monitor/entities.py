"""Entities: the current values a job publishes to a home automation system, declared by its
card (`Card.entities()`, monitor/cards.py) and published by monitor/mqtt as Home Assistant
MQTT discovery entities.

An Entity names one value of a job: its component, device class, unit and how its state comes
out of a finished run (`value(reading)`). A card's values read the run's summary and whatever
the card already holds (its job's metric objects, its usage file), so the publisher needs to
know nothing about any job.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Component = Literal["sensor", "binary_sensor"]


@dataclass(frozen=True)
class Reading:
    """What a value reads: the job's last successful run's key figures (its summary) and the
    time of reading (a live entity is re-read between runs, so `now` moves on)."""

    summary: Mapping[str, Any]
    now: float


@dataclass(frozen=True)
class Entity:
    """One entity of a job. `key` is unique within its job ([a-z0-9_]); `value` returns the
    state (a number, "ON"/"OFF", an enum option) or None for unknown. The device classes, units
    and state classes are Home Assistant's (homeassistant/components/sensor/const.py)."""

    key: str
    name: str
    value: Callable[[Reading], Any]
    component: Component = "sensor"
    device_class: str | None = None
    unit: str | None = None
    state_class: Literal["measurement", "total", "total_increasing"] | None = "measurement"
    options: tuple[str, ...] = ()  # device_class enum only
    icon: str | None = None
    entity_category: Literal["diagnostic"] | None = None
    precision: int | None = None  # suggested_display_precision
    expires: bool = True  # expire_after: HA shows "unavailable" once no run refreshed it
    keep_last: bool = False  # None from `value` means "nothing new": the last state stays
    live: bool = False  # re-read every second between runs; a change is published at once
    attributes: Callable[[Reading], Mapping[str, Any] | None] | None = field(default=None)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_]+", self.key):
            raise ValueError(f"entity key {self.key!r}: expected [a-z0-9_]+")
        if self.component == "binary_sensor" and (self.unit or self.state_class):
            raise ValueError(f"binary_sensor {self.key!r} takes no unit or state_class")
        if self.device_class == "enum" and (self.unit or self.state_class or not self.options):
            raise ValueError(f"enum sensor {self.key!r}: options, and no unit or state_class")


def slug(text: str) -> str:
    """A label (a ping target, a sensor) as part of an entity key: '1.1.1.1' -> '1_1_1_1'."""
    cleaned = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return cleaned or "x"


def rounded(value: Any, scale: float = 1.0, digits: int = 3) -> float | None:
    """A figure of the summary as a rounded number; None (unknown) if missing or NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return round(float(value) * scale, digits)


def sample(metric: Any, **labels: str) -> float | None:
    """The value of one series of one of a job's own metric objects (no registry walk)."""
    for family in metric.collect():
        for found in family.samples:
            if all(found.labels.get(k) == v for k, v in labels.items()):
                return rounded(found.value)
    return None


def on_off(value: Any) -> str | None:
    """A 0/1/None figure as a binary_sensor state."""
    if value is None:
        return None
    return "ON" if value else "OFF"
