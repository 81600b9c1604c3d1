"""The aqi job's entities (its card declares them). PM is the median of the fresh sensors and
each index the worst among them, as the status page shows."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from monitor.entities import Entity, Reading, rounded

# scale -> (entity key, name, HA device class): HA's `aqi` class is the US EPA AQI
SCALES = {
    "uk_daqi": ("uk_daqi", "UK DAQI", None),
    "us_epa": ("us_aqi", "US AQI", "aqi"),
    "eu_eaqi": ("eu_eaqi", "EU EAQI", None),
}


def declare(scales: Sequence[str]) -> list[Entity]:
    found = [
        Entity("pm25", "PM2.5", lambda r: rounded(r.summary.get("pm25_median"), digits=1),
               device_class="pm25", unit="µg/m³", precision=1),
        Entity("pm10", "PM10", lambda r: rounded(r.summary.get("pm10_median"), digits=1),
               device_class="pm10", unit="µg/m³", precision=1),
    ]
    for scale in scales:
        key, name, device_class = SCALES[scale]
        found.append(Entity(key, name, _worst(scale), device_class=device_class, precision=0,
                            icon="mdi:air-filter"))
    return found


def _worst(scale: str) -> Callable[[Reading], float | None]:
    return lambda reading: rounded(reading.summary.get(f"{scale}_worst"), digits=0)
