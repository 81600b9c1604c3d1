"""The aqi job's metric families (docs/metrics.md), on the registry it is given."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter

from monitor.metrics import SnapshotGauge


class AqiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def gauge(name: str, doc: str, labels: Sequence[str] = ("sensor",)) -> SnapshotGauge:
            return SnapshotGauge(name, doc, labels, registry)

        self.pm = gauge("homemon_air_pm_micrograms_per_cubic_meter", "Latest particulate reading",
                        ["sensor", "size"])
        self.pm_mean = gauge("homemon_air_pm_mean_micrograms_per_cubic_meter",
                             "Running mean of particulates used by the index",
                             ["sensor", "size", "window"])
        self.index = gauge("homemon_air_quality_index", "Air quality index", ["sensor", "scale"])
        self.temperature = gauge("homemon_air_temperature_celsius", "Temperature")
        self.humidity = gauge("homemon_air_relative_humidity_ratio", "Relative humidity, 0-1")
        self.pressure = gauge("homemon_air_pressure_pascals", "Air pressure")
        self.reading_timestamp = gauge("homemon_air_reading_timestamp_seconds",
                                       "When the sensor measured (Unix seconds)")
        self.sensor_info = gauge("homemon_air_sensor_info", "Always 1; describes the sensor",
                                 ["sensor", "name", "type", "country", "latitude", "longitude",
                                  "indoor"])
        self.rejected = Counter("homemon_air_readings_rejected", "Readings rejected, by reason",
                                ["reason"], registry=registry)
        self.fetch_errors = Counter("homemon_air_fetch_errors", "Failed requests to an air "
                                    "quality source, by reason", ["source", "reason"],
                                    registry=registry)
        self.source_up = gauge("homemon_air_source_up", "1 if the source answered usable data "
                               "in the last run, 0 if it failed", ["source"])
