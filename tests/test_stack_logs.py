"""loki/, alloy/, cAdvisor and the Logs/Containers dashboards — checked STATICALLY against the
upstream rules: there is no Loki, Alloy, Grafana or cAdvisor binary here.

YAML parse and key sanity for Loki; block structure and references for Alloy's config. The
dashboards' LogQL against Loki's own rules (empty-compatible matchers, parser errors in metric
queries), ported as small functions that name their source; cAdvisor rate windows against the
sample spacing its flags allow; the arm/v7 Prometheus config. docs/stack.md says so and gives
the commands that validate them with the real images.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from typing import Any

import pytest

from tests.support.stack_configs import GRAFANA_INTERVALS, REPO, load_yaml, panels

ALLOY = REPO / "alloy" / "config.alloy"
LOGS_DASHBOARD = REPO / "grafana" / "dashboards" / "logs.json"
CONTAINERS_DASHBOARD = REPO / "grafana" / "dashboards" / "containers.json"


def test_loki_is_single_binary_tsdb_v13_on_the_filesystem_with_retention() -> None:
    config = load_yaml("loki/loki.yml")
    assert config["auth_enabled"] is False
    assert config["common"]["ring"]["kvstore"]["store"] == "inmemory"
    assert config["common"]["replication_factor"] == 1
    assert "filesystem" in config["common"]["storage"]
    latest = config["schema_config"]["configs"][-1]
    assert (latest["store"], latest["object_store"], latest["schema"]) == \
        ("tsdb", "filesystem", "v13")
    assert latest["index"]["period"] == "24h"  # the compactor works on 24 h tables
    compactor = config["compactor"]
    assert compactor["retention_enabled"] is True
    assert compactor["delete_request_store"] == "filesystem"  # Loki 3 refuses retention without
    assert config["limits_config"]["retention_period"]
    assert config["server"]["http_listen_port"] == 3100


def test_loki_bounds_its_volume_by_age_and_by_ingestion_rate() -> None:
    """Loki has no size-based retention (grafana/loki#7927, closed unmerged): a flood is held
    off by the ingestion limits (keys from Loki's pkg/validation/limits.go)."""
    limits = load_yaml("loki/loki.yml")["limits_config"]
    worst_case_per_day = limits["ingestion_rate_mb"] * 86400 / 1024
    assert worst_case_per_day <= 25, f"{worst_case_per_day:.0f} GB a day before compression"
    assert limits["ingestion_burst_size_mb"] >= limits["ingestion_rate_mb"]
    assert limits["max_line_size_truncate"] is True
    for key in ("per_stream_rate_limit", "per_stream_rate_limit_burst", "max_line_size"):
        assert re.fullmatch(r"\d+(KB|MB)", limits[key]), key
    assert "no retention by size" in (REPO / "docs" / "stack.md").read_text(encoding="utf-8")


def test_loki_env_placeholder_is_expanded_by_its_flag() -> None:
    text = (REPO / "loki" / "loki.yml").read_text(encoding="utf-8")
    loki = load_yaml("docker-compose.yml")["services"]["loki"]
    if "${" in text:
        assert "-config.expand-env=true" in loki["command"]
        for name in re.findall(r"\$\{([A-Z_]+)", text):
            assert name in loki["environment"]


def alloy_blocks(text: str) -> dict[str, str]:
    """Top-level `component.kind "label" {` blocks -> their text (brace-matched)."""
    blocks = {}
    for match in re.finditer(r'^([a-z_.]+)\s+"([a-z_]+)"\s*\{', text, re.MULTILINE):
        depth, index = 0, match.end() - 1
        while True:
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            index += 1
            if depth == 0:
                break
        blocks[f"{match.group(1)}.{match.group(2)}"] = text[match.start():index]
    return blocks


def test_alloy_pipeline_docker_discovery_to_loki() -> None:
    text = ALLOY.read_text(encoding="utf-8")
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    assert code.count("{") == code.count("}")
    blocks = alloy_blocks(code)
    assert set(blocks) == {"discovery.docker.containers", "discovery.relabel.containers",
                           "loki.source.docker.containers", "loki.write.local"}
    source = blocks["loki.source.docker.containers"]
    assert "targets          = discovery.docker.containers.targets" in source
    assert "relabel_rules    = discovery.relabel.containers.rules" in source
    assert "forward_to       = [loki.write.local.receiver]" in source
    assert 'url = "http://loki:3100/loki/api/v1/push"' in blocks["loki.write.local"]
    # every reference points at a declared component
    for reference in re.findall(r"=\s*\[?((?:discovery|loki)\.[a-z_.]+)", code):
        component = reference.rsplit(".", 1)[0]
        assert component in blocks, f"{reference} refers to an undeclared component"
    assert "compose_service" in blocks["discovery.relabel.containers"]
    assert "promtail" not in code.lower()


def test_alloy_reads_the_docker_api_through_the_proxy_not_the_socket() -> None:
    alloy = load_yaml("docker-compose.yml")["services"]["alloy"]
    assert not [volume for volume in alloy["volumes"] if "docker.sock" in volume]
    assert 'host             = "tcp://docker-proxy:2375"' in ALLOY.read_text(encoding="utf-8")
    assert "./alloy/config.alloy:/etc/alloy/config.alloy:ro" in alloy["volumes"]
    assert alloy["command"][-1] == "/etc/alloy/config.alloy"


def cadvisor_flags() -> dict[str, str]:
    command = load_yaml("docker-compose.yml")["services"]["cadvisor"]["command"]
    return dict(arg.lstrip("-").split("=", 1) for arg in command)


# cAdvisor v0.60.5 lib/container/factory.go: AllMetrics, and cmd/cadvisor.go's default
# ignoreMetrics. --enable_metrics, when given, replaces both (cmd/cadvisor.go main()).
CADVISOR_ALL = {"cpu", "sched", "percpu", "memory", "memory_numa", "cpuLoad", "diskIO", "disk",
                "network", "tcp", "advtcp", "udp", "app", "process", "hugetlb", "perf_event",
                "referenced_memory", "cpu_topology", "resctrl", "cpuset", "oom_event",
                "pressure"}
CADVISOR_DEFAULT_DISABLED = {"memory_numa", "tcp", "udp", "advtcp", "sched", "process",
                             "hugetlb", "referenced_memory", "cpu_topology", "resctrl",
                             "cpuset"}


def cadvisor_kept_families(flags: dict[str, str]) -> set[str]:
    if flags.get("enable_metrics"):
        return set(flags["enable_metrics"].split(","))
    disabled = flags.get("disable_metrics")
    return CADVISOR_ALL - (set(disabled.split(",")) if disabled
                           else CADVISOR_DEFAULT_DISABLED)


def test_cadvisor_runs_with_pi_friendly_flags() -> None:
    flags = cadvisor_flags()
    assert flags["docker_only"] == "true"
    assert duration_seconds(flags["housekeeping_interval"]) >= 15
    kept = cadvisor_kept_families(flags)
    assert kept <= CADVISOR_ALL, f"unknown families stop cAdvisor: {kept - CADVISOR_ALL}"
    # what the Containers dashboard plots must stay on, and nothing per-CPU or per-process
    assert {"cpu", "memory", "network", "diskIO", "oom_event"} <= kept
    assert not {"percpu", "sched", "tcp", "udp", "process"} & kept


def test_cadvisor_comment_lists_exactly_the_families_the_flags_keep() -> None:
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    block = text[text.index("  cadvisor:"):text.index("    command:", text.index("  cadvisor:"))]
    listed = re.search(r"keeps exactly: ([\w, ]+)", block)
    assert listed, "the cadvisor comment no longer says which families it keeps"
    assert {name.strip() for name in listed.group(1).split(",")} == \
        cadvisor_kept_families(cadvisor_flags())


# --- rate windows over cAdvisor series ---------------------------------------------------------

def duration_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(number) * units[unit]
               for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text))


