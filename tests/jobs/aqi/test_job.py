"""The aqi job against a real HTTP server on loopback: bad data, back-off, staleness and the
running mean over a simulated day (with a restart in the middle)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.jobs.aqi.config import AqiConfig, AreaConfig
from monitor.jobs.aqi.job import AqiJob
from monitor.jobs.aqi.metrics import AqiMetrics
from monitor.jobs.base import JobSkipped
from tests.support.aqi_server import AqiServer, Reply, record, sensor_path
from tests.support.clock import Clock

T0 = 1_750_000_000.0


def make_job(server: AqiServer, tmp_path: Path, clock: Clock, **config: object
             ) -> tuple[AqiJob, CollectorRegistry]:
    registry = CollectorRegistry()
    settings = {"enabled": True, "api_url": server.url, "request_timeout": 0.5,
                "backoff_initial": 600.0, "backoff_max": 3600.0} | config
    job = AqiJob(AqiConfig(**settings), AqiMetrics(registry), tmp_path / "state", clock=clock)
    return job, registry


def value(registry: CollectorRegistry, metric: str, **labels: str) -> float | None:
    return registry.get_sample_value(metric, labels)


PM = "homemon_air_pm_micrograms_per_cubic_meter"
MEAN = "homemon_air_pm_mean_micrograms_per_cubic_meter"
INDEX = "homemon_air_quality_index"
REJECTED = "homemon_air_readings_rejected_total"
FETCH_ERRORS = "homemon_air_fetch_errors_total"


def test_bad_sources_are_counted_and_the_good_one_is_unaffected(server: AqiServer,
                                                                 tmp_path: Path) -> None:
    clock = Clock(T0)
    fresh = T0 - 60
    server.set(sensor_path(1), [record(1, fresh, {"P1": "25.3", "P2": "14.1"})])
    server.set(sensor_path(101), Reply("<html><h1>502 Bad Gateway</h1></html>", 200,
                                       content_type="text/html"))
    server.set(sensor_path(102), Reply(b'[{"timestamp": "2025-06-15 15:05:00", "sens'))
    server.set(sensor_path(103), [])
    no_time = record(104, fresh, {"P2": "3"})
    del no_time["timestamp"]
    server.set(sensor_path(104), [no_time])
    server.set(sensor_path(105), [record(105, fresh, {"P1": "nan", "P2": "12.0"})])
    server.set(sensor_path(106), [record(106, fresh, {"P1": "999.9", "P2": "1999.9"})])
    server.set(sensor_path(107), Reply({"detail": "forbidden"}, 403))
    server.set(sensor_path(108), Reply("slow down", 429, headers={"Retry-After": "1200"}))
    server.set(sensor_path(109), Reply("oops", 500))
    server.set(sensor_path(110), Reply([record(110, fresh, {"P2": "1"})], delay=1.5))
    ids = [1, *range(101, 111)]
    job, registry = make_job(server, tmp_path, clock, sensors=ids)

    summary = job.run(threading.Event())

    assert value(registry, PM, sensor="1", size="pm10") == 25.3
    assert value(registry, PM, sensor="1", size="pm2.5") == 14.1
    assert value(registry, PM, sensor="105", size="pm2.5") == 12.0
    assert value(registry, PM, sensor="105", size="pm10") is None  # "nan": absent, not 0
    assert value(registry, PM, sensor="106", size="pm10") is None
    assert value(registry, PM, sensor="110", size="pm2.5") is None
    rejected = {reason: value(registry, REJECTED, reason=reason) for reason in
                ("malformed_response", "empty", "missing_field", "not_numeric", "fault")}
    assert rejected == {"malformed_response": 2, "empty": 1, "missing_field": 1,
                        "not_numeric": 1, "fault": 2}
    errors = {(s, r): value(registry, FETCH_ERRORS, source=s, reason=r) for s, r in [
        ("sensor:101", "malformed"), ("sensor:102", "malformed"), ("sensor:107", "http_403"),
        ("sensor:108", "http_429"), ("sensor:109", "http_5xx"), ("sensor:110", "timeout")]}
    assert set(errors.values()) == {1.0}
    assert value(registry, "homemon_air_source_up", source="sensor:109") == 0
    assert value(registry, "homemon_air_source_up", source="sensor:1") == 1
    assert summary["sources_failed"] == 6

    # next run: 403/429/5xx back off (not asked again), the timeout and the rest are retried
    before = server.paths()
    clock.now += 300
    server.set(sensor_path(1), [record(1, clock.now - 30, {"P1": "30", "P2": "16"})])
    summary = job.run(threading.Event())
    asked = server.paths()[len(before):]
    assert not {sensor_path(i) for i in (107, 108, 109)} & set(asked)
    assert {sensor_path(i) for i in (1, 101, 110)} <= set(asked)
    assert summary["sources_backing_off"] == 3
    assert value(registry, PM, sensor="1", size="pm10") == 30.0
    assert value(registry, MEAN, sensor="1", size="pm10", window="24h") == pytest.approx(27.65)

    # the back-off doubles per failure and honours Retry-After (429 asked for 1200 s)
    assert job.backoff.until["sensor:109"] == pytest.approx(T0 + 600)
    assert job.backoff.until["sensor:108"] == pytest.approx(T0 + 1200)
    clock.now = T0 + 601
    job.run(threading.Event())
    assert value(registry, FETCH_ERRORS, source="sensor:109", reason="http_5xx") == 2
    assert job.backoff.until["sensor:109"] == pytest.approx(clock.now + 1200)
    # every request carried our User-Agent
    assert {ua for _, ua in server.requests} == {"home-monitor/0.1.0 (air-quality job; polls "
                                                 "every few minutes)"}


def test_the_job_fails_only_when_every_source_failed(server: AqiServer, tmp_path: Path) -> None:
    server.set(sensor_path(9), Reply("down", 503))
    job, _ = make_job(server, tmp_path, Clock(T0), sensors=[9])
    with pytest.raises(RuntimeError, match=r"every air quality source failed.*HTTP 503"):
        job.run(threading.Event())
    with pytest.raises(JobSkipped, match="backing off"):
        job.run(threading.Event())


def test_area_takes_the_newest_record_per_sensor(server: AqiServer, tmp_path: Path) -> None:
    path = "/airrohr/v1/filter/area=51.5,-0.12,3"
    server.set(path, [record(5001, T0 - 200, {"P1": "10", "P2": "5"}),
                      record(5001, T0 - 50, {"P1": "40.2", "P2": "20.1"}),
                      record(5002, T0 - 40, {"temperature": "9.5", "humidity": "70"},
                             sensor_type="DHT22")])
    job, registry = make_job(server, tmp_path, Clock(T0),
                             area=AreaConfig(latitude=51.5, longitude=-0.12, radius_km=3))
    job.run(threading.Event())
    assert value(registry, PM, sensor="5001", size="pm10") == 40.2
    assert value(registry, MEAN, sensor="5001", size="pm10", window="24h") == pytest.approx(25.1)
    assert value(registry, "homemon_air_relative_humidity_ratio", sensor="5002") == \
        pytest.approx(0.7)
    assert value(registry, INDEX, sensor="5002", scale="uk_daqi") is None  # no PM at all


def test_a_stale_sensor_loses_values_but_keeps_its_timestamp(server: AqiServer,
                                                             tmp_path: Path) -> None:
    clock = Clock(T0)
    server.set(sensor_path(3), [record(3, T0 - 60, {"P1": "20", "P2": "10"})])
    job, registry = make_job(server, tmp_path, clock, sensors=[3], stale_after=3600.0)
    job.run(threading.Event())
    assert value(registry, PM, sensor="3", size="pm2.5") == 10
    assert value(registry, INDEX, sensor="3", scale="uk_daqi") == 2  # PM10 20 -> 2

    server.set(sensor_path(3), [])  # the sensor went silent
    clock.now = T0 + 3601
    job.run(threading.Event())
    assert value(registry, PM, sensor="3", size="pm2.5") is None
    assert value(registry, MEAN, sensor="3", size="pm2.5", window="24h") is None
    assert value(registry, INDEX, sensor="3", scale="uk_daqi") is None
    assert value(registry, "homemon_air_reading_timestamp_seconds", sensor="3") == T0 - 60
    assert value(registry, "homemon_air_sensor_info", sensor="3", name="SDS011 3",
                 type="SDS011", country="GB", latitude="51.501", longitude="-0.121",
                 indoor="false") == 1

    # a record that is itself older than stale_after is counted as stale, not shown
    server.set(sensor_path(3), [record(3, clock.now - 4000, {"P1": "20", "P2": "10"})])
    job.run(threading.Event())
    assert value(registry, REJECTED, reason="stale") == 1
    assert value(registry, PM, sensor="3", size="pm2.5") is None


def test_running_mean_over_a_simulated_day_survives_a_restart(server: AqiServer,
                                                              tmp_path: Path) -> None:
    """288 readings 5 min apart: PM2.5 20 µg/m³ for 12 h then 60; PM10 always 20.
    Each reading is served twice (the API repeats records) and must count once."""
    clock = Clock(T0)
    scales = ["uk_daqi", "us_epa", "eu_eaqi"]
    job, registry = make_job(server, tmp_path, clock, sensors=[42], scales=scales)
    for step in range(300):
        if step == 144:  # restart: a new job object and registry on the same state_dir
            job.close()
            job, registry = make_job(server, tmp_path, clock, sensors=[42], scales=scales)
        clock.now = T0 + step * 300
        pm25 = "20" if step < 144 else "60"
        server.set(sensor_path(42), [record(42, clock.now, {"P1": "20", "P2": pm25})])
        job.run(threading.Event())
        clock.now += 60
        job.run(threading.Event())  # the same record again
        if step == 144:
            assert value(registry, MEAN, sensor="42", size="pm2.5", window="24h") == \
                pytest.approx((144 * 20 + 60) / 145)
        if step == 287:  # a full day: 144 x 20 and 144 x 60
            assert value(registry, MEAN, sensor="42", size="pm2.5", window="24h") == \
                pytest.approx(40.0)
            assert value(registry, INDEX, sensor="42", scale="uk_daqi") == 4
    # 12 more readings slid the window: 132 x 20 and 156 x 60 = 41.67 -> 42 -> DAQI 5
    assert value(registry, MEAN, sensor="42", size="pm2.5", window="24h") == \
        pytest.approx(12000 / 288)
    assert value(registry, MEAN, sensor="42", size="pm10", window="24h") == pytest.approx(20)
    assert value(registry, INDEX, sensor="42", scale="uk_daqi") == 5
    assert job.run(threading.Event())["uk_daqi_band"] == "Moderate"
    assert value(registry, INDEX, sensor="42", scale="us_epa") == 116  # 41.6 truncated
    assert value(registry, MEAN, sensor="42", size="pm2.5", window="1h") == pytest.approx(60)
    assert value(registry, INDEX, sensor="42", scale="eu_eaqi") == 4  # Poor: 50 < 60 <= 90
    assert job.means.count("42", "pm2.5") == 288


def test_a_damaged_state_file_is_set_aside(server: AqiServer, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "aqi-means.json").write_text('{"version": 1, "sensors": {"1": {"pm2.5": [[1')
    server.set(sensor_path(1), [record(1, T0 - 10, {"P2": "8"})])
    job, registry = make_job(server, tmp_path, Clock(T0), sensors=[1])
    job.run(threading.Event())
    assert (state / "aqi-means.json.bad").exists()
    assert value(registry, MEAN, sensor="1", size="pm2.5", window="24h") == 8
