"""Build the Grafana dashboards in grafana/dashboards/*.json.

    python grafana/build_dashboards.py          # rewrite the JSON files
    python grafana/build_dashboards.py --check  # exit 1 if a file differs from what this builds

The JSON files are what Grafana loads (provisioned read-only); this script is their source, so
the panels stay consistent (same datasource uids, units, legends). tests/test_stack_grafana.py
checks that the committed files are what this script builds.

Each job's panels are its own module, grafana/jobs/<name>.py: `BOARD` (a dashkit.Board it
owns, or the file name of another job's board it adds to) and `panels()`. A registered job
without such a module gets the panels its job module declares (`PANELS`, monitor.cards.PanelSpec)
on a Jobs dashboard, so a new job shows up here with no edit in grafana/.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
sys.path[:0] = [str(HERE), str(HERE.parent)]  # dashkit, and the daemon's job registry

from dashkit import (  # noqa: E402
    LOKI,
    UP_DOWN,
    Board,
    Placed,
    custom_variable,
    dashboard,
    panel,
    target,
    timeseries,
    variable,
    with_probe,
)

from monitor.cards import PanelSpec  # noqa: E402
from monitor.config import JobConfig  # noqa: E402
from monitor.jobs.base import module_name  # noqa: E402
from monitor.jobs.registry import JobsConfig  # noqa: E402

__all__ = ["boards", "main", "with_probe"]

JOBS_BOARD = Board("jobs.json", "homemon-jobs", "Jobs", description="Panels declared by "
                   "jobs that have no dashboard module of their own.")


def panel_module(name: str) -> ModuleType | None:
    """grafana/jobs/<name>.py, or None."""
    path = HERE / "jobs" / f"{name}.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"grafana_jobs_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def declared_panels(name: str, config: JobConfig) -> list[Placed]:
    """What the job's module declares in `PANELS`, as time series panels."""
    specs: list[PanelSpec] = list(getattr(importlib.import_module(module_name(name, config)),
                                          "PANELS", ()))
    return [(timeseries(spec.title, [target(expr, legend, chr(ord("A") + i))
                                     for i, (expr, legend) in enumerate(spec.queries)],
                        unit=spec.unit, description=spec.description), 12, 8)
            for spec in specs]


def boards(jobs: Mapping[str, JobConfig]) -> dict[str, Callable[[], dict[str, Any]]]:
    """Every job's dashboards by file name, in registry order, with their panels."""
    owned: dict[str, Board] = {}
    placed: dict[str, list[Placed]] = {}
    for name, config in jobs.items():
        module = panel_module(name)
        if module is None:
            owned.setdefault(JOBS_BOARD.file, JOBS_BOARD)
            placed.setdefault(JOBS_BOARD.file, []).extend(declared_panels(name, config))
            continue
        board = module.BOARD
        if isinstance(board, Board):
            owned[board.file] = board
        file = board.file if isinstance(board, Board) else board
        placed.setdefault(file, []).extend(module.panels())
    return {file: (lambda board=board, found=placed[file]: board.build(found))
            for file, board in owned.items() if placed[file]}


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
                         # the jobs the daemon runs: its self-metrics carry each job's name
                         variable("job", "Job", 'label_values(homemon_job_interval_seconds'
                                  '{probe=~"$probe"}, job)'),
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
    **boards({name: getattr(JobsConfig(), name) for name in JobsConfig.__dataclass_fields__}),
    "logs.json": logs,
    "containers.json": containers,
}


def render(build: Callable[[], dict[str, Any]]) -> str:
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
