"""grafana/: provisioning and dashboards (static: there is no Grafana binary here).

The dashboards' PromQL is executed against a real Prometheus in test_stack_prometheus.py.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitor.outages import Outage, RecentOutages, RecentOutagesCollector, local_iso
from tests.support.procs import prom_query, prometheus, wait_until
from tests.support.stack_configs import DASHBOARDS, REPO, load_yaml, panels, substitute

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
            "Data used by tests", "Outages (start, end, duration)", "Outage lengths"} <= titles
    table = panel_by_title(dashboard, "Outages (start, end, duration)")
    assert "homemon_internet_recent_outage_seconds" in table["targets"][0]["expr"]
    assert table["targets"][0]["format"] == "table"
    assert {"Path hops RTT", "Path hops loss", "Path hops", "DNS look-up time",
            "DNS failures"} <= titles
    assert {"cause", "detail"} <= set(table["transformations"][0]["options"]["indexByName"])
    down = next(a for a in dashboard["annotations"]["list"] if a.get("name") == "Internet down")
    assert "homemon_internet_outage_cause" in down["expr"]
    assert "cause" in down["tagKeys"]
    timeline = panel_by_title(dashboard, "Outage timeline")
    assert timeline["type"] == "state-timeline"
    assert "homemon_internet_up" in timeline["targets"][0]["expr"]


def test_internet_dashboard_shows_backend_failures_by_reason_and_the_cross_check_ratio() -> None:
    dashboard = load("internet.json")
    failures = panel_by_title(dashboard, "Speed test backends that failed")
    query = failures["targets"][0]
    assert "homemon_bandwidth_backend_failures_total" in query["expr"]
    assert re.search(r"sum by \(backend, reason\)", query["expr"])
    assert (query["instant"], query["legendFormat"]) == (True, "{{backend}}: {{reason}}")
    ratio = panel_by_title(dashboard, "Cross-check ratio")
    assert "homemon_bandwidth_cross_check_ratio" in ratio["targets"][0]["expr"]
    assert {"{{backend}}", "{{reference}}", "{{direction}}"} <= set(
        re.findall(r"\{\{\w+\}\}", ratio["targets"][0]["legendFormat"]))
    assert ratio["fieldConfig"]["defaults"]["unit"] == "percentunit"


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


def test_logs_dashboard_filters_by_job_with_the_json_parser_and_by_detected_level() -> None:
    dashboard = load("logs.json")
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    assert {"job", "level"} <= set(variables)
    # the jobs the daemons report, not a list kept in the builder
    assert variables["job"]["definition"] == (
        'label_values(homemon_job_interval_seconds{probe=~"$probe"}, job)')
    logs = next(panel for panel in panels(dashboard) if panel["type"] == "logs")
    expr = logs["targets"][0]["expr"]
    assert "| json" in expr
    assert 'job=~"$job"' in expr
    assert '| detected_level=~"$level"' in expr
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


# --- the probe variable (multi-site) --------------------------------------------------------------

def generator() -> Any:
    spec = importlib.util.spec_from_file_location("build_dashboards",
                                                  REPO / "grafana" / "build_dashboards.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def promql_of(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(f"annotation {note['name']}", note["expr"])
             for note in dashboard["annotations"]["list"] if note.get("expr")]
    for panel in panels(dashboard):
        for query in panel.get("targets", []):
            source = query.get("datasource") or panel.get("datasource") or {}
            if source.get("type") == "prometheus":
                found.append((f"{panel['title']} [{query['refId']}]", query["expr"]))
    return found


def test_every_dashboard_has_a_multi_select_probe_variable_with_a_custom_all() -> None:
    for path in DASHBOARDS:
        variables = json.loads(path.read_text(encoding="utf-8"))["templating"]["list"]
        probe = variables[0]
        assert probe["name"] == "probe", path.name
        assert probe["multi"] is True
        assert probe["includeAll"] is True
        # ".*" also matches a series without the label: a single box's own series have none
        assert probe["allValue"] == ".*"
        assert probe["query"]["query"] == "label_values(probe)"
        for var in variables[1:]:
            if var["type"] == "query":
                assert 'probe=~"$probe"' in var["query"]["query"], f"{path.name}: {var['name']}"


def test_every_query_is_filtered_by_probe() -> None:
    with_probe = generator().with_probe
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for where, expr in promql_of(dashboard):
            # adding the filter again changes nothing only if every selector already has it
            assert with_probe(expr) == expr, f"{path.name}: {where}: {expr}"
            assert 'probe=~"$probe"' in expr
        for panel in panels(dashboard):
            for query in panel.get("targets", []):
                if (query.get("datasource") or {}).get("type") == "loki":
                    for selector in re.findall(r"\{[^{}]*\}", query["expr"].split("`")[0]):
                        assert 'probe=~"$probe"' in selector, f"{path.name}: {query['expr']}"


def test_the_probe_filter_reaches_every_selector() -> None:
    with_probe = generator().with_probe
    assert with_probe('sum(up) / on (job) group_left (name) info{a="b"}[5m] or vector(0)') == (
        'sum(up{probe=~"$probe"}) / on (job) group_left (name) '
        'info{probe=~"$probe", a="b"}[5m] or vector(0)')
    assert with_probe('rate(x{y="}"}[$__rate_interval]) * $price') == \
        'rate(x{probe=~"$probe", y="}"}[$__rate_interval]) * $price'


CONCRETE = {"probe": "kitchen", "target": "1.1.1.1", "sensor": "12345",
            "egress_usd_per_gb": "0.09", "instance_usd_per_hour": "0.0104"}


def test_every_promql_expression_parses_with_concrete_variable_values(tmp_path: Path) -> None:
    exprs = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for variables in (CONCRETE, CONCRETE | {"probe": "(home|kitchen)"}):
            exprs += [(f"{path.name}: {where}", substitute(expr, variables))
                      for where, expr in promql_of(dashboard)]
    failures = []
    with prometheus(tmp_path, {"global": {"scrape_interval": "1s"}, "scrape_configs": []}) as url:
        for where, expr in exprs:
            assert "$" not in expr, f"{where}: {expr}"
            try:
                prom_query(url, expr)
            except AssertionError as exc:
                failures.append(f"{where}: {exc}")
    assert not failures, "\n".join(failures)


# --- the outage list and lengths, on a real Prometheus ------------------------------------------

class Exposition:
    """Serves a registry as a Prometheus scrape target on loopback, as the daemon's /metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                body = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def outage_log() -> tuple[RecentOutages, Exposition]:
    registry = CollectorRegistry()
    outages = RecentOutages()
    RecentOutagesCollector(outages, registry)
    return outages, Exposition(registry)


