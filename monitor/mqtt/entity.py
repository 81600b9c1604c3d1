"""What an entity is: the declaration a job (later: its card) makes, and what it reads.

An Entity names one Home Assistant entity of a job: its component, device class, unit and how
its state comes out of a finished run. The publisher turns the declarations into discovery
configs and each run into one JSON state message per job (`value_template` picks the key).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.metrics import Metrics

Component = Literal["sensor", "binary_sensor"]


@dataclass(frozen=True)
class Reading:
    """What a value extractor may read after a run: the run's key figures (its summary) and,
    for figures the summary lacks (the ongoing outage, the data budget), the metrics and
    state the daemon holds."""

    summary: Mapping[str, Any]
    metrics: Metrics
    config: Config
    state_dir: Path
    now: float


@dataclass(frozen=True)
class Entity:
    """One Home Assistant entity. `key` is unique within its job ([a-z0-9_]); `value` returns
    the state payload (a number, "ON"/"OFF", an enum option) or None for unknown."""

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


def number(value: Any, scale: float = 1.0, digits: int = 3) -> float | None:
    """A figure of the summary as a rounded number; None (unknown in HA) if missing or NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return round(float(value) * scale, digits)


def gauge_value(metric: Any, **labels: str) -> float | None:
    """The value of one series of one of our own metric objects (no registry walk)."""
    for family in metric.collect():
        for sample in family.samples:
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                return number(sample.value)
    return None


def on_off(value: Any) -> str | None:
    """A 0/1/None figure as a binary_sensor payload."""
    if value is None:
        return None
    return "ON" if value else "OFF"
