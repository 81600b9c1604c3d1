"""Every discovery config against Home Assistant's documented schema.

Sources (read with the search tools, home-assistant/core):
- homeassistant/components/mqtt/sensor.py and binary_sensor.py: the platform schemas
  (`state_topic` required — MQTT_RO_SCHEMA; `expire_after` a positive int; `unique_id` needed
  for an entity to belong to a device).
- homeassistant/components/sensor/const.py @ 00eb6680fbf6bdf7af2499095f2e74fca980a148:
  DEVICE_CLASS_UNITS and DEVICE_CLASS_STATE_CLASSES (the subset for the classes used here is
  copied below); SensorDeviceClass.ENUM takes `options` and no unit or state class.
- homeassistant/const.py (same snapshot): CONCENTRATION_MICROGRAMS_PER_CUBIC_METER = "µg/m³"
  (U+00B5), UnitOfDataRate.MEGABITS_PER_SECOND = "Mbit/s", UnitOfInformation.GIGABYTES = "GB".
- https://www.home-assistant.io/integrations/binary_sensor/#device-class: connectivity.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Config, parse
from monitor.entities import Entity
from monitor.mqtt.discovery import Topics, device, entity_config, health_entity
from tests.mqtt.cards import built_jobs, cards

MICRO_G_PER_M3 = "\u00b5g/m\u00b3"
DEVICE_CLASS_UNITS: dict[str, set[str | None]] = {
    "aqi": {None},
    "data_rate": {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "B/s", "kB/s", "MB/s", "GB/s",
                  "KiB/s", "MiB/s", "GiB/s"},
    "data_size": {"bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB",
                  "YB", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"},
    "duration": {"d", "h", "min", "s", "ms"},
    "pm10": {MICRO_G_PER_M3},
    "pm25": {MICRO_G_PER_M3},
}
ALL_STATE_CLASSES = {"measurement", "total", "total_increasing"}
DEVICE_CLASS_STATE_CLASSES: dict[str | None, set[str]] = {
    "aqi": {"measurement"}, "data_rate": {"measurement"}, "data_size": ALL_STATE_CLASSES,
    "duration": ALL_STATE_CLASSES, "enum": set(), "pm10": {"measurement"},
    "pm25": {"measurement"}, None: ALL_STATE_CLASSES,
}
BINARY_SENSOR_DEVICE_CLASSES = {"connectivity", "problem", "running"}
SENSOR_KEYS = {"name", "unique_id", "state_topic", "value_template", "availability_topic",
               "payload_available", "payload_not_available", "device", "origin",
               "device_class", "unit_of_measurement", "state_class", "options", "icon",
               "entity_category", "suggested_display_precision", "expire_after",
               "json_attributes_topic", "json_attributes_template"}
BINARY_SENSOR_KEYS = (SENSOR_KEYS - {"unit_of_measurement", "state_class", "options",
                                     "suggested_display_precision"}) | {"payload_on",
                                                                        "payload_off"}


def everything_on() -> Config:
    return parse({
        "jobs": {
            "latency": {"targets": ["1.1.1.1", {"host": "192.168.1.1", "name": "router"}]},
            "bandwidth": {"monthly_data_budget": "50GB", "cross_check": {"backend": "cloudflare"}},
            "iperf": {"enabled": True, "ec2": {"instance_id": "i-0123456789abcdef0",
                                                 "region": "eu-west-2"}},
            "aqi": {"enabled": True, "sensors": [1], "scales": ["uk_daqi", "us_epa", "eu_eaqi"]},
        },
        "mqtt": {"url": "mqtt://broker.lan"},
    }, "x.yml")


def job_entities(config: Config) -> dict[str, list[Entity]]:
    """Each enabled job's entities, as its card (built the daemon's way) declares them."""
    with tempfile.TemporaryDirectory() as state_dir, built_jobs(config, Path(state_dir)) as jobs:
        return {card.job: list(card.entities()) for card in cards(jobs)}


def configs(config: Config) -> list[tuple[str, Entity, dict[str, Any]]]:
    assert config.mqtt is not None
    topics = Topics(config.mqtt.topic_prefix, config.mqtt.discovery_prefix)
    info = device(topics, "home-monitor", "http://box.lan:10132/")
    found = []
    for job, entities in job_entities(config).items():
        for entity in [*entities, health_entity()]:
            found.append((job, entity, entity_config(entity, job, topics, info, 45)))
    return found


ALL = configs(everything_on())


def test_every_issue_entity_is_declared() -> None:
    declared = {(job, entity.key) for job, entity, _ in ALL}
    expected = {("latency", "internet"), ("latency", "current_outage"),
                ("latency", "rtt_1_1_1_1"), ("latency", "jitter_router"),
                ("latency", "loss_router"), ("bandwidth", "download"), ("bandwidth", "upload"),
                ("bandwidth", "data_budget_used"), ("bandwidth", "backend"),
                ("bandwidth", "cross_check_download_ratio"),
                ("bandwidth", "cross_check_upload_ratio"), ("iperf", "ec2_instance"),
                ("aqi", "pm25"), ("aqi", "pm10"), ("aqi", "uk_daqi"), ("aqi", "us_aqi"),
                ("aqi", "eu_eaqi")}
    expected |= {(job, "health") for job in ("latency", "bandwidth", "iperf", "aqi")}
    assert expected <= declared


@pytest.mark.parametrize(("job", "entity", "config"), ALL,
                         ids=[f"{job}-{entity.key}" for job, entity, _ in ALL])
def test_config_follows_the_schema(job: str, entity: Entity, config: dict[str, Any]) -> None:
    json.dumps(config)  # it must be JSON
    allowed = BINARY_SENSOR_KEYS if entity.component == "binary_sensor" else SENSOR_KEYS
    assert set(config) <= allowed, set(config) - allowed
    assert config["state_topic"]
    assert "+" not in config["state_topic"]
    assert re.fullmatch(r"[a-z0-9_]+", config["unique_id"])
    assert config["availability_topic"] == "home-monitor/status"
    assert (config["payload_available"], config["payload_not_available"]) == ("online", "offline")
    assert config["device"]["identifiers"] == ["home_monitor"]
    for key in ("name", "model", "sw_version", "configuration_url"):
        assert config["device"][key]
    if "expire_after" in config:
        assert isinstance(config["expire_after"], int)
        assert config["expire_after"] > 0
    device_class = config.get("device_class")
    if entity.component == "binary_sensor":
        assert device_class in BINARY_SENSOR_DEVICE_CLASSES
        assert (config["payload_on"], config["payload_off"]) == ("ON", "OFF")
        return
    if device_class == "enum":
        assert config["options"]
        assert "unit_of_measurement" not in config
        assert "state_class" not in config
    elif device_class is not None:
        assert config.get("unit_of_measurement") in DEVICE_CLASS_UNITS[device_class]
    if "state_class" in config:
        assert config["state_class"] in DEVICE_CLASS_STATE_CLASSES[device_class]


def test_unique_ids_and_topics_do_not_collide() -> None:
    unique_ids = [config["unique_id"] for _, _, config in ALL]
    assert len(unique_ids) == len(set(unique_ids))


def test_measurements_expire_and_declared_classes_are_kept() -> None:
    by_key = {(job, entity.key): config for job, entity, config in ALL}
    assert by_key[("latency", "internet")]["device_class"] == "connectivity"
    assert by_key[("latency", "rtt_1_1_1_1")]["state_class"] == "measurement"
    assert by_key[("latency", "rtt_1_1_1_1")]["expire_after"] == 45
    assert by_key[("bandwidth", "download")]["unit_of_measurement"] == "Mbit/s"
    assert by_key[("aqi", "pm25")]["unit_of_measurement"] == MICRO_G_PER_M3
    assert by_key[("aqi", "us_aqi")]["device_class"] == "aqi"
    assert by_key[("iperf", "ec2_instance")]["options"] == ["running", "stopped"]
    assert by_key[("bandwidth", "backend")]["options"] == [
        "speedtest", "http", "cloudflare", "librespeed"]
    ratio = by_key[("bandwidth", "cross_check_download_ratio")]
    assert "expire_after" not in ratio  # a cross-check runs once a day, the job hourly
    assert ratio["json_attributes_topic"] == ratio["state_topic"]
    assert "expire_after" not in by_key[("latency", "health")]


def test_entities_follow_the_config() -> None:
    config = parse({"jobs": {"latency": {"targets": ["10.0.0.1"]},
                             "iperf": {"enabled": True, "host": "127.0.0.1",
                                       "directions": ["download"]},
                             "aqi": {"enabled": True, "sensors": [1]}}}, "x.yml")
    declared = {job: {e.key for e in entities}
                for job, entities in job_entities(config).items()}
    assert sorted(key for key in declared["latency"] if key.startswith("rtt_")) == [
        "rtt_10_0_0_1"]
    assert declared["aqi"] == {"pm25", "pm10", "uk_daqi"}
    assert declared["iperf"] == {"iperf_download"}  # no upload, no EC2 instance
    assert "data_budget_used" not in declared["bandwidth"]
    assert "backend" in declared["bandwidth"]  # which backend made the figure, always
    assert not {key for key in declared["bandwidth"] if key.startswith("cross_check")}


def test_a_disabled_job_declares_nothing() -> None:
    config = parse({"jobs": {"bandwidth": {"enabled": False}}}, "x.yml")
    assert set(job_entities(config)) == {"latency"}


@pytest.mark.parametrize("bad", [
    {"key": "Bad Key", "name": "x"},
    {"key": "x", "name": "x", "component": "binary_sensor", "unit": "s"},
    {"key": "x", "name": "x", "device_class": "enum", "state_class": None},
])
def test_entity_declarations_are_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="x|Bad"):
        Entity(value=lambda reading: None, **bad)
