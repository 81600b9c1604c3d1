"""Parsing Sensor.Community records and airrohr data.json: P1/P2 mapping, faults, formats."""

from __future__ import annotations

from collections import Counter

import pytest

from monitor.jobs.aqi_sources import (
    FetchError,
    Parsed,
    parse_local,
    parse_record,
    parse_records,
)
from tests.support.aqi_server import device_json, record

T = 1_700_000_000.0


def test_p1_is_pm10_p2_is_pm25_p0_is_pm1() -> None:
    parsed = Parsed()
    reading = parse_record(record(37765, T, {"P0": "3.1", "P1": "25.3", "P2": "14.1"}), parsed)
    assert reading is not None
    assert reading.values == {"pm1": 3.1, "pm10": 25.3, "pm2.5": 14.1}
    assert reading.sensor == "37765"
    assert reading.timestamp == T
    assert not parsed.rejected


@pytest.mark.parametrize("sep", [" ", "T"])
def test_timestamps_are_utc_with_space_or_t(sep: str) -> None:
    reading = parse_record(record(1, T, {"P2": "1"}, sep=sep), Parsed())
    assert reading is not None
    assert reading.timestamp == T


def test_climate_values_and_info_labels() -> None:
    reading = parse_record(record(37766, T, {"temperature": "12.50", "humidity": "81.2",
                                             "pressure": "101325.00"}, sensor_type="BME280",
                                  latitude="51.501", longitude="-0.121", indoor=1), Parsed())
    assert reading is not None
    assert reading.values == {"temperature": 12.5, "humidity": pytest.approx(0.812),
                              "pressure": 101325.0}
    assert reading.info.labels() == ("BME280 37766", "BME280", "GB", "51.501", "-0.121", "true")


@pytest.mark.parametrize(("values", "kept", "reason"), [
    ({"P1": "999.9", "P2": "5"}, {"pm2.5": 5.0}, "fault"),
    ({"P1": "1999.9", "P2": "5"}, {"pm2.5": 5.0}, "fault"),
    ({"P1": "1900", "P2": "5"}, {"pm2.5": 5.0}, "fault"),
    ({"P1": "5", "P2": "900"}, {"pm10": 5.0}, "fault"),
    ({"P1": "5", "P2": "899.9"}, {"pm10": 5.0, "pm2.5": 899.9}, None),
    ({"P1": "nan", "P2": "5"}, {"pm2.5": 5.0}, "not_numeric"),
    ({"P1": "n/a", "P2": "5"}, {"pm2.5": 5.0}, "not_numeric"),
    ({"P1": "-1.0", "P2": "5"}, {"pm2.5": 5.0}, "negative"),
    ({"P1": "5", "humidity": "140"}, {"pm10": 5.0}, "out_of_range"),
])
def test_bad_values_are_dropped_and_counted(values: dict[str, str], kept: dict[str, float],
                                            reason: str | None) -> None:
    parsed = Parsed()
    reading = parse_record(record(7, T, values), parsed)
    assert reading is not None
    assert reading.values == kept
    assert parsed.rejected == (Counter({reason: 1}) if reason else Counter())


def test_records_missing_fields_are_counted() -> None:
    good = record(1, T, {"P2": "4"})
    no_time = record(2, T, {"P2": "4"})
    del no_time["timestamp"]
    no_sensor = record(3, T, {"P2": "4"})
    del no_sensor["sensor"]
    no_value = record(4, T, {"P2": "4"})
    del no_value["sensordatavalues"][0]["value"]
    parsed = parse_records([good, no_time, no_sensor, no_value, "junk"])
    assert [r.sensor for r in parsed.readings] == ["1"]
    assert parsed.rejected == Counter({"missing_field": 3, "malformed": 1})


def test_an_empty_list_is_counted_and_a_non_list_is_malformed() -> None:
    assert parse_records([]).rejected == Counter({"empty": 1})
    with pytest.raises(FetchError) as caught:
        parse_records({"detail": "Not found."})
    assert caught.value.reason == "malformed"


def test_local_device_prefixed_types_map_like_the_api() -> None:
    payload = device_json({"SDS_P1": "18.0", "SDS_P2": "9.0", "BME280_temperature": "21.0",
                           "BME280_humidity": "45.0", "BME280_pressure": "100800.00",
                           "samples": "123", "signal": "-70"}, age=40)
    parsed = parse_local(payload, "balcony", T, latitude="51.5", longitude="-0.1")
    (reading,) = parsed.readings
    assert reading.sensor == "balcony"
    assert reading.values == {"pm10": 18.0, "pm2.5": 9.0, "temperature": 21.0,
                              "humidity": pytest.approx(0.45), "pressure": 100800.0}
    assert reading.timestamp == T - 40
    assert reading.info.type == "SDS011+BME280"


def test_local_device_with_pms_and_unprefixed_dht22() -> None:
    payload = device_json({"PMS_P0": "2", "PMS_P1": "7", "PMS_P2": "5", "temperature": "3.5",
                           "humidity": "90"})
    (reading,) = parse_local(payload, "garden", T).readings
    assert reading.values == {"pm1": 2.0, "pm10": 7.0, "pm2.5": 5.0, "temperature": 3.5,
                              "humidity": pytest.approx(0.9)}
    assert reading.info.type == "PMSx003+DHT22"
