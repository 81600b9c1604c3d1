"""Sensor.Community records and airrohr data.json -> Readings. Parsing is pure; fetch() is
the only function that talks to the network.

Facts this relies on (checked against the airrohr firmware and the API's docs): values and
coordinates are strings; `P1` is PM10, `P2` is PM2.5, `P0` is PM1 (do not swap them);
timestamps are UTC without an offset, with a space or a "T"; a failed fan or dirty inlet
reports 999.9 / 1999.9, and the official map drops PM10 >= 1900 and PM2.5 >= 900. What each
value type of each sensor is comes from monitor/jobs/aqi_types.py.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from monitor.jobs.aqi_types import (
    COUNT,
    IGNORED,
    UNKNOWN_SENSOR,
    Family,
    Kind,
    api_family,
    api_kind,
    local_kind,
)

FAULT_VALUES = (999.9, 1999.9)
FAULT_LIMIT = {"pm10": 1900.0, "pm4": 900.0, "pm2.5": 900.0, "pm1": 900.0}
MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class SensorInfo:
    name: str
    type: str
    country: str = ""
    latitude: str = ""
    longitude: str = ""
    indoor: str = ""

    def labels(self) -> tuple[str, ...]:
        return (self.name, self.type, self.country, self.latitude, self.longitude, self.indoor)


@dataclass(frozen=True)
class Reading:
    sensor: str          # Sensor.Community sensor id, or the local device's configured name
    timestamp: float     # Unix seconds, when the sensor measured
    values: dict[str, float]  # pm1/pm2.5/pm4/pm10 µg/m³, temperature °C, humidity 0-1, pressure Pa
    info: SensorInfo


@dataclass
class Parsed:
    readings: list[Reading] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    unknown: set[str] = field(default_factory=set)  # unknown value/sensor types, for the log


class Rejected(ValueError):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


class FetchError(Exception):
    """A source could not be read; `reason` is a short label value (http_429, timeout …)."""

    def __init__(self, reason: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.retry_after = retry_after


# --- parsing ---------------------------------------------------------------------------------


def parse_timestamp(text: Any) -> float:
    if not isinstance(text, str) or not text:
        raise Rejected("missing_field", "no timestamp")
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Rejected("malformed", f"timestamp {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the API's timestamps are UTC without an offset
    return moment.timestamp()


def parse_value(quantity: str, raw: Any) -> float:
    """One value string -> a number in base units; raises Rejected(reason)."""
    if raw is None or isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise Rejected("missing_field" if raw is None else "not_numeric", repr(raw))
    try:
        value = float(raw)
    except ValueError:
        raise Rejected("not_numeric", repr(raw)) from None
    if not math.isfinite(value):
        raise Rejected("not_numeric", repr(raw))
    if quantity in FAULT_LIMIT:
        if value in FAULT_VALUES or value >= FAULT_LIMIT[quantity]:
            raise Rejected("fault", f"{quantity} {value}")
        if value < 0:
            raise Rejected("negative", f"{quantity} {value}")
    elif quantity == "humidity":
        if not 0 <= value <= 100:
            raise Rejected("out_of_range", f"humidity {value} %")
        value /= 100  # exported as a 0-1 ratio
    elif quantity == "pressure" and value <= 0:
        raise Rejected("negative", f"pressure {value}")
    return value


def parse_values(entries: Any, parsed: Parsed, classify: Callable[[str], Kind],
                 origin: str = "") -> tuple[dict[str, float], list[Family]]:
    """A sensordatavalues list -> values by quantity, and the sensor families that wrote them
    (in order). Particle counts, unknown value types and unknown sensors' P values are counted
    in `parsed.rejected`; known values we do not export are passed over. With two sensors of
    one quantity on a device the first listed wins. `origin` ends the log text of an unknown
    type (" from sensor type 'X'")."""
    if not isinstance(entries, list):
        raise Rejected("missing_field", "no sensordatavalues list")
    values: dict[str, float] = {}
    families: list[Family] = []
    for entry in entries:
        if not isinstance(entry, dict) or "value_type" not in entry or "value" not in entry:
            parsed.rejected["missing_field"] += 1
            continue
        value_type = str(entry["value_type"])
        kind = classify(value_type)
        if kind.family is not None and kind.family.label and kind.family not in families:
            families.append(kind.family)
        quantity = kind.kind
        if quantity is None:
            parsed.rejected["unknown_value_type"] += 1
            parsed.unknown.add(f"value type {value_type!r}{origin}")
        elif quantity == UNKNOWN_SENSOR:
            parsed.rejected[UNKNOWN_SENSOR] += 1
        elif quantity == COUNT:
            parsed.rejected[COUNT] += 1
        elif quantity != IGNORED and quantity not in values:
            try:
                values[quantity] = parse_value(quantity, entry["value"])
            except Rejected as exc:
                parsed.rejected[exc.reason] += 1
    return values, families


def _coordinate(raw: Any, limit: float) -> str:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return ""
    return str(raw).strip() if math.isfinite(value) and abs(value) <= limit else ""


def parse_record(record: Any, parsed: Parsed) -> Reading | None:
    """One API record -> a Reading, or None (counted in `parsed.rejected`) when unusable.
    Which values are what is decided by the record's sensor type (aqi_types.API_NAMES): the
    P1/P2 of a PPD42NS are particle counts, not µg/m³."""
    unknown_before = parsed.rejected[UNKNOWN_SENSOR]
    try:
        if not isinstance(record, dict):
            raise Rejected("malformed", "record is not an object")
        sensor = record.get("sensor")
        if not isinstance(sensor, dict) or sensor.get("id") in (None, ""):
            raise Rejected("missing_field", "no sensor id")
        timestamp = parse_timestamp(record.get("timestamp"))
        sensor_type = sensor.get("sensor_type")
        type_name = str(sensor_type.get("name", "")) if isinstance(sensor_type, dict) else ""
        family = api_family(type_name)
        values, _ = parse_values(record.get("sensordatavalues"), parsed,
                                 lambda value_type: api_kind(family, value_type),
                                 f" from sensor type {type_name!r}")
    except Rejected as exc:
        parsed.rejected[exc.reason] += 1
        return None
    if family is None and parsed.rejected[UNKNOWN_SENSOR] > unknown_before:
        parsed.unknown.add(f"sensor type {type_name!r}")
    if not values:
        return None
    location = record.get("location") if isinstance(record.get("location"), dict) else {}
    indoor = location.get("indoor")
    info = SensorInfo(
        name=f"{type_name} {sensor['id']}".strip(),
        type=type_name,
        country=str(location.get("country") or ""),
        latitude=_coordinate(location.get("latitude"), 90),
        longitude=_coordinate(location.get("longitude"), 180),
        indoor="" if indoor is None else ("true" if str(indoor) in ("1", "true", "True")
                                          else "false"))
    return Reading(str(sensor["id"]), timestamp, values, info)


def parse_records(payload: Any) -> Parsed:
    """An API response (a JSON list of records) -> Readings of every usable record."""
    parsed = Parsed()
    if not isinstance(payload, list):
        raise FetchError("malformed", f"expected a JSON list of records, got "
                                      f"{type(payload).__name__}")
    if not payload:
        parsed.rejected["empty"] += 1
    for record in payload:
        reading = parse_record(record, parsed)
        if reading is not None:
            parsed.readings.append(reading)
    return parsed


def parse_local(payload: Any, name: str, now: float, *, latitude: str = "",
                longitude: str = "", indoor: str = "") -> Parsed:
    """An airrohr device's data.json -> one Reading named after the configured device, its
    `type` the sensors found ("NextPM+BME280"). Value types per aqi_types.local_kind. `age` is
    the seconds since the device measured."""
    parsed = Parsed()
    if not isinstance(payload, dict):
        raise FetchError("malformed", f"expected a data.json object, got {type(payload).__name__}")
    try:
        values, families = parse_values(payload.get("sensordatavalues"), parsed, local_kind)
    except Rejected as exc:
        parsed.rejected[exc.reason] += 1
        return parsed
    try:
        age = max(0.0, float(payload.get("age", 0) or 0))
    except (TypeError, ValueError):
        age = 0.0
    if values:
        info = SensorInfo(name=name, type="+".join(f.label for f in families), latitude=latitude,
                          longitude=longitude, indoor=indoor)
        parsed.readings.append(Reading(name, math.floor(now - age), values, info))
    return parsed


# --- fetching --------------------------------------------------------------------------------


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def fetch_json(session: requests.Session, url: str, timeout: float,
               stop: threading.Event | None = None, user_agent: str = "") -> Any:
    """GET `url` and decode JSON, within `timeout` seconds in total (not only per socket read,
    so a server trickling bytes cannot hold the job), and at most MAX_BODY_BYTES."""
    deadline = time.monotonic() + timeout
    try:
        headers = {"User-Agent": user_agent, "Accept": "application/json"} if user_agent else {}
        with session.get(url, timeout=timeout, stream=True, headers=headers) as response:
            if response.status_code != 200:
                status = response.status_code
                reason = f"http_{status}" if status in (403, 404, 429) else (
                    "http_5xx" if status >= 500 else f"http_{status}")
                raise FetchError(reason, f"{url}: HTTP {status}", _retry_after(response))
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise FetchError("too_large", f"{url}: body over {MAX_BODY_BYTES} bytes")
                if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                    raise FetchError("timeout", f"{url}: no complete answer in {timeout:g} s")
    except requests.Timeout:
        raise FetchError("timeout", f"{url}: no answer in {timeout:g} s") from None
    except requests.RequestException as exc:
        raise FetchError("connection", f"{url}: {type(exc).__name__}: {exc}") from None
    body = b"".join(chunks)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        start = body[:60].decode("utf-8", "replace").strip()
        raise FetchError("malformed", f"{url}: not JSON (starts {start!r})") from None
