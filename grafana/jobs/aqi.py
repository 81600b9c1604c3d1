"""The aqi job's panels: the Air quality dashboard (sensor map, DAQI bands and advice, PM
and index history)."""

from __future__ import annotations

from typing import Any

from dashkit import DAQI_STEPS, Board, Placed, panel, stat, target, timeseries, variable

BOARD = Board(
    "air-quality.json", "homemon-air", "Air quality", time_from="now-7d",
    description="Sensor.Community and local sensors, UK DAQI bands.",
    variables=[variable("sensor", "Sensor",
                        'label_values(homemon_air_quality_index{probe=~"$probe"}, sensor)')])


def panels() -> list[Placed]:
    sensor = 'sensor=~"$sensor"'
    joined = _daqi_with_info(sensor)
    return [
        (_sensor_map(joined), 14, 12),
        (panel("text", "DAQI bands and health advice", [],
               options={"mode": "markdown", "content": DAQI_ADVICE}), 10, 12),
        *_air_stats(sensor),
        (_sensor_table(sensor, joined), 24, 8),
        (_pm_panel(sensor, "pm2.5", "PM2.5"), 12, 9),
        (_pm_panel(sensor, "pm10", "PM10"), 12, 9),
        *_air_history(sensor),
    ]


DAQI_ADVICE = """\
| DAQI | Band | At-risk individuals* | General population |
|---|---|---|---|
| 1–3 | **Low** | Enjoy your usual outdoor activities. | Enjoy your usual outdoor activities. |
| 4–6 | **Moderate** | Adults and children with lung problems, and adults with heart \
problems, who experience symptoms, should consider reducing strenuous physical activity, \
particularly outdoors. | Enjoy your usual outdoor activities. |
| 7–9 | **High** | Adults and children with lung problems, and adults with heart problems, \
should reduce strenuous physical exertion, particularly outdoors, and particularly if they \
experience symptoms. People with asthma may find they need to use their reliever inhaler more \
often. Older people should also reduce physical exertion. | Anyone experiencing discomfort \
such as sore eyes, cough or sore throat should consider reducing activity, particularly \
outdoors. |
| 10 | **Very High** | Adults and children with lung problems, adults with heart problems, \
and older people, should avoid strenuous physical activity. People with asthma may find they \
need to use their reliever inhaler more often. | Reduce physical exertion, particularly \
outdoors, especially if you experience symptoms such as cough or sore throat. |

\\* Adults and children with heart or lung problems are at greater risk of symptoms.
Source: the UK Daily Air Quality Index (DEFRA / COMEAP). The index uses 24-hour running means
of PM2.5 and PM10; indoor sensors are marked in the table.
"""


def _daqi_with_info(sensor: str) -> str:
    """Each sensor's DAQI joined with its name, type and place (one table row each)."""
    return ('max by (sensor, name, type, country, latitude, longitude, indoor) ('
            f'homemon_air_quality_index{{scale="uk_daqi", {sensor}}} '
            '* on (probe, instance, sensor) group_left (name, type, country, latitude, '
            'longitude, indoor) homemon_air_sensor_info)')


def _sensor_map(joined: str) -> dict[str, Any]:
    """The sensors on a map, coloured by DAQI band."""
    to_number = {"id": "convertFieldType", "options": {"conversions": [
        {"targetField": "latitude", "destinationType": "number"},
        {"targetField": "longitude", "destinationType": "number"}]}}
    return panel(
        "geomap", "Sensors by DAQI band", [target(joined, instant=True, fmt="table")],
        description="Each sensor coloured by its UK DAQI band (green Low, amber Moderate, "
        "red High, purple Very High).",
        defaults={"thresholds": {"mode": "absolute", "steps": DAQI_STEPS},
                  "color": {"mode": "thresholds"}, "min": 1, "max": 10},
        transformations=[to_number],
        options={"view": {"id": "fit", "lat": 0, "lon": 0, "zoom": 10, "allLayers": True},
                 "controls": {"showZoom": True, "mouseWheelZoom": True},
                 "basemap": {"type": "default", "name": "Basemap"},
                 "layers": [{"type": "markers", "name": "Sensors", "tooltip": True,
                             "location": {"mode": "coords", "latitude": "latitude",
                                          "longitude": "longitude"},
                             "config": {"showLegend": True,
                                        "style": {"size": {"fixed": 12},
                                                  "color": {"field": "Value"},
                                                  "opacity": 0.9,
                                                  "text": {"field": "name", "mode": "field"},
                                                  "textConfig": {"fontSize": 11,
                                                                 "offsetY": -16}}}}],
                 "tooltip": {"mode": "details"}})


