"""Build the Grafana dashboards in grafana/dashboards/*.json.

    python grafana/build_dashboards.py          # rewrite the JSON files
    python grafana/build_dashboards.py --check  # exit 1 if a file differs from what this builds

The JSON files are what Grafana loads (provisioned read-only); this script is their source, so
the panels stay consistent (same datasource uids, units, legends). tests/test_stack_grafana.py
checks that the committed files are what this script builds.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"

PROM = {"type": "prometheus", "uid": "homemon-prometheus"}
LOKI = {"type": "loki", "uid": "homemon-loki"}

DAQI_STEPS = [
    {"color": "green", "value": None},
    {"color": "#FFBF00", "value": 4},
    {"color": "red", "value": 7},
    {"color": "purple", "value": 10},
]
UP_DOWN = [
    {"type": "value", "options": {
        "0": {"text": "DOWN", "color": "red", "index": 0},
        "1": {"text": "UP", "color": "green", "index": 1}}},
    {"type": "special", "options": {"match": "nan", "result": {"text": "unknown",
                                                                 "color": "gray", "index": 2}}},
]


PROBE = 'probe=~"$probe"'
# PromQL words that are never a metric name: aggregations, set operators and modifiers.
PROMQL_WORDS = {"sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk",
                "quantile", "count_values", "group", "and", "or", "unless", "bool", "offset",
                "by", "without", "on", "ignoring", "group_left", "group_right"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def _closing(expr: str, start: int, opening: str, closing: str) -> int:
    """Index just past the bracket that closes expr[start] (skipping quoted strings)."""
    depth, index = 0, start
    while index < len(expr):
        char = expr[index]
        if char in "\"'`":
            index = expr.index(char, index + 1) + 1
            continue
        depth += (char == opening) - (char == closing)
        index += 1
        if depth == 0:
            return index
    raise ValueError(f"unbalanced {opening!r} in {expr}")


def with_probe(expr: str) -> str:
    """Add the dashboard's probe filter to every vector selector of a PromQL expression.

    Locally the series have no `probe` label (Prometheus adds its external label only to what
    it sends away), and `probe=~".*"` (the variable's All) matches the missing label; on a
    central Grafana the same dashboards then filter by site.
    """
    out, index = [], 0
    while index < len(expr):
        char = expr[index]
        if char in "\"'`":
            end = expr.index(char, index + 1) + 1
        elif char == "[":
            end = _closing(expr, index, "[", "]")
        elif char == "{":  # a selector without a metric name
            end = _closing(expr, index, "{", "}")
            out.append(_add_matcher(expr[index:end]))
            index = end
            continue
        elif char == "$" or char.isdigit() or char == ".":
            end = index + 1
            while end < len(expr) and (expr[end].isalnum() or expr[end] in "_.:"):
                end += 1
        elif char.isalpha() or char in "_:":
            end = index + 1
            while end < len(expr) and (expr[end].isalnum() or expr[end] in "_:"):
                end += 1
            word, rest = expr[index:end], expr[end:].lstrip()
            if word in LABEL_LISTS and rest.startswith("("):
                end = _closing(expr, len(expr) - len(rest), "(", ")")
            elif word not in PROMQL_WORDS and not rest.startswith("("):
                out.append(word)
                index = end
                if rest.startswith("{"):
                    start = len(expr) - len(rest)
                    out.append(expr[index:start])
                    end = _closing(expr, start, "{", "}")
                    out.append(_add_matcher(expr[start:end]))
                else:
                    out.append("{" + PROBE + "}")
                index = end
                continue
        else:
            end = index + 1
        out.append(expr[index:end])
        index = end
    return "".join(out)


def _add_matcher(braces: str) -> str:
    inner = braces[1:-1].strip()
    if re.search(r"\bprobe\s*[=!]", inner):
        return braces
    return "{" + PROBE + (", " + inner if inner else "") + "}"


def target(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False,
           fmt: str = "time_series", datasource: dict[str, str] = PROM,
           min_step: str = "") -> dict[str, Any]:
    if datasource is PROM:
        expr = with_probe(expr)
    query: dict[str, Any] = {"datasource": datasource, "refId": ref, "expr": expr}
    if min_step:  # the query's "Min step": Grafana's scrape interval for $__rate_interval
        query["interval"] = min_step
    if datasource is PROM:
        query.update(legendFormat=legend or "__auto", format=fmt, instant=instant,
                     range=not instant)
    else:
        query.update(queryType="range")
    return query


class Layout:
    """Places panels left to right, wrapping at Grafana's 24 columns."""

    def __init__(self) -> None:
        self.x = self.y = self.row_height = 0
        self.next_id = 1

    def place(self, panel: dict[str, Any], w: int, h: int) -> dict[str, Any]:
        if self.x + w > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        panel["id"] = self.next_id
        self.next_id += 1
        self.x += w
        self.row_height = max(self.row_height, h)
        return panel


def panel(kind: str, title: str, targets: list[dict[str, Any]], *, unit: str = "short",
          description: str = "", datasource: dict[str, str] = PROM, **extra: Any
          ) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": kind, "title": title, "description": description, "datasource": datasource,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
    }
    for key, value in extra.items():
        if key == "defaults":
            body["fieldConfig"]["defaults"].update(value)
        elif key == "overrides":
            body["fieldConfig"]["overrides"] = value
        else:
            body[key] = value
    return body