def cadvisor_worst_sample_spacing(flags: dict[str, str], scrape_interval: float) -> float:
    """Longest gap between two cAdvisor samples of one container, from its flags.

    cAdvisor stamps samples with their housekeeping time. lib/manager/container.go:
    nextHousekeepingInterval doubles the interval up to --max_housekeeping_interval while a
    container's stats do not change (--allow_dynamic_housekeeping, default true), then adds
    jitter(interval, --jitter_factor): up to +100 % (jitterDefault 1.0; v0.52.1 hard-codes
    1.0). A scrape cannot see samples closer than its own interval either.
    """
    interval = duration_seconds(flags.get("housekeeping_interval", "1s"))
    if flags.get("allow_dynamic_housekeeping", "true") == "true":
        interval = max(interval, duration_seconds(flags.get("max_housekeeping_interval", "60s")))
    jitter = float(flags.get("jitter_factor", "1.0"))
    return max(interval * (1 + (jitter if jitter >= 0 else 1.0)), scrape_interval)


def shortest_window(expr: str, scrape: float, step: float) -> float:
    """The shortest range Grafana can give the expression's range selectors.

    Grafana's Prometheus datasource (createQuery, getRateIntervalScopedVariable):
    $__rate_interval = max($__interval + scrape, 4 x scrape), where `scrape` is the query's
    "Min step" (target.interval) or else the datasource's scrape interval, and $__interval
    (the step) is at least that min step or the panel's min interval. $__range is the
    dashboard's range (never short). Explicit windows are what they say.
    """
    windows = []
    for inside in re.findall(r"\[([^\]:]+)(?::[^\]]*)?\]", expr):
        if "__rate_interval" in inside:
            windows.append(max(step + scrape, 4 * scrape))
        elif "__interval" in inside:
            windows.append(step)
        elif "__range" not in inside:
            windows.append(duration_seconds(inside))
    return min(windows, default=float("inf"))


