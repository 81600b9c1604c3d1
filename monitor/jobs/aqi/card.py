"""The aqi job's card: the latest PM2.5/PM10 medians with the UK DAQI chip, and 24 h charts
over the DAQI's own colour bands."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from monitor.cards import Card, Figure, HistoryRows, JobView
from monitor.charts import Band, Chart, Line
from monitor.entities import Entity
from monitor.htmlparts import iso, num
from monitor.jobs.aqi import entities
from monitor.jobs.aqi.indices import DAQI_COLOURS, DAQI_UPPER, daqi_band
from monitor.ledger.records import AirQualitySample
from monitor.ledger.store import Series24h
from monitor.series import SeriesKey, number

PM25, PM10, DAQI = SeriesKey("pm", "pm2.5"), SeriesKey("pm", "pm10"), SeriesKey("uk_daqi")
SENSOR = "median"  # the ledger keeps the hourly mean of the sensors' median the page shows


def daqi_bands(pollutant: str) -> list[Band]:
    """One band per DAQI index, in its official colour (bounds are whole µg/m³, inclusive)."""
    bands, low = [], 0.0
    for index, bound in enumerate((*DAQI_UPPER[pollutant], math.inf), start=1):
        high = bound + 0.5
        bands.append(Band(low, high, DAQI_COLOURS[index - 1], f"DAQI {index}"))
        low = high
    return bands


class AqiCard(Card):
    job = "aqi"

    def __init__(self, scales: Sequence[str] = ("uk_daqi",)) -> None:
        self.scales = scales  # the configured index scales, for entities()

    def series(self, summary: Mapping[str, Any]) -> dict[SeriesKey, float | None]:
        return {PM25: number(summary.get("pm25_median")),
                PM10: number(summary.get("pm10_median")),
                DAQI: number(summary.get("uk_daqi_worst"))}

    def ledger_rows(self, result: str, summary: Mapping[str, Any],
                    at: float) -> list[AirQualitySample]:
        pm25, pm10 = number(summary.get("pm25_median")), number(summary.get("pm10_median"))
        if result != "success" or (pm25 is None and pm10 is None):
            return []
        return [AirQualitySample(SENSOR, at, pm25, pm10)]

    def from_ledger(self, series: Series24h) -> HistoryRows:
        """Hourly means: the 24 h chart has a point an hour (at its middle, or now for the
        hour still going on)."""
        now = series.since + 86400
        return [(min(hour.hour + 1800.0, now), {PM25: hour.pm25, PM10: hour.pm10})
                for hour in series.air_quality if hour.sensor == SENSOR]

    def status(self, view: JobView, now: float) -> dict[str, Any]:
        if view.latest is None:
            return {"air": None}
        summary = view.latest.summary
        daqi = summary.get("uk_daqi_worst")
        return {"air": {"at": iso(view.latest.at), "pm2_5": summary.get("pm25_median"),
                        "pm10": summary.get("pm10_median"), "uk_daqi": daqi,
                        "uk_daqi_band": daqi_band(daqi).name if isinstance(daqi, int) else None,
                        "sensors_fresh": summary.get("sensors_fresh")}}

    def figures(self, view: JobView) -> list[Figure]:
        summary = view.latest.summary if view.latest else {}
        return [Figure("PM2.5", number(summary.get("pm25_median")), "µg/m³", "pm25"),
                Figure("PM10", number(summary.get("pm10_median")), "µg/m³", "pm10"),
                Figure("UK DAQI", number(summary.get("uk_daqi_worst")), "", "aqi")]

    def entities(self) -> list[Entity]:
        return entities.declare(self.scales)

    def charts(self, view: JobView) -> list[Chart]:
        return [Chart(f"{title} (bands: DAQI index)", "µg/m³",
                      [Line(title, "s0", view.table.points(key))],
                      bands=daqi_bands(key.label), floor_max=DAQI_UPPER[key.label][2] + 0.5)
                for key, title in ((PM25, "PM2.5"), (PM10, "PM10"))]

    def section(self, status: Mapping[str, Any], charts: Sequence[str], now: float) -> str:
        air = status.get("air") or {}
        daqi = air.get("uk_daqi")
        chip = ""
        if isinstance(daqi, int) and 1 <= daqi <= 10:
            chip = (f'<span class="chip" style="background:{DAQI_COLOURS[daqi - 1]}">DAQI '
                    f'{daqi} {escape(air.get("uk_daqi_band") or "")}</span>')
        figures = (f'<p><span class="big">{num(air.get("pm2_5"), "µg/m³")}</span> PM2.5 · '
                   f'<span class="big">{num(air.get("pm10"), "µg/m³")}</span> PM10 {chip}</p>'
                   if air.get("at") else '<p class="muted">no reading yet</p>')
        return f'<section id="air"><h2>Air</h2>{figures}{"".join(charts)}</section>'
