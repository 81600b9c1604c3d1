"""grafana/: provisioning and dashboards (static: there is no Grafana binary here).

The dashboards' PromQL is executed against a real Prometheus in test_stack_prometheus.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.support.stack_configs import DASHBOARDS, REPO, load_yaml, panels

EXPECTED = {"internet.json": "Internet", "iperf.json": "EC2 iperf",
            "air-quality.json": "Air quality", "logs.json": "Logs",
            "containers.json": "Containers"}


def provisioned_datasources() -> dict[str, dict[str, Any]]:
    config = load_yaml("grafana/provisioning/datasources/datasources.yml")
    return {source["uid"]: source for source in config["datasources"]}


def load(name: str) -> dict[str, Any]:
    return json.loads((REPO / "grafana" / "dashboards" / name).read_text(encoding="utf-8"))


def test_datasources_are_provisioned_with_fixed_uids() -> None:
    sources = provisioned_datasources()
    types = {source["type"]: (uid, source["url"]) for uid, source in sources.items()}
    assert types == {"prometheus": ("homemon-prometheus", "http://prometheus:9090"),
                     "loki": ("homemon-loki", "http://loki:3100"),
                     "alertmanager": ("homemon-alertmanager", "http://alertmanager:9093")}
    assert sources["homemon-alertmanager"]["jsonData"]["implementation"] == "prometheus"


def test_dashboards_are_valid_json_with_unique_uids() -> None:
    assert {path.name for path in DASHBOARDS} == set(EXPECTED)
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        assert dashboard["title"] == EXPECTED[path.name]
        assert dashboard["uid"] not in uids
        uids.add(dashboard["uid"])
        ids = [panel["id"] for panel in panels(dashboard)]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"


def test_every_datasource_reference_matches_the_provisioning() -> None:
    sources = provisioned_datasources()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        references = [var["datasource"] for var in dashboard["templating"]["list"]
                      if "datasource" in var]
        for panel in panels(dashboard):
            references.append(panel["datasource"])
            references += [query["datasource"] for query in panel.get("targets", [])]
        for reference in references:
            assert reference["uid"] in sources, f"{path.name}: unknown uid {reference}"
            assert sources[reference["uid"]]["type"] == reference["type"], path.name


def test_committed_dashboards_are_what_the_generator_builds() -> None:
    result = subprocess.run([sys.executable, str(REPO / "grafana" / "build_dashboards.py"),
                             "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def panel_by_title(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    return next(panel for panel in panels(dashboard) if panel["title"] == title)


def test_internet_dashboard_has_the_promised_panels() -> None:
    dashboard = load("internet.json")
    heatmap = panel_by_title(dashboard, "RTT heatmap")
    assert heatmap["type"] == "heatmap"
    assert "homemon_ping_rtt_seconds_bucket" in heatmap["targets"][0]["expr"]
    assert heatmap["targets"][0]["format"] == "heatmap"
    titles = {panel["title"] for panel in panels(dashboard)}
    assert {"Internet now", "Outages", "Outage timeline", "Packet loss", "Jitter",
            "Download vs plan", "Upload vs plan", "Loaded vs idle latency",
            "Data used by tests"} <= titles


def test_air_quality_map_joins_sensor_info_and_colours_by_daqi_band() -> None:
    dashboard = load("air-quality.json")
    geomap = next(panel for panel in panels(dashboard) if panel["type"] == "geomap")
    expr = geomap["targets"][0]["expr"]
    assert "homemon_air_sensor_info" in expr
    assert "homemon_air_quality_index" in expr
    assert "group_left" in expr
    assert 'scale="uk_daqi"' in expr
    layer = geomap["options"]["layers"][0]
    assert layer["location"] == {"mode": "coords", "latitude": "latitude",
                                 "longitude": "longitude"}
    steps = geomap["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [step["value"] for step in steps] == [None, 4, 7, 10]  # Low, Moderate, High, V. High
    text = next(panel for panel in panels(dashboard) if panel["type"] == "text")
    for band in ("Low", "Moderate", "High", "Very High"):
        assert f"**{band}**" in text["options"]["content"]
    table = next(panel for panel in panels(dashboard) if panel["type"] == "table")
    assert "CSV" in table["title"] + table["description"]
    legends = [panel["options"]["legend"]["calcs"] for panel in panels(dashboard)
               if panel["type"] == "timeseries" and "PM" in panel["title"]]
    assert legends
    assert all({"max", "mean"} <= set(calcs) for calcs in legends)
    exprs = " ".join(q["expr"] for panel in panels(dashboard) for q in panel["targets"])
    assert 'window="24h"' in exprs


def test_logs_dashboard_filters_by_job_and_level_with_the_json_parser() -> None:
    dashboard = load("logs.json")
    names = {var["name"] for var in dashboard["templating"]["list"]}
    assert {"job", "level"} <= names
    logs = next(panel for panel in panels(dashboard) if panel["type"] == "logs")
    expr = logs["targets"][0]["expr"]
    assert "| json" in expr
    assert 'job=~"$job"' in expr
    assert 'level=~"$level"' in expr
    assert logs["datasource"]["uid"] == "homemon-loki"


def test_dashboards_are_provisioned_from_where_compose_mounts_them() -> None:
    provider = load_yaml("grafana/provisioning/dashboards/dashboards.yml")["providers"][0]
    grafana = load_yaml("docker-compose.yml")["services"]["grafana"]
    mounts = dict(volume.split(":")[:2][::-1] for volume in grafana["volumes"])
    assert mounts[provider["options"]["path"]] == "./grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (REPO / "grafana" / "dashboards" / home.rsplit("/", 1)[1]).is_file()
