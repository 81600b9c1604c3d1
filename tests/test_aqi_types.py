"""Every value type the airrohr firmware writes, per sensor family, as its data.json carries
them, and the Sensor.Community API's records of sensors that report counts.

The value types and their order come from airrohr-firmware.ino (NRZ-2024-135: the fetchSensor*
functions' add_Value2Json calls, and the device fields of the send loop); SEN5X_* and PMS2_*
from the beta-sen5x and beta-dualPMS branches. The numbers are made up."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from monitor.jobs.aqi_sources import Parsed, Reading, parse_local, parse_record
from monitor.jobs.aqi_types import COUNT, IGNORED, QUANTITIES, local_kind
from tests.support.aqi_server import firmware_data_json, record

T = 1_700_000_000.0
DEVICE = [("samples", "3086413"), ("min_micro", "28"), ("max_micro", "20271"),
          ("interval", "145000"), ("signal", "-61")]

# every value type in the firmware's add_Value2Json calls (master and the two beta branches)
_FIRMWARE_VALUE_TYPES = """
    SDS_P1 SDS_P2 PMS_P0 PMS_P1 PMS_P2 PMS2_P0 PMS2_P1 PMS2_P2 HPM_P1 HPM_P2
    NPM_P0 NPM_P1 NPM_P2 NPM_N1 NPM_N10 NPM_N25
    IPS_P0 IPS_P1 IPS_P2 IPS_P01 IPS_P03 IPS_P05 IPS_P5
    IPS_N1 IPS_N10 IPS_N25 IPS_N01 IPS_N03 IPS_N05 IPS_N5
    SPS30_P0 SPS30_P2 SPS30_P4 SPS30_P1 SPS30_N05 SPS30_N1 SPS30_N25 SPS30_N4 SPS30_N10 SPS30_TS
    SEN5X_P0 SEN5X_P1 SEN5X_P2 SEN5X_P4 SEN5X_N05 SEN5X_N1 SEN5X_N25 SEN5X_N4 SEN5X_N10
    SEN5X_TS SEN5X_temperature SEN5X_humidity SEN5X_voc SEN5X_nox
    durP1 ratioP1 P1 durP2 ratioP2 P2 temperature humidity
    HTU21D_temperature HTU21D_humidity BMP_pressure BMP_temperature
    SHT3X_temperature SHT3X_humidity SCD30_temperature SCD30_humidity SCD30_co2_ppm
    BME280_temperature BME280_pressure BME280_humidity BMP280_pressure BMP280_temperature
    DS18B20_temperature DNMS_noise_LAeq DNMS_noise_LA_min DNMS_noise_LA_max
    GPS_lat GPS_lon GPS_height GPS_timestamp samples min_micro max_micro interval signal