def test_rate_windows_over_cadvisor_series_hold_two_samples() -> None:
    datasource = load_yaml("grafana/provisioning/datasources/datasources.yml")["datasources"]
    default_min = duration_seconds(next(source for source in datasource
                                        if source["type"] == "prometheus")
                                   ["jsonData"]["timeInterval"])
    prometheus = load_yaml("prometheus/prometheus.yml")
    job = next(job for job in prometheus["scrape_configs"] if job["job_name"] == "cadvisor")
    scrape = duration_seconds(job.get("scrape_interval",
                                      prometheus["global"]["scrape_interval"]))
    spacing = cadvisor_worst_sample_spacing(cadvisor_flags(), scrape)
    assert spacing >= 120  # the shipped flags: 60 s max housekeeping plus 100 % jitter
    checked = 0
    for path in sorted((REPO / "grafana" / "dashboards").glob("*.json")):
        for panel in panels(json.loads(path.read_text(encoding="utf-8"))):
            for query in panel.get("targets", []):
                expr = query.get("expr", "")
                if "container_" not in expr or "[" not in expr:
                    continue
                checked += 1
                min_step = duration_seconds(query.get("interval") or "")
                scrape = min_step or default_min
                step = max(min_step or duration_seconds(panel.get("interval") or ""),
                           default_min)
                window = shortest_window(expr, scrape, step)
                assert window >= 2 * spacing, (
                    f"{path.name}: {panel['title']}: window {window:.0f} s < 2 x {spacing:.0f} s")
    assert checked >= 5


def test_the_window_check_fails_on_the_old_containers_dashboard() -> None:
    # the case: $__rate_interval on a 15 s datasource is 60 s, samples up to 120 s apart
    spacing = cadvisor_worst_sample_spacing(cadvisor_flags(), 30)
    expr = "rate(container_cpu_usage_seconds_total[$__rate_interval])"
    assert shortest_window(expr, 15, 15) < 2 * spacing
    # a panel min interval of 1m alone: max(60 + 15, 60) = 75 s, still too short
    assert shortest_window(expr, 15, 60) < 2 * spacing


# --- LogQL: what Loki would refuse ---------------------------------------------------------------

STRING = r'"(?:[^"\\]|\\.)*"|`[^`]*`'
MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(' + STRING + r')\s*,?')


def unquote(literal: str) -> str:
    return literal[1:-1] if literal.startswith("`") else json.loads(literal)


