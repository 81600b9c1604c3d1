"""The aqi job with real sensors' formats, against a stand-in HTTP server on loopback: an area
holding a PPD42NS (particle counts), a mass sensor and a sensor type we do not know, and a
local NextPM + BME280 device whose data.json is written the way the firmware writes it."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.jobs.aqi.config import AqiConfig, AreaConfig, LocalSensorConfig
from monitor.jobs.aqi.job import AqiJob
from monitor.jobs.aqi.metrics import AqiMetrics
from tests.support.aqi_server import (
    AqiServer,
    Reply,
    area_path,
    firmware_data_json,
    record,
)
from tests.support.clock import Clock

T0 = 1_750_000_000.0
PM = "homemon_air_pm_micrograms_per_cubic_meter"
INDEX = "homemon_air_quality_index"
REJECTED = "homemon_air_readings_rejected_total"
INFO = "homemon_air_sensor_info"


def npm_device(pm10: str) -> Reply:
    return Reply(firmware_data_json([
        ("NPM_P0", "4.10"), ("NPM_P1", pm10), ("NPM_P2", "8.30"), ("NPM_N1", "41.20"),
        ("NPM_N10", "44.00"), ("NPM_N25", "43.60"), ("NPM_XYZ", "1.00"),
        ("BME280_temperature", "19.80"), ("BME280_pressure", "101210.00"),
        ("BME280_humidity", "52.00"), ("samples", "3086413"), ("min_micro", "28"),
        ("max_micro", "20271"), ("interval", "145000"), ("signal", "-61")], age=20))


def area(now: float) -> list[dict[str, object]]:
    return [
        record(7001, now - 60, {"P1": "16.20", "P2": "9.80"}, sensor_type="SDS011"),
        record(7002, now - 60, {"durP1": "564151.50", "durP2": "60501.00", "P1": "972.68",
                                "P2": "105.34", "ratioP1": "1.88", "ratioP2": "0.20"},
               sensor_type="PPD42NS"),
        record(7003, now - 60, {"P1": "400.0", "P2": "300.0", "temperature": "9.0"},
               sensor_type="Dustmaster 9000"),
    ]


def test_counts_and_unknown_sensors_never_reach_an_index(server: AqiServer, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    clock = Clock(T0)
    server.set(area_path(51.5, -0.12, 3), area(clock.now))
    server.set("/data.json", npm_device("14.70"))
    registry = CollectorRegistry()
    config = AqiConfig(enabled=True, api_url=server.url, request_timeout=2.0,
                       area=AreaConfig(latitude=51.5, longitude=-0.12, radius_km=3),
                       local=[LocalSensorConfig(name="balcony", url=f"{server.url}/data.json")],
                       scales=["uk_daqi", "us_epa"])
    job = AqiJob(config, AqiMetrics(registry), tmp_path / "state", clock=clock)
    value = registry.get_sample_value

    with caplog.at_level(logging.WARNING, logger="monitor.jobs.aqi"):
        first = job.run(threading.Event())
        clock.now += 300
        server.set(area_path(51.5, -0.12, 3), area(clock.now))
        job.run(threading.Event())

    # the NextPM device: PM from its mass channels, its real sensors in the type label
    assert value(PM, {"sensor": "balcony", "size": "pm10"}) == 14.7
    assert value(PM, {"sensor": "balcony", "size": "pm1"}) == 4.1
    assert value(INDEX, {"sensor": "balcony", "scale": "uk_daqi"}) is not None
    info = [s.labels for m in registry.collect() if m.name == INFO for s in m.samples
            if s.labels["sensor"] == "balcony"]
    assert [labels["type"] for labels in info] == ["NextPM+BME280"]
    # the PPD42NS: no PM, no index; the unknown type: its temperature, no PM
    for sensor in ("7002", "7003"):
        for size in ("pm10", "pm2.5"):
            assert value(PM, {"sensor": sensor, "size": size}) is None
        for scale in ("uk_daqi", "us_epa"):
            assert value(INDEX, {"sensor": sensor, "scale": scale}) is None
    assert value("homemon_air_temperature_celsius", {"sensor": "7003"}) == 9.0
    assert value(INDEX, {"sensor": "7001", "scale": "uk_daqi"}) == 1
    # the worst index is one of the mass sensors', not from the 972.68 "µg/m³" of the counts
    # (which made DAQI 10 and US AQI 909)
    for scale in ("uk_daqi", "us_epa"):
        assert first[f"{scale}_worst"] == max(value(INDEX, {"sensor": s, "scale": scale}) or 0
                                              for s in ("7001", "balcony"))
    assert first["uk_daqi_worst"] < 10
    # counted every run: PPD P1+P2 and NPM N1/N10/N25; the unknown sensor's P1+P2; NPM_XYZ
    assert value(REJECTED, {"reason": "particle_count"}) == 2 * (2 + 3)
    assert value(REJECTED, {"reason": "unknown_sensor_type"}) == 2 * 2
    assert value(REJECTED, {"reason": "unknown_value_type"}) == 2 * 1
    # ... and logged once per type, not once per run
    warnings = [r.getMessage() for r in caplog.records if "unknown" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert any("'NPM_XYZ'" in w for w in warnings)
    assert any("'Dustmaster 9000'" in w for w in warnings)