"""
FIRMWARE_VALUE_TYPES = _FIRMWARE_VALUE_TYPES.split()


@pytest.mark.parametrize("value_type", FIRMWARE_VALUE_TYPES)
def test_every_firmware_value_type_is_known(value_type: str) -> None:
    kind = local_kind(value_type)
    assert kind.family is not None
    assert kind.kind in (*QUANTITIES, COUNT, IGNORED)


def local(entries: list[tuple[str, str]]) -> Parsed:
    return parse_local(json.loads(firmware_data_json(entries, age=12)), "dev", T)


@pytest.mark.parametrize(("entries", "values", "type_label", "counts"), [
    pytest.param([("SDS_P1", "18.40"), ("SDS_P2", "9.10"), ("BME280_temperature", "21.30"),
                  ("BME280_pressure", "100812.00"), ("BME280_humidity", "45.20"), *DEVICE],
                 {"pm10": 18.4, "pm2.5": 9.1, "temperature": 21.3, "pressure": 100812.0,
                  "humidity": 0.452}, "SDS011+BME280", 0, id="SDS011+BME280"),
    pytest.param([("PMS_P0", "4.00"), ("PMS_P1", "11.00"), ("PMS_P2", "7.00"),
                  ("temperature", "3.50"), ("humidity", "90.10"), *DEVICE],
                 {"pm1": 4.0, "pm10": 11.0, "pm2.5": 7.0, "temperature": 3.5, "humidity": 0.901},
                 "PMSx003+DHT22", 0, id="PMSx003+DHT22"),
    pytest.param([("HPM_P1", "16.50"), ("HPM_P2", "12.25"), ("BMP280_pressure", "99870.00"),
                  ("BMP280_temperature", "8.10"), *DEVICE],
                 {"pm10": 16.5, "pm2.5": 12.25, "pressure": 99870.0, "temperature": 8.1},
                 "HPM+BMP280", 0, id="HPM+BMP280"),
    pytest.param([("NPM_P0", "6.10"), ("NPM_P1", "14.70"), ("NPM_P2", "9.30"),
                  ("NPM_N1", "41.20"), ("NPM_N10", "44.00"), ("NPM_N25", "43.60"),
                  ("BME280_temperature", "19.80"), ("BME280_pressure", "101210.00"),
                  ("BME280_humidity", "52.00"), *DEVICE],
                 {"pm1": 6.1, "pm10": 14.7, "pm2.5": 9.3, "temperature": 19.8,
                  "pressure": 101210.0, "humidity": 0.52}, "NextPM+BME280", 3,
                 id="NextPM+BME280"),
    pytest.param([("IPS_P0", "2.10"), ("IPS_P1", "9.80"), ("IPS_P2", "5.40"), ("IPS_P01", "0.02"),
                  ("IPS_P03", "0.40"), ("IPS_P05", "1.10"), ("IPS_P5", "7.70"), ("IPS_N1", "310"),
                  ("IPS_N10", "330"), ("IPS_N25", "325"), ("IPS_N01", "120"), ("IPS_N03", "200"),
                  ("IPS_N05", "280"), ("IPS_N5", "328"), ("SHT3X_temperature", "22.40"),
                  ("SHT3X_humidity", "40.00"), *DEVICE],
                 {"pm1": 2.1, "pm10": 9.8, "pm2.5": 5.4, "temperature": 22.4, "humidity": 0.4},
                 "IPS-7100+SHT3x", 7, id="IPS-7100+SHT3x"),
    pytest.param([("SPS30_P0", "3.20"), ("SPS30_P2", "4.10"), ("SPS30_P4", "4.60"),
                  ("SPS30_P1", "4.90"), ("SPS30_N05", "20.10"), ("SPS30_N1", "24.00"),
                  ("SPS30_N25", "24.30"), ("SPS30_N4", "24.40"), ("SPS30_N10", "24.40"),
                  ("SPS30_TS", "0.52"), ("HTU21D_temperature", "17.00"),
                  ("HTU21D_humidity", "61.50"), *DEVICE],
                 {"pm1": 3.2, "pm2.5": 4.1, "pm4": 4.6, "pm10": 4.9, "temperature": 17.0,
                  "humidity": 0.615}, "SPS30+HTU21D", 5, id="SPS30+HTU21D"),
    pytest.param([("SEN5X_P0", "1.00"), ("SEN5X_P1", "2.00"), ("SEN5X_P2", "1.50"),
                  ("SEN5X_P4", "1.80"), ("SEN5X_N05", "7.00"), ("SEN5X_N1", "8.00"),
                  ("SEN5X_N25", "8.10"), ("SEN5X_N4", "8.10"), ("SEN5X_N10", "8.20"),
                  ("SEN5X_TS", "0.60"), ("SEN5X_temperature", "23.00"),
                  ("SEN5X_humidity", "38.00"), ("SEN5X_voc", "102.00"), ("SEN5X_nox", "1.00"),
                  *DEVICE],
                 {"pm1": 1.0, "pm10": 2.0, "pm2.5": 1.5, "pm4": 1.8, "temperature": 23.0,
                  "humidity": 0.38}, "SEN5X", 5, id="SEN5X"),
    pytest.param([("durP1", "564151"), ("ratioP1", "1.88"), ("P1", "972.68"),
                  ("durP2", "60501"), ("ratioP2", "0.20"), ("P2", "105.34"),
                  ("temperature", "11.20"), ("humidity", "77.00"), *DEVICE],
                 {"temperature": 11.2, "humidity": 0.77}, "PPD42NS+DHT22", 2,
                 id="PPD42NS+DHT22"),
    # the send loop's order: BMP180 before SCD30 before DS18B20; the first temperature wins
    pytest.param([("BMP_pressure", "100100.00"), ("BMP_temperature", "24.90"),
                  ("SCD30_temperature", "24.10"), ("SCD30_humidity", "35.20"),
                  ("SCD30_co2_ppm", "812"), ("DS18B20_temperature", "5.00"), *DEVICE],
                 {"temperature": 24.9, "humidity": 0.352, "pressure": 100100.0},
                 "BMP180+SCD30+DS18B20", 0, id="BMP180+SCD30+DS18B20"),
    pytest.param([("SDS_P1", "7.00"), ("SDS_P2", "3.00"), ("DNMS_noise_LAeq", "48.30"),
                  ("DNMS_noise_LA_min", "41.00"), ("DNMS_noise_LA_max", "63.20"),
                  ("GPS_lat", "51.500000"), ("GPS_lon", "-0.120000"), ("GPS_height", "21.40"),
                  ("GPS_timestamp", "2026-12-01T12:00:00.000"), *DEVICE],
                 {"pm10": 7.0, "pm2.5": 3.0}, "SDS011+DNMS+GPS", 0, id="SDS011+DNMS+GPS"),
])
def test_local_device_per_sensor_family(entries: list[tuple[str, str]],
                                        values: dict[str, float], type_label: str,
                                        counts: int) -> None:
    parsed = local(entries)
    (reading,) = parsed.readings
    assert reading.values == pytest.approx(values)
    assert reading.info.type == type_label
    assert reading.timestamp == T - 12
    assert parsed.rejected == (Counter({COUNT: counts}) if counts else Counter())
    assert not parsed.unknown


def test_a_count_only_device_gives_no_pm_and_says_why() -> None:
    parsed = local([("durP1", "1000"), ("ratioP1", "0.50"), ("P1", "260.00"),
                    ("durP2", "900"), ("ratioP2", "0.45"), ("P2", "234.00"), *DEVICE])
    assert parsed.readings == []
    assert parsed.rejected == Counter({COUNT: 2})


def test_unknown_value_types_are_counted_and_named_once() -> None:
    parsed = local([("SDS_P1", "5.00"), ("SDS_P2", "2.00"), ("XYZ_P1", "5.00"),
                    ("SDS_P9", "1.00"), ("ozone", "40.00"), ("ozone", "41.00")])
    (reading,) = parsed.readings
    assert reading.values == {"pm10": 5.0, "pm2.5": 2.0}
    assert parsed.rejected == Counter({"unknown_value_type": 4})
    assert parsed.unknown == {"value type 'XYZ_P1'", "value type 'SDS_P9'",
                              "value type 'ozone'"}


def test_second_pm_sensor_of_a_device_does_not_overwrite_the_first() -> None:
    parsed = local([("PMS_P1", "10.00"), ("PMS_P2", "6.00"), ("PMS2_P1", "12.00"),
                    ("PMS2_P2", "7.00")])
    (reading,) = parsed.readings
    assert reading.values == {"pm10": 10.0, "pm2.5": 6.0}
    assert reading.info.type == "PMSx003"


# --- API records: the sensor type decides ---------------------------------------------------

def api(sensor_type: str, values: dict[str, str]) -> tuple[Parsed, Reading | None]:
    parsed = Parsed()
    return parsed, parse_record(record(9, T, values, sensor_type=sensor_type), parsed)


def test_ppd42ns_counts_never_become_pm() -> None:
    parsed, reading = api("PPD42NS", {"durP1": "564151.50", "durP2": "60501.00",
                                      "P1": "972.68", "P2": "105.34", "ratioP1": "1.88",
                                      "ratioP2": "0.20"})
    assert reading is None
    assert parsed.rejected == Counter({COUNT: 2})


@pytest.mark.parametrize(("sensor_type", "values", "expected", "counts"), [
    ("NextPM", {"P0": "5.1", "P1": "12.0", "P2": "8.2", "N1": "40.1", "N10": "43.0",
                "N25": "42.2"}, {"pm1": 5.1, "pm10": 12.0, "pm2.5": 8.2}, 3),
    ("SPS30", {"P0": "2.0", "P2": "3.0", "P4": "3.4", "P1": "3.6", "N05": "15.0", "N1": "18.0",
               "N25": "18.3", "N4": "18.4", "N10": "18.4", "TS": "0.55"},
     {"pm1": 2.0, "pm2.5": 3.0, "pm4": 3.4, "pm10": 3.6}, 5),
    ("PMS7003", {"P0": "3.0", "P1": "9.0", "P2": "6.0"}, {"pm1": 3.0, "pm10": 9.0, "pm2.5": 6.0},
     0),
    ("HPM", {"P1": "20.0", "P2": "15.0"}, {"pm10": 20.0, "pm2.5": 15.0}, 0),
    ("SDS021", {"P1": "20.0", "P2": "15.0"}, {"pm10": 20.0, "pm2.5": 15.0}, 0),
])
def test_api_mass_sensors_keep_pm_and_count_number_concentrations(
        sensor_type: str, values: dict[str, str], expected: dict[str, float],
        counts: int) -> None:
    parsed, reading = api(sensor_type, values)
    assert reading is not None
    assert reading.values == expected
    assert reading.info.type == sensor_type
    assert parsed.rejected == (Counter({COUNT: counts}) if counts else Counter())


def test_unknown_sensor_type_gives_climate_but_no_pm() -> None:
    parsed, reading = api("Dustmaster 9000", {"P1": "30.0", "P2": "20.0",
                                              "temperature": "10.0"})
    assert reading is not None
    assert reading.values == {"temperature": 10.0}
    assert parsed.rejected == Counter({"unknown_sensor_type": 2})
    assert parsed.unknown == {"sensor type 'Dustmaster 9000'"}


def test_unknown_value_type_of_a_known_sensor_is_counted() -> None:
    parsed, reading = api("SDS011", {"P1": "30.0", "P2": "20.0", "P7": "1.0"})
    assert reading is not None
    assert parsed.rejected == Counter({"unknown_value_type": 1})
    assert parsed.unknown == {"value type 'P7' from sensor type 'SDS011'"}


def test_sensors_of_other_kinds_in_an_area_are_counted_not_dropped() -> None:
    parsed, reading = api("Radiation Si22G", {"counts_per_minute": "18", "hv_pulses": "4000"})
    assert reading is None
    assert parsed.rejected == Counter({"unknown_value_type": 2})
    assert parsed.unknown == {"value type 'counts_per_minute' from sensor type 'Radiation Si22G'",
                              "value type 'hv_pulses' from sensor type 'Radiation Si22G'"}