def stream_selectors(logql: str) -> list[list[tuple[str, str, str]]]:
    """Every `{...}` stream selector of a LogQL query, as (label, operator, value) matchers."""
    selectors, index = [], 0
    while index < len(logql):
        quoted = re.compile(STRING).match(logql, index)
        if quoted:
            index = quoted.end()
        elif logql[index] == "{":
            matchers, index = [], index + 1
            while (found := MATCHER.match(logql, index)):
                matchers.append((found.group(1), found.group(2), unquote(found.group(3))))
                index = found.end()
            assert logql[index:].lstrip().startswith("}"), f"cannot read selector in {logql}"
            index = logql.index("}", index) + 1
            selectors.append(matchers)
        else:
            index += 1
    return selectors


def matches_empty(operator: str, value: str) -> bool:
    """Prometheus' labels.Matcher.Matches("") (regexes are anchored, as there)."""
    if operator in ("=~", "!~"):
        hit = re.fullmatch(f"(?:{value})", "") is not None
        return hit if operator == "=~" else not hit
    return (value == "") if operator == "=" else (value != "")


def loki_accepts(selector: list[tuple[str, str, str]]) -> bool:
    """Loki's rule: at least one matcher that does not match the empty string.

    pkg/logql/syntax/parser.go validateMatchers -> pkg/util/matchers.go (v3.7.6) ("queries
    require at least one regexp or equality matcher that does not have an empty-compatible
    value. For instance, app=~".*" does not meet this requirement, but app=~".+" will").
    """
    return any(not matches_empty(operator, value) for _, operator, value in selector)


def loki_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for panel in panels(dashboard):
        for query in panel.get("targets", []):
            source = query.get("datasource") or panel.get("datasource") or {}
            if source.get("type") == "loki":
                found.append((f"{panel['title']} [{query['refId']}]", query["expr"]))
    return found


def variable_cases(dashboard: dict[str, Any]) -> list[dict[str, str]]:
    """Each variable on All (its allValue) and on a concrete value (and two at once), the
    others on All: what Grafana substitutes for $name in a Loki query."""
    choices: dict[str, list[str]] = {}
    for var in dashboard["templating"]["list"]:
        if var["type"] == "custom":
            values = [value.strip() for value in var["query"].split(",")]
        elif var["type"] == "textbox":
            values = [var["query"]]
        else:
            values = ["home", "kitchen"]  # a query variable's values come from the data
        concrete = values[:1] + (["(" + "|".join(values[:2]) + ")"] if var.get("multi") else [])
        choices[var["name"]] = ([var.get("allValue") or ".*"] if var.get("includeAll") else []) \
            + concrete
    cases = []
    all_values = {name: values[0] for name, values in choices.items()}
    for name, values in choices.items():
        cases += [all_values | {name: value} for value in values]
    return cases


def substitute(expr: str, values: dict[str, str]) -> str:
    for placeholder, value in GRAFANA_INTERVALS.items():
        expr = expr.replace(placeholder, value)
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    return expr


