"""The small dashboard builder the per-job panel modules (grafana/jobs/<name>.py) and
build_dashboards.py share: targets, panels, variables, the grid layout and the dashboard frame.
Kept in the repo (no builder library): see docs/stack.md "Dashboards"."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

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


Placed = tuple[dict[str, Any], int, int]  # a panel with its width and height on the grid


@dataclass
class Board:
    """A dashboard a job's panel module owns; other jobs may add panels to it by its file."""

    file: str
    uid: str
    title: str
    description: str = ""
    time_from: str = "now-24h"
    variables: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    footer: list[Placed] = field(default_factory=list)  # after every job's panels

    def build(self, placed: list[Placed]) -> dict[str, Any]:
        return dashboard(self.uid, self.title, [*placed, *self.footer],
                         variables=self.variables or None, time_from=self.time_from,
                         description=self.description, annotations=self.annotations or None)


def job_runs_panel() -> Placed:
    """Runs of every job by result in the time range (the homemon_job_* self-metrics)."""
    runs = panel("table", "Job runs in range",
                 [target("sum by (job, result) (increase(homemon_job_runs_total[$__range]))",
                         instant=True, fmt="table")],
                 transformations=[{"id": "organize", "options": {
                     "excludeByName": {"Time": True}, "renameByName": {"Value": "runs"}}}])
    return (runs, 12, 8)