def stat(title: str, expr: str, *, unit: str = "short", description: str = "",
         mappings: list[dict[str, Any]] | None = None, steps: list[dict[str, Any]] | None = None,
         calc: str = "lastNotNull", instant: bool = True) -> dict[str, Any]:
    return panel("stat", title, [target(expr, instant=instant)], unit=unit,
                 description=description,
                 defaults={"mappings": mappings or [],
                           "thresholds": {"mode": "absolute", "steps": steps or [
                               {"color": "green", "value": None}]},
                           "noValue": "no data"},
                 options={"reduceOptions": {"calcs": [calc], "fields": "", "values": False},
                          "colorMode": "background" if mappings or steps else "value",
                          "graphMode": "none", "textMode": "auto"})


def timeseries(title: str, targets: list[dict[str, Any]], *, unit: str = "short",
               description: str = "", calcs: list[str] | None = None, points: bool = False,
               legend: bool = True, **extra: Any) -> dict[str, Any]:
    defaults = {"custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                           "showPoints": "always" if points else "auto", "pointSize": 5,
                           "spanNulls": False}}
    defaults.update(extra.pop("defaults", {}))
    return panel("timeseries", title, targets, unit=unit, description=description,
                 defaults=defaults,
                 options={"legend": {"displayMode": "table" if calcs else "list",
                                     "placement": "bottom", "calcs": calcs or [],
                                     "showLegend": legend},
                          "tooltip": {"mode": "multi", "sort": "desc"}}, **extra)


def variable(name: str, label: str, query: str, *, include_all: bool = True) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "query", "datasource": PROM,
            "query": {"query": query, "refId": f"{name}-var"}, "definition": query,
            "refresh": 2, "multi": True, "includeAll": include_all, "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1, "options": []}


def probe_variable() -> dict[str, Any]:
    """Every dashboard's first variable: the site (Prometheus' external label `probe`).

    A single box has no `probe` label on its own series, so the list is empty and All (".*",
    which also matches a missing label) shows everything; a central Grafana lists the sites.
    """
    var = variable("probe", "Probe", "label_values(probe)")
    var["description"] = "Site (prometheus.yml external_labels.probe); All on a single box."
    return var


def custom_variable(name: str, label: str, values: list[str], *, all_value: str = ".*",
                    description: str = "") -> dict[str, Any]:
    return {"name": name, "label": label, "type": "custom", "query": ",".join(values),
            "description": description,
            "multi": True, "includeAll": True, "allValue": all_value,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": []}


def textbox(name: str, label: str, default: str, description: str) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "textbox", "query": default,
            "description": description,
            "current": {"selected": False, "text": default, "value": default}, "options": []}


