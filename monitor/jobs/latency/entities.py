"""The latency job's entities (its card declares them): internet up, the current and the last
outage, RTT, jitter and loss per target. The internet state and the last outage are `live`:
the prober decides every packet interval, so they are re-read between runs too."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from monitor.entities import Entity, Reading, on_off, rounded, sample, slug
from monitor.jobs.latency.metrics import LatencyMetrics
from monitor.outages import Outage


def declare(metrics: LatencyMetrics, targets: Sequence[str]) -> list[Entity]:
    """The entities of a latency job with these metric objects and target labels."""

    def internet(reading: Reading) -> str | None:
        # unknown while the run says there is no verdict (no internet target, not decided yet)
        if reading.summary.get("internet_up") is None:
            return None
        return on_off(sample(metrics.internet_up))

    def newest_outage() -> Outage | None:
        recent = metrics.recent_outages.recent()
        return recent[0] if recent else None

    def last_outage(reading: Reading) -> float | None:
        outage = newest_outage()
        return None if outage is None else rounded(outage.end - outage.start, digits=1)

    def last_outage_attributes(reading: Reading) -> Mapping[str, Any] | None:
        outage = newest_outage()
        if outage is None:
            return None
        attributes: dict[str, Any] = {
            "start": datetime.fromtimestamp(outage.start, UTC).isoformat(),
            "end": datetime.fromtimestamp(outage.end, UTC).isoformat()}
        cause = getattr(outage, "cause", None)  # set once the outage classifier lands
        if cause is not None:
            attributes["cause"] = str(cause)
        return attributes

    found = [
        Entity("internet", "Internet", internet, component="binary_sensor",
               device_class="connectivity", state_class=None, live=True),
        Entity("current_outage", "Current outage", lambda r: sample(metrics.current_outage),
               device_class="duration", unit="s", precision=0),
        Entity("last_outage", "Last outage", last_outage, device_class="duration", unit="s",
               precision=0, expires=False, keep_last=True, attributes=last_outage_attributes,
               live=True),
    ]
    for label in targets:
        key = slug(label)
        found += [
            Entity(f"rtt_{key}", f"RTT {label}", _target(label, "avg_ms"),
                   device_class="duration", unit="ms", precision=1),
            Entity(f"jitter_{key}", f"Jitter {label}", _target(label, "jitter_ms"),
                   device_class="duration", unit="ms", precision=1),
            Entity(f"loss_{key}", f"Loss {label}", _target(label, "loss", 100.0), unit="%",
                   precision=0, icon="mdi:lan-disconnect"),
        ]
    return found


def _target(label: str, figure: str, scale: float = 1.0) -> Callable[[Reading], float | None]:
    def value(reading: Reading) -> float | None:
        figures = (reading.summary.get("targets") or {}).get(label)
        return rounded(figures.get(figure), scale) if isinstance(figures, Mapping) else None
    return value