def test_every_logql_selector_passes_lokis_empty_matcher_rule_for_every_variable_value() -> None:
    refused, checked = [], 0
    for path in sorted((REPO / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        queries, cases = loki_queries(dashboard), variable_cases(dashboard)
        for (where, expr), values in itertools.product(queries, cases):
            concrete = substitute(expr, values)
            assert "$" not in concrete, concrete
            checked += 1
            for selector in stream_selectors(concrete):
                if not loki_accepts(selector):
                    refused.append(f"{path.name}: {where}: {concrete}")
    assert checked >= 3 * 8  # the Logs dashboard's queries x its variables' values
    assert not refused, "Loki refuses:\n" + "\n".join(refused)


@pytest.mark.parametrize(("selector", "accepted"), [
    ('{compose_service=~".*", compose_service!="monitor"}', False),  # the case
    ('{compose_service=~".+", compose_service!="monitor"}', True),
    ('{compose_service="monitor", probe=~".*"}', True),
    ('{app=""}', False),
    ('{app!~"x"}', False),
    ('{app!~""}', True),
    ('{app=~"a|"}', False),
])
def test_the_empty_matcher_check_agrees_with_lokis_examples(selector: str, accepted: bool) -> None:
    [matchers] = stream_selectors(selector)
    assert loki_accepts(matchers) is accepted


PARSERS = re.compile(r"\|\s*(json|logfmt|regexp|pattern|unpack)\b")
METRIC = re.compile(r"\b(count_over_time|rate|bytes_over_time|bytes_rate|sum_over_time|"
                    r"avg_over_time|max_over_time|min_over_time|quantile_over_time|"
                    r"absent_over_time|first_over_time|last_over_time)\s*\(")


def metric_query_drops_parser_errors(expr: str) -> bool:
    """A metric query with a parser stage must filter out the lines it could not parse.

    Loki's query docs: "metric queries cannot contain errors; in case errors are found during
    execution, Loki will return an error" -- one non-JSON line fails the whole panel. The
    filter must come after the last parser stage.
    """
    if not METRIC.search(expr):
        return True
    stages = list(PARSERS.finditer(expr))
    if not stages:
        return True
    after = expr[stages[-1].end():]
    return re.search(r'\|\s*__error__\s*=\s*""', after) is not None


def test_metric_logql_with_a_parser_drops_parser_errors() -> None:
    dashboard = json.loads(LOGS_DASHBOARD.read_text(encoding="utf-8"))
    metric = [(where, expr) for where, expr in loki_queries(dashboard) if METRIC.search(expr)]
    assert metric
    for where, expr in metric:
        assert metric_query_drops_parser_errors(expr), f"{where}: {expr}"
    old = 'sum by (level) (count_over_time({compose_service="monitor"} | json | job=~"$job" [1m]))'
    assert not metric_query_drops_parser_errors(old)  # the query fails the check


def test_level_variable_offers_lokis_detected_levels_including_critical() -> None:
    dashboard = json.loads(LOGS_DASHBOARD.read_text(encoding="utf-8"))
    level = next(var for var in dashboard["templating"]["list"] if var["name"] == "level")
    values = level["query"].split(",")
    # Loki v3.7.6 pkg/distributor/field_detection.go: the values detected_level can take
    assert set(values) <= {"trace", "debug", "info", "warn", "error", "critical", "fatal",
                           "unknown"}
    assert {"debug", "info", "warn", "error", "critical"} <= set(values)
    # ...and the daemon's Python levels all land on one of them
    python_levels = {"debug", "info", "warning", "error", "critical"}
    assert {"warn" if name == "warning" else name for name in python_levels} <= set(values)
    limits = load_yaml("loki/loki.yml")["limits_config"]
    assert limits["discover_log_levels"] is True
    assert limits["allow_structured_metadata"] is True  # detected_level is structured metadata


def test_alloy_labels_logs_with_the_same_probe_as_prometheus() -> None:
    code = ALLOY.read_text(encoding="utf-8")
    found = re.search(r'external_labels\s*=\s*\{\s*probe\s*=\s*"([^"]+)"', code)
    assert found, "Loki streams carry no probe label: the dashboards' probe filter breaks"
    assert found.group(1) == load_yaml("prometheus/prometheus.yml")["global"][
        "external_labels"]["probe"]



# --- arm/v7: Loki and Alloy do not run, so Prometheus must not scrape them ---------------------

def test_armv7_prometheus_is_the_main_config_without_the_parked_services() -> None:
    override = load_yaml("docker-compose.armv7.yml")["services"]
    parked = {name for name, spec in override.items() if spec.get("profiles")}
    assert {"loki", "alloy"} <= parked
    flag = next(arg for arg in override["prometheus"]["command"]
                if arg.startswith("--config.file="))
    mounted = flag.split("=", 1)[1].removeprefix("/etc/prometheus/")  # ./prometheus is mounted
    armv7 = load_yaml(f"prometheus/{mounted}")
    scraped = {target.split(":")[0] for job in armv7["scrape_configs"]
               for static in job.get("static_configs", []) for target in static["targets"]}
    assert not scraped & parked, f"arm/v7 would scrape {scraped & parked}: up == 0 for good"
    main = load_yaml("prometheus/prometheus.yml")
    main["scrape_configs"] = [job for job in main["scrape_configs"]
                              if not {target.split(":")[0] for static in job["static_configs"]
                                      for target in static["targets"]} & parked]
    assert armv7 == main, "prometheus.armv7.yml drifted from prometheus.yml: mirror the change"


def test_armv7_prometheus_config_passes_promtool() -> None:
    result = subprocess.run(["promtool", "check", "config", "prometheus/prometheus.armv7.yml"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