def dashboard(uid: str, title: str, panels: list[tuple[dict[str, Any], int, int]], *,
              variables: list[dict[str, Any]] | None = None, time_from: str = "now-24h",
              description: str = "", annotations: list[dict[str, Any]] | None = None
              ) -> dict[str, Any]:
    layout = Layout()
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["home-monitor"], "timezone": "browser", "editable": False,
        "schemaVersion": 41, "version": 1, "refresh": "1m", "graphTooltip": 1,
        "time": {"from": time_from, "to": "now"},
        "templating": {"list": [probe_variable(), *(variables or [])]},
        "annotations": {"list": annotations or []},
        "links": [{"title": "home-monitor", "type": "dashboards", "tags": ["home-monitor"],
                   "asDropdown": True, "includeVars": True, "keepTime": True}],
        "panels": [layout.place(body, w, h) for body, w, h in panels],
    }


# --- Internet --------------------------------------------------------------------------------

def internet() -> dict[str, Any]:
    sel = 'target=~"$target"'
    panels = [
        (stat("Internet now", "homemon_internet_up", mappings=UP_DOWN,
              description="1 if any internet ping target answered in the last round."), 4, 5),
        (stat("Outages", "sum(increase(homemon_internet_outages_total[$__range]))",
              description="Up-to-down transitions seen by the daemon in the time range.",
              steps=[{"color": "green", "value": None}, {"color": "red", "value": 1}]), 4, 5),
        (stat("Time down", "sum(increase(homemon_internet_outage_seconds_total[$__range]))",
              unit="s", description="Time without internet in the range, at ping-round "
              "resolution."), 4, 5),
        (stat("Loss (1 h)", f"avg(homemon:ping_loss_ratio:1h{{{sel}}})", unit="percentunit",
              steps=[{"color": "green", "value": None}, {"color": "#FFBF00", "value": 0.01},
                     {"color": "red", "value": 0.05}]), 4, 5),
        (stat("Median RTT (5 min)", f"avg(homemon:ping_rtt_seconds:p50_5m{{{sel}}})",
              unit="s", steps=[{"color": "green", "value": None},
                               {"color": "#FFBF00", "value": 0.05},
                               {"color": "red", "value": 0.1}]), 4, 5),
        (stat("Jitter (last round)", f"avg(homemon_ping_jitter_seconds{{{sel}}})",
              unit="s"), 4, 5),
        (panel("state-timeline", "Outage timeline",
               [target("homemon_internet_up", "internet {{probe}}"),
                target(f"homemon_ping_up{{{sel}}}", "{{target}} {{probe}}", "B")],
               description="Green: answered; red: no reply in that round. The exact edges of "
               "each outage are in the list below; red marks on every panel show the same "
               "down time.",
               defaults={"mappings": UP_DOWN, "thresholds": {"mode": "absolute", "steps": [
                   {"color": "red", "value": None}, {"color": "green", "value": 1}]}},
               options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8,
                        "legend": {"showLegend": False}}), 24, 6),
        (panel("table", "Outages (start, end, duration)", [target(
            "max by (probe, start, end) (max_over_time("
            "homemon_internet_recent_outage_seconds[$__range]))", instant=True, fmt="table")],
               unit="s", description="Every outage the daemon counted in the time range, with "
               "its exact edges (local time of the box) and length, newest first. The daemon "
               "keeps each one for an hour; Prometheus keeps the history.",
               options={"sortBy": [{"displayName": "start", "desc": True}],
                        "cellHeight": "sm", "showHeader": True},
               transformations=[{"id": "organize", "options": {
                   "excludeByName": {"Time": True},
                   "indexByName": {"start": 0, "end": 1, "Value": 2, "probe": 3},
                   "renameByName": {"Value": "duration"}}}]), 12, 8),
        (timeseries("Outage lengths", [target(
            "max by (probe, start, end) (homemon_internet_recent_outage_seconds) unless "
            "max by (probe, start, end) ("
            "homemon_internet_recent_outage_seconds offset $__interval)",
            "{{start}} – {{end}}")], unit="s", points=True,
            description="One point per outage, when the internet came back; its height is "
            "how long it was down.",
            defaults={"custom": {"drawStyle": "points", "pointSize": 8, "showPoints": "always",
                                 "fillOpacity": 0, "lineWidth": 0, "spanNulls": False}},
            legend=False), 12, 8),
        (panel("heatmap", "RTT heatmap",
               [target(f"sum by (le) (increase(homemon_ping_rtt_seconds_bucket{{{sel}}}"
                       "[$__rate_interval]))", "{{le}}", fmt="heatmap")],
               unit="s", description="Every ping reply, from the RTT histogram.",
               options={"calculate": False, "yAxis": {"unit": "s"},
                        "cellGap": 1, "color": {"mode": "scheme", "scheme": "Spectral",
                                                "steps": 64, "reverse": True},
                        "rowsFrame": {"layout": "auto"}, "tooltip": {"mode": "single"}}),
         12, 9),
        (timeseries("RTT quantiles (5 min)", [
            target(f"homemon:ping_rtt_seconds:p50_5m{{{sel}}}", "{{target}} p50"),
            target(f"homemon:ping_rtt_seconds:p90_5m{{{sel}}}", "{{target}} p90", "B"),
            target(f"homemon:ping_rtt_seconds:p99_5m{{{sel}}}", "{{target}} p99", "C"),
        ], unit="s"), 12, 9),
        (timeseries("Packet loss", [
            target(f"homemon:ping_loss_ratio:5m{{{sel}}}", "{{target}} (5 min)"),
            target(f"homemon_ping_loss_ratio{{{sel}}}", "{{target}} (round)", "B"),
        ], unit="percentunit", calcs=["mean", "max"]), 12, 8),
        (timeseries("Jitter", [target(f"homemon_ping_jitter_seconds{{{sel}}}", "{{target}}")],
                    unit="s", calcs=["mean", "max"]), 12, 8),
        (timeseries("Download vs plan", [
            target("homemon_bandwidth_download_bits_per_second", "{{server}}"),
            target('homemon_bandwidth_plan_bits_per_second{direction="download"}', "plan", "B"),
        ], unit="bps", points=True, calcs=["min", "mean", "max"],
            description="Each point is one test; the plan comes from the config."), 12, 8),
        (timeseries("Upload vs plan", [
            target("homemon_bandwidth_upload_bits_per_second", "{{server}}"),
            target('homemon_bandwidth_plan_bits_per_second{direction="upload"}', "plan", "B"),
        ], unit="bps", points=True, calcs=["min", "mean", "max"]), 12, 8),
        (timeseries("Loaded vs idle latency", [
            target("homemon_bandwidth_idle_rtt_seconds", "idle"),
            target("homemon_bandwidth_loaded_rtt_seconds", "loaded, {{direction}}", "B"),
            target("homemon_bandwidth_latency_seconds", "speedtest server ({{server}})", "C"),
        ], unit="s", points=True, description="Median ping RTT while a test saturates each "
            "direction against the same ping just before the test: the gap is bufferbloat."),
         12, 8),
        (panel("bargauge", "Data used by tests",
               [target("sum by (direction) (increase(homemon_bandwidth_bytes_total[$__range]))",
                       "bandwidth {{direction}}", instant=True),
                target("sum by (direction) (increase(homemon_iperf_bytes_total[$__range]))",
                       "iperf {{direction}}", "B", instant=True)],
               unit="decbytes", description="Data the tests moved in the time range.",
               options={"orientation": "horizontal", "displayMode": "basic",
                        "reduceOptions": {"calcs": ["lastNotNull"], "values": False}}), 12, 8),
        (panel("table", "Job runs in range",
               [target("sum by (job, result) (increase(homemon_job_runs_total[$__range]))",
                       instant=True, fmt="table")],
               transformations=[{"id": "organize", "options": {
                   "excludeByName": {"Time": True},
                   "renameByName": {"Value": "runs"}}}]), 12, 8),
    ]
    down = {"name": "Internet down", "enable": True, "iconColor": "red", "datasource": PROM,
            "expr": with_probe("min by (probe) (homemon_internet_up) == 0"), "step": "15s",
            "titleFormat": "Internet down", "tagKeys": "probe", "textFormat": "",
            "useValueForTime": False}
    return dashboard("homemon-internet", "Internet", panels, description="Latency, loss, "
                     "outages and bandwidth as home-monitor measures them.",
                     annotations=[down],
                     variables=[variable("target", "Ping target",
                                         'label_values(homemon_ping_up{probe=~"$probe"}, target)')])


