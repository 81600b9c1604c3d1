"""What each airrohr value type means: tables built from the airrohr firmware's source
(opendata-stuttgart/sensors-software, airrohr-firmware/airrohr-firmware.ino, NRZ-2024-135 and
the beta branches' SEN5X and second-PMS additions) and the Sensor.Community API's sensor type
names. Pure tables and two look-ups, no I/O.

A local device's data.json prefixes each value type with its sensor (`SDS_P1`, `NPM_N10`,
`SCD30_co2_ppm`); a DHT22 and a PPD42NS write theirs unprefixed (`temperature`, `P1`). The API
strips the prefix (the firmware sends each sensor on its own, `sendSensorCommunity(...,
"SDS_")`) and names the sensor in `sensor.sensor_type.name` instead.

Each value type maps to one of: a quantity we export (QUANTITIES), COUNT (a particle count or
number concentration, never a mass, so it must not reach an index) or IGNORED (known and
deliberately not exported: diagnostics, GPS, noise, CO₂, size bins we have no gauge for).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PM_SIZES = ("pm1", "pm2.5", "pm4", "pm10")
QUANTITIES = (*PM_SIZES, "temperature", "humidity", "pressure")
COUNT = "particle_count"  # also the rejection reason
IGNORED = "ignored"
UNKNOWN_SENSOR = "unknown_sensor_type"  # a P value from a sensor type we do not know (reason)


@dataclass(frozen=True)
class Family:
    label: str  # the `type` label of a local device; the API's own name is used for records
    values: Mapping[str, str]  # value type without prefix -> quantity, COUNT or IGNORED


def _kinds(kind: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, kind)


# In every family P0 is PM1, P1 PM10, P2 PM2.5 and P4 PM4 (the firmware's SDS011 channel names,
# kept for all later sensors). The HPM code prints "PM2.5" beside HPM_P1 in its debug log, but
# the value it stores there is the PM10 average: the mapping is the same as everywhere else.
# Every mass sensor takes all four names, also those the firmware does not write for it (an
# SDS011 has no P0): a name never changes its meaning from one sensor to the next.
_PM = {"P0": "pm1", "P1": "pm10", "P2": "pm2.5", "P4": "pm4"}
_CLIMATE = {"temperature": "temperature", "humidity": "humidity", "pressure": "pressure"}

SDS = Family("SDS011", _PM)
PMS = Family("PMSx003", _PM)
HPM = Family("HPM", _PM)
NPM = Family("NextPM", _PM | _kinds(COUNT, "N1", "N10", "N25"))
IPS = Family("IPS-7100", _PM | _kinds(IGNORED, "P01", "P03", "P05", "P5")
             | _kinds(COUNT, "N01", "N03", "N05", "N1", "N25", "N5", "N10"))
SPS30 = Family("SPS30", _PM | _kinds(COUNT, "N05", "N1", "N25", "N4", "N10")
               | _kinds(IGNORED, "TS"))  # TS: typical particle size, µm
SEN5X = Family("SEN5X", _PM | _kinds(COUNT, "N05", "N1", "N25", "N4", "N10")
               | _kinds(IGNORED, "TS", "voc", "nox")
               | {"temperature": "temperature", "humidity": "humidity"})
# PPD42NS: P1/P2 come from the spec sheet's curve, particles per 0.01 ft³ -- not µg/m³
PPD = Family("PPD42NS", _kinds(COUNT, "P1", "P2")
             | _kinds(IGNORED, "durP1", "ratioP1", "durP2", "ratioP2"))
DHT = Family("DHT22", {"temperature": "temperature", "humidity": "humidity"})
HTU21D = Family("HTU21D", DHT.values)
SHT3X = Family("SHT3x", DHT.values)
BME280 = Family("BME280", _CLIMATE)
BMP280 = Family("BMP280", {"temperature": "temperature", "pressure": "pressure"})
BMP180 = Family("BMP180", BMP280.values)
DS18B20 = Family("DS18B20", {"temperature": "temperature"})
SCD30 = Family("SCD30", {**DHT.values} | _kinds(IGNORED, "co2_ppm"))
DNMS = Family("DNMS", _kinds(IGNORED, "noise_LAeq", "noise_LA_min", "noise_LA_max"))
GPS = Family("GPS", _kinds(IGNORED, "lat", "lon", "height", "timestamp"))
DEVICE = Family("", _kinds(IGNORED, "samples", "min_micro", "max_micro", "interval", "signal"))

# data.json prefix -> family (PMS2: the second PMS of the dual-PMS beta firmware)
LOCAL_PREFIXES: dict[str, Family] = {
    "SDS": SDS, "PMS": PMS, "PMS2": PMS, "HPM": HPM, "NPM": NPM, "IPS": IPS, "SPS30": SPS30,
    "SEN5X": SEN5X, "HTU21D": HTU21D, "BMP": BMP180, "SHT3X": SHT3X, "SCD30": SCD30,
    "BME280": BME280, "BMP280": BMP280, "DS18B20": DS18B20, "DNMS": DNMS, "GPS": GPS,
}
LOCAL_UNPREFIXED = (PPD, DHT, DEVICE)

# API sensor_type.name (upper-cased) starts with -> family. Checked in this order.
API_NAMES: tuple[tuple[str, Family], ...] = (
    ("PPD42", PPD), ("SDS", SDS), ("PMS", PMS), ("HPM", HPM), ("NEXTPM", NPM), ("NPM", NPM),
    ("IPS", IPS), ("SPS30", SPS30), ("SEN5", SEN5X), ("DHT", DHT), ("HTU21", HTU21D),
    ("SHT", SHT3X), ("BME280", BME280), ("BMP280", BMP280), ("BMP180", BMP180),
    ("DS18B20", DS18B20), ("SCD30", SCD30), ("DNMS", DNMS), ("LAERM", DNMS), ("GPS", GPS),
)


@dataclass(frozen=True)
class Kind:
    family: Family | None  # None: a sensor type we do not know
    kind: str | None  # a quantity, COUNT, IGNORED, UNKNOWN_SENSOR; None = unknown value type


def local_kind(value_type: str) -> Kind:
    """A data.json value type -> what it is. Prefixed types are looked up under their prefix
    (`DNMS_noise_LAeq` -> DNMS `noise_LAeq`), the rest among the unprefixed writers."""
    prefix, _, rest = value_type.partition("_")
    family = LOCAL_PREFIXES.get(prefix)
    if family is not None and rest in family.values:
        return Kind(family, family.values[rest])
    for family in LOCAL_UNPREFIXED:
        if value_type in family.values:
            return Kind(family, family.values[value_type])
    return Kind(None, None)


def api_family(sensor_type: str) -> Family | None:
    name = sensor_type.strip().upper()
    for start, family in API_NAMES:
        if name.startswith(start):
            return family
    return None


def api_kind(family: Family | None, value_type: str) -> Kind:
    """An API record's value type, given its sensor's family. Temperature, humidity and
    pressure mean the same from any sensor; for a sensor type we do not know nothing else is
    taken: whether its P values are masses cannot be told."""
    if family is not None:
        return Kind(family, family.values.get(value_type, _CLIMATE.get(value_type)))
    if value_type in ("P0", "P1", "P2", "P4"):
        return Kind(None, UNKNOWN_SENSOR)
    return Kind(None, _CLIMATE.get(value_type))