def edges(outage: Outage) -> tuple[str, str, str]:
    return local_iso(outage.start), local_iso(outage.end), outage.cause


def test_outage_table_and_lengths_show_each_outage_once(tmp_path: Path) -> None:
    """The daemon's own outage collector, scraped by a real Prometheus; a second box labelled
    probe="kitchen" as a central store would see it."""
    dashboard = load("internet.json")
    table = panel_by_title(dashboard, "Outages (start, end, duration)")["targets"][0]["expr"]
    lengths = panel_by_title(dashboard, "Outage lengths")["targets"][0]["expr"]
    now = float(round(time.time()))  # whole seconds: the labels and lengths are exact
    first = Outage(now - 600, now - 510, "isp", "your router answered, the ISP's first hop "
                   "(100.64.0.1) did not — the break was at your ISP")
    second, theirs = Outage(now - 30, now - 18, "dns", "names did not resolve"), \
        Outage(now - 200, now - 140)
    (home, home_target), (kitchen, kitchen_target) = outage_log(), outage_log()
    config = {"global": {"scrape_interval": "1s"}, "scrape_configs": [
        {"job_name": "home-monitor", "honor_labels": True, "scrape_interval": "1s",
         "static_configs": [{"targets": [home_target.address]},
                            {"targets": [kitchen_target.address],
                             "labels": {"probe": "kitchen"}}]}]}

    def query(expr: str, probe: str = ".*") -> list[dict]:
        return prom_query(url, expr.replace("$__range", "1h").replace("$__interval", "3s")
                          .replace("$probe", probe))

    def run(expr: str, probe: str = ".*") -> dict[tuple[str, str, str], float]:
        return {(row["metric"]["start"], row["metric"]["end"], row["metric"]["cause"]):
                float(row["value"][1]) for row in query(expr, probe)}

    try:
        with prometheus(tmp_path, config) as url:
            home.add(first.start, first.end, first.cause, first.detail)
            wait_until(lambda: run(lengths), 30, what="the first outage scraped")
            assert run(table) == {edges(first): first.seconds}
            assert [row["metric"]["detail"] for row in query(table)] == [first.detail]
            wait_until(lambda: not run(lengths), 30, what="its point to pass")
            home.add(second.start, second.end, second.cause, second.detail)
            kitchen.add(theirs.start, theirs.end)
            new = wait_until(lambda: run(lengths, ""), 30, what="the second outage")
            assert new == {edges(second): second.seconds}  # only the new one, only here
            assert run(table) == {edges(first): first.seconds, edges(second): second.seconds,
                                  edges(theirs): theirs.seconds}  # All: every site
            assert set(run(table, "")) == {edges(first), edges(second)}  # the local box
            assert run(table, "kitchen") == {edges(theirs): theirs.seconds}
            assert run(table, "nowhere") == {}
    finally:
        home_target.close()
        kitchen_target.close()