# --- EC2 iperf -------------------------------------------------------------------------------

def iperf() -> dict[str, Any]:
    cost = ("(sum(increase(homemon_iperf_bytes_total{direction=\"download\"}[$__range])) "
            "or vector(0)) / 1e9 * $egress_usd_per_gb"
            " + (sum(increase(homemon_ec2_instance_running_seconds_total[$__range])) "
            "or vector(0)) / 3600 * $instance_usd_per_hour")
    panels = [
        (stat("Instance running now", "max(homemon_ec2_instance_running)",
              mappings=[{"type": "value", "options": {
                  "0": {"text": "stopped", "color": "green", "index": 0},
                  "1": {"text": "RUNNING", "color": "red", "index": 1}}}]), 6, 5),
        (stat("Running time in range",
              "sum(increase(homemon_ec2_instance_running_seconds_total[$__range]))",
              unit="s"), 6, 5),
        (stat("Estimated cost in range", cost, unit="currencyUSD",
              description="Egress (download direction: EC2 to home) at $egress_usd_per_gb "
              "per GB plus running time at $instance_usd_per_hour per hour. Set both "
              "above for your region and instance type."), 6, 5),
        (stat("Stop failures in range",
              "sum(increase(homemon_ec2_stop_failures_total[$__range]))",
              steps=[{"color": "green", "value": None}, {"color": "red", "value": 1}]), 6, 5),
        (timeseries("Throughput", [target("homemon_iperf_bits_per_second",
                                          "{{direction}} ({{server}})")],
                    unit="bps", points=True, calcs=["min", "mean", "max"],
                    description="Receiver-side goodput of each iperf3 test."), 12, 9),
        (timeseries("Retransmits", [target("homemon_iperf_retransmits",
                                           "{{direction}} ({{server}})")],
                    points=True, calcs=["mean", "max"]), 12, 9),
        (timeseries("Instance start time", [target("homemon_ec2_start_seconds",
                                                   "{{instance_id}}")],
                    unit="s", points=True,
                    description="From the start request to the iperf3 port accepting."),
         12, 8),
        (timeseries("Data moved per test window", [
            target("sum by (direction) (increase(homemon_iperf_bytes_total[$__rate_interval]))",
                   "{{direction}}")], unit="decbytes"), 12, 8),
    ]
    return dashboard("homemon-iperf", "EC2 iperf", panels, time_from="now-7d",
                     description="Throughput to your own EC2 instance and what it costs.",
                     variables=[
                         textbox("egress_usd_per_gb", "Egress USD/GB", "0.09",
                                 "AWS data transfer out to the internet, per GB"),
                         textbox("instance_usd_per_hour", "Instance USD/h", "0.0104",
                                 "On-demand price of the instance type")])