def _sensor_table(sensor: str, joined: str) -> dict[str, Any]:
    """Latest readings per sensor, one row each, exportable as CSV."""
    return panel(
        "table", "Sensors (Inspect → Data → Download CSV)",
        [target(joined, instant=True, fmt="table"),
         target(f'max by (sensor) (homemon_air_pm_micrograms_per_cubic_meter{{size="pm2.5", '
                f'{sensor}}})', ref="B", instant=True, fmt="table"),
         target(f'max by (sensor) (homemon_air_pm_micrograms_per_cubic_meter{{size="pm10", '
                f'{sensor}}})', ref="C", instant=True, fmt="table"),
         target(f'max by (sensor) (homemon_air_pm_mean_micrograms_per_cubic_meter{{'
                f'size="pm2.5", window="24h", {sensor}}})', ref="D", instant=True, fmt="table"),
         target(f'max by (sensor) (homemon_air_pm_mean_micrograms_per_cubic_meter{{'
                f'size="pm10", window="24h", {sensor}}})', ref="E", instant=True, fmt="table")],
        description="Latest readings per sensor. To export: panel menu → Inspect → Data → "
        "Download CSV.",
        defaults={"thresholds": {"mode": "absolute", "steps": DAQI_STEPS}},
        overrides=[{"matcher": {"id": "byName", "options": "DAQI"}, "properties": [
            {"id": "custom.cellOptions", "value": {"type": "color-background"}}]}],
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True},
                "renameByName": {"Value #A": "DAQI", "Value #B": "PM2.5 µg/m³",
                                 "Value #C": "PM10 µg/m³", "Value #D": "PM2.5 24 h mean",
                                 "Value #E": "PM10 24 h mean"}}}])


def _pm_panel(sensor: str, size: str, label: str) -> dict[str, Any]:
    """One particulate size: the latest readings and their 24 h running mean."""
    return timeseries(f"{label} and its 24 h mean", [
        target(f'homemon_air_pm_micrograms_per_cubic_meter{{size="{size}", {sensor}}}',
               "{{sensor}}"),
        target(f'homemon_air_pm_mean_micrograms_per_cubic_meter{{size="{size}", '
               f'window="24h", {sensor}}}', "{{sensor}} 24 h mean", "B"),
    ], unit="conμgm3", calcs=["max", "mean", "lastNotNull"],
        description="Max and mean over the selected range in the legend.")


def _air_stats(sensor: str) -> list[Placed]:
    """The stat row: highest DAQI, mean and max PM2.5, mean PM10 in range."""
    return [
        (stat("Highest DAQI in range",
              f'max(max_over_time(homemon_air_quality_index{{scale="uk_daqi", {sensor}}}'
              '[$__range]))', steps=DAQI_STEPS), 6, 5),
        (stat("Mean PM2.5 in range",
              f'avg(avg_over_time(homemon_air_pm_micrograms_per_cubic_meter{{size="pm2.5", '
              f'{sensor}}}[$__range]))', unit="conμgm3"), 6, 5),
        (stat("Max PM2.5 in range",
              f'max(max_over_time(homemon_air_pm_micrograms_per_cubic_meter{{size="pm2.5", '
              f'{sensor}}}[$__range]))', unit="conμgm3"), 6, 5),
        (stat("Mean PM10 in range",
              f'avg(avg_over_time(homemon_air_pm_micrograms_per_cubic_meter{{size="pm10", '
              f'{sensor}}}[$__range]))', unit="conμgm3"), 6, 5),
    ]


def _air_history(sensor: str) -> list[Placed]:
    """DAQI, temperature and humidity over time; the sources' health."""
    return [
        (timeseries("DAQI", [target(f'homemon_air_quality_index{{scale="uk_daqi", {sensor}}}',
                                    "{{sensor}}")],
                    calcs=["max", "mean"],
                    defaults={"min": 1, "max": 10,
                              "thresholds": {"mode": "absolute", "steps": DAQI_STEPS},
                              "custom": {"thresholdsStyle": {"mode": "area"},
                                         "drawStyle": "line", "lineWidth": 2,
                                         "fillOpacity": 0}}), 12, 8),
        (timeseries("Temperature and humidity", [
            target(f"homemon_air_temperature_celsius{{{sensor}}}", "{{sensor}} °C"),
            target(f"homemon_air_relative_humidity_ratio{{{sensor}}} * 100", "{{sensor}} %RH",
                   "B"),
        ]), 12, 8),
        (panel("table", "Sources", [
            target("max by (source) (homemon_air_source_up)", instant=True, fmt="table"),
            target("sum by (source) (increase(homemon_air_fetch_errors_total[$__range]))",
                   ref="B", instant=True, fmt="table")],
               description="1 if the source answered usable data in its last request; "
               "failed requests in the range.",
               transformations=[{"id": "merge", "options": {}}, {"id": "organize", "options": {
                   "excludeByName": {"Time": True},
                   "renameByName": {"Value #A": "up", "Value #B": "errors in range"}}}]),
         12, 8),
        (timeseries("Rejected readings", [target(
            "sum by (reason) (increase(homemon_air_readings_rejected_total[$__rate_interval]))",
            "{{reason}}")], points=True,
            description="Malformed, faulty (999.9), stale ... readings the job dropped."), 12, 8),
    ]