# --- Air quality -----------------------------------------------------------------------------

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


def air() -> dict[str, Any]:
    sensor = 'sensor=~"$sensor"'
    joined = ('max by (sensor, name, type, country, latitude, longitude, indoor) ('
              f'homemon_air_quality_index{{scale="uk_daqi", {sensor}}} '
              '* on (probe, instance, sensor) group_left (name, type, country, latitude, '
              'longitude, indoor) homemon_air_sensor_info)')
    to_number = {"id": "convertFieldType", "options": {"conversions": [
        {"targetField": "latitude", "destinationType": "number"},
        {"targetField": "longitude", "destinationType": "number"}]}}
    geomap = panel(
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
    table = panel(
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

    def pm(size: str, label: str) -> dict[str, Any]:
        return timeseries(f"{label} and its 24 h mean", [
            target(f'homemon_air_pm_micrograms_per_cubic_meter{{size="{size}", {sensor}}}',
                   "{{sensor}}"),
            target(f'homemon_air_pm_mean_micrograms_per_cubic_meter{{size="{size}", '
                   f'window="24h", {sensor}}}', "{{sensor}} 24 h mean", "B"),
        ], unit="conμgm3", calcs=["max", "mean", "lastNotNull"],
            description="Max and mean over the selected range in the legend.")

    panels = [
        (geomap, 14, 12),
        (panel("text", "DAQI bands and health advice", [],
               options={"mode": "markdown", "content": DAQI_ADVICE}), 10, 12),
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
        (table, 24, 8),
        (pm("pm2.5", "PM2.5"), 12, 9),
        (pm("pm10", "PM10"), 12, 9),
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
    return dashboard("homemon-air", "Air quality", panels, time_from="now-7d",
                     description="Sensor.Community and local sensors, UK DAQI bands.",
                     variables=[variable(
                         "sensor", "Sensor",
                         'label_values(homemon_air_quality_index{probe=~"$probe"}, sensor)')])


# --- Logs (Loki) -----------------------------------------------------------------------------

# Loki's detected_level: set at ingestion from the JSON `level` field (warning -> warn), so
# filtering by level needs no parser. Loki v3.7.6: pkg/distributor/field_detection.go.
LEVELS = ["debug", "info", "warn", "error", "critical"]
SERVICES = ["prometheus", "alertmanager", "grafana", "loki", "alloy", "cadvisor"]


def logs() -> dict[str, Any]:
    daemon = '{compose_service="monitor", probe=~"$probe"}'
    level = '| detected_level=~"$level"'
    # Metric queries fail on any line the parser could not read (Loki: "metric queries cannot
    # contain errors"), and the daemon's stderr may hold plain text (a config error): JSON
    # lines are counted per job with their errors dropped, plain-text lines on their own.
    json_lines = (f'sum by (detected_level) (count_over_time({daemon} {level} '
                  '| json job | __error__="" | job=~"$job" [$__interval]))')
    text_lines = (f'sum by (detected_level) (count_over_time({daemon} !~ `^\\s*\\{{` {level} '
                  '[$__interval]))')
    panels = [
        (timeseries("Daemon log lines by level", [
            target(json_lines, "{{detected_level}}", datasource=LOKI),
            target(text_lines, "{{detected_level}} (plain text, any job)", "B",
                   datasource=LOKI)], datasource=LOKI,
            description="JSON lines per level for the selected jobs; plain-text lines (e.g. "
            "a config error before logging starts) counted apart.",
            defaults={"custom": {"drawStyle": "bars", "fillOpacity": 80, "stacking":
                                 {"mode": "normal"}}}), 24, 7),
        (panel("logs", "home-monitor daemon",
               [target(f'{daemon} {level} | json | job=~"$job"', datasource=LOKI)],
               datasource=LOKI, description="The daemon's lines, filtered by Loki's "
               "detected_level and by the JSON job field (parsed with Loki's json parser; a "
               "plain-text line has no job and shows under All).",
               options={"showTime": True, "wrapLogMessage": True, "sortOrder": "Descending",
                        "enableLogDetails": True, "prettifyLogMessage": False}), 24, 14),
        (panel("logs", "Other containers", [target(
            '{compose_service=~"$service", compose_service!="monitor", probe=~"$probe"}',
            datasource=LOKI)],
               datasource=LOKI,
               options={"showTime": True, "wrapLogMessage": True,
                        "sortOrder": "Descending", "enableLogDetails": True}), 24, 10),
    ]
    return dashboard("homemon-logs", "Logs", panels, time_from="now-6h",
                     description="Container logs shipped by Alloy to Loki.",
                     variables=[
                         custom_variable("job", "Job", ["latency", "bandwidth", "iperf", "aqi"]),
                         custom_variable("level", "Level", LEVELS,
                                         description="Loki's detected_level (warning is warn)"),
                         # All must not be ".*": a selector whose matchers all match the
                         # empty string is refused by Loki (see tests/test_stack_logs.py).
                         custom_variable("service", "Container", SERVICES, all_value=".+")])


# --- Containers (cAdvisor) -------------------------------------------------------------------

# cAdvisor stamps each sample with its housekeeping time, not the scrape's: with the compose
# flags (30 s, dynamic up to 60 s, plus cAdvisor's jitter of up to 100 %) samples can be 120 s
# apart. A query "Min step" of 1m is what Grafana then takes as the scrape interval:
# $__rate_interval = max($__interval + 1m, 4 x 1m) >= 240 s, so every rate window holds two
# samples (tests/test_stack_logs.py derives this from the flags). A panel's min interval
# would not do: it raises $__interval but leaves the datasource's 15 s in that formula.
CADVISOR_MIN_STEP = "1m"


def containers() -> dict[str, Any]:
    named = 'name=~".+"'
    step = CADVISOR_MIN_STEP
    panels = [
        (panel("table", "Scrape targets", [target("up", instant=True, fmt="table")],
               description="Every target Prometheus scrapes: 1 up, 0 down.",
               defaults={"mappings": UP_DOWN},
               overrides=[{"matcher": {"id": "byName", "options": "Value"}, "properties": [
                   {"id": "custom.cellOptions", "value": {"type": "color-background"}}]}],
               transformations=[{"id": "organize", "options": {
                   "excludeByName": {"Time": True, "__name__": True},
                   "renameByName": {"Value": "up"}}}]), 12, 8),
        (panel("table", "Container uptime",
               [target(f"time() - max by (name) (container_start_time_seconds{{{named}}})",
                       instant=True, fmt="table")],
               unit="s", transformations=[{"id": "organize", "options": {
                   "excludeByName": {"Time": True}, "renameByName": {"Value": "uptime"}}}]),
         12, 8),
        (timeseries("CPU", [target(
            f"sum by (name) (rate(container_cpu_usage_seconds_total{{{named}}}"
            "[$__rate_interval]))", "{{name}}", min_step=step)], unit="short",
            description="CPU cores used per container.", calcs=["mean", "max"]), 12, 9),
        (timeseries("Memory (working set)", [target(
            f"sum by (name) (container_memory_working_set_bytes{{{named}}})", "{{name}}")],
            unit="bytes", calcs=["mean", "max"]), 12, 9),
        (timeseries("Network received", [target(
            f"sum by (name) (rate(container_network_receive_bytes_total{{{named}}}"
            "[$__rate_interval]))", "{{name}}", min_step=step)], unit="Bps"), 12, 8),
        (timeseries("Network sent", [target(
            f"sum by (name) (rate(container_network_transmit_bytes_total{{{named}}}"
            "[$__rate_interval]))", "{{name}}", min_step=step)], unit="Bps"), 12, 8),
        (timeseries("Disk reads and writes", [
            target(f"sum by (name) (rate(container_fs_reads_bytes_total{{{named}}}"
                   "[$__rate_interval]))", "{{name}} read", min_step=step),
            target(f"sum by (name) (rate(container_fs_writes_bytes_total{{{named}}}"
                   "[$__rate_interval]))", "{{name}} write", "B", min_step=step)], unit="Bps"),
         12, 8),
        (timeseries("Out-of-memory kills", [target(
            f"sum by (name) (increase(container_oom_events_total{{{named}}}"
            "[$__rate_interval]))", "{{name}}", min_step=step)], points=True), 12, 8),
    ]
    return dashboard("homemon-containers", "Containers", panels, time_from="now-6h",
                     description="Resource use of the stack's containers, from cAdvisor.")


DASHBOARDS = {
    "internet.json": internet,
    "iperf.json": iperf,
    "air-quality.json": air,
    "logs.json": logs,
    "containers.json": containers,
}


def render(build: Any) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, don't write")
    args = parser.parse_args()
    stale = []
    for name, build in DASHBOARDS.items():
        path, text = OUT / name, render(build)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run python grafana/build_dashboards.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
