"""docs/architecture.md's checklist, followed for a tiny job (tests/support/tick_job.py):
the config loader, `check-config`'s list, the daemon's scheduler, self-metrics, hooks,
/metrics, the status page, /api/status, the Home Assistant entities published over MQTT and
the generated Grafana dashboards all take the new job from its own files and one registration
line, without an edit anywhere else."""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from monitor.config import Config, ConfigError, parse
from monitor.daemon import Daemon
from monitor.jobs.base import JobEnv, build_job
from monitor.metrics import Metrics
from tests.support.mosquitto import broker, subscriber
from tests.support.procs import REPO, free_port, http_get, minimal_config, wait_until
from tests.support.tick_job import TickConfig, TickJob, TickSiteConfig


def test_the_new_jobs_config_is_parsed_checked_and_listed(tmp_path: Path) -> None:
    data = minimal_config(tmp_path, free_port(), tick={"enabled": True, "interval": "2s",
                                                       "step": 5})
    config = parse(data, "tick.yml", TickSiteConfig)
    tick = config.job("tick")
    assert isinstance(tick, TickConfig)
    assert (tick.enabled, tick.interval, tick.step) == (True, 2.0, 5)
    assert list(config.job_configs()) == [*Config().job_configs(), "tick"]
    with pytest.raises(ConfigError) as error:
        parse(minimal_config(tmp_path, 1, tick={"enabled": True, "step": 0, "label": "",
                                                "colour": "red"}), "tick.yml", TickSiteConfig)
    problems = "\n".join(error.value.problems)
    assert "tick.yml: jobs.tick.step: must be at least 1" in problems
    assert "tick.yml: jobs.tick.colour: unknown key" in problems
    # the base config's keys work as for every job
    with pytest.raises(ConfigError, match="jobs.tick.interval: must be greater than zero"):
        parse(minimal_config(tmp_path, 1, tick={"interval": "0s"}), "tick.yml", TickSiteConfig)


def test_the_daemon_builds_schedules_and_closes_the_new_job(tmp_path: Path) -> None:
    port = free_port()
    config = parse(minimal_config(tmp_path, port, tick={
        "enabled": True, "interval": "300ms", "step": 2, "label": "kitchen"}), "tick.yml",
        TickSiteConfig)
    registry = CollectorRegistry()
    the_daemon = Daemon(config, registry)
    (runner,) = the_daemon.runners
    job = runner.job
    assert isinstance(job, TickJob)
    the_daemon.start()
    try:
        wait_until(lambda: (registry.get_sample_value(
            "homemon_job_runs_total", {"job": "tick", "result": "success"}) or 0) >= 3, 15,
            what="three tick runs")
        wait_until(lambda: (registry.get_sample_value("homemon_tick_heartbeats_total")
                            or 0) >= 1, 15, what="the periodic task")
        status, body = http_get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert b'homemon_tick_total{label="kitchen"}' in body
        assert b'homemon_job_interval_seconds{job="tick"} 0.3' in body
        status, body = http_get(f"http://127.0.0.1:{port}/api/status")
        assert status == 200
        api = json.loads(body)
        assert api["tick"]["total"] >= 6  # its card's key
        assert [job["name"] for job in api["jobs"]] == ["tick"]
        status, body = http_get(f"http://127.0.0.1:{port}/")
        assert status == 200
        page = body.decode()
        assert '<section id="tick"><h2>Tick</h2>' in page
        assert "<figcaption>Tick total</figcaption>" in page
        assert 'data-points="1"' in page  # the chart has its first 5-minute slot
    finally:
        the_daemon.stop()
    assert job.hooks == ["on_start", "close"]
    assert job.total >= 6


def test_the_new_jobs_entity_is_published_to_home_assistant(tmp_path: Path) -> None:
    """Its card's entity reaches a real Mosquitto broker (on loopback) as a discovery config
    and a state, as the built-in jobs' entities do."""
    (tmp_path / "broker").mkdir()
    with broker(tmp_path / "broker") as running:
        data = minimal_config(tmp_path, free_port(), tick={"enabled": True, "interval": "300ms"})
        data["mqtt"] = {"url": running.url}
        the_daemon = Daemon(parse(data, "tick.yml", TickSiteConfig), CollectorRegistry())
        config_topic = "homeassistant/sensor/home_monitor/tick_total/config"
        state_topic = "home-monitor/tick/state"
        with subscriber(running.port, [config_topic, state_topic]) as sub:
            the_daemon.start()
            try:
                state = wait_until(lambda: next(
                    (json.loads(m.payload) for m in reversed(sub.all())
                     if m.topic == state_topic and json.loads(m.payload)["total"] >= 2), None),
                    15, what="the tick job's state")
            finally:
                the_daemon.stop()
            config = json.loads(next(m.payload for m in sub.all() if m.topic == config_topic))
    assert state["total"] >= 2
    assert config["unique_id"] == "home_monitor_tick_total"
    assert config["state_topic"] == state_topic
    assert config["state_class"] == "total_increasing"
    assert config["value_template"] == "{{ value_json.total }}"


def test_build_job_finds_the_module_the_config_class_names(tmp_path: Path) -> None:
    config = parse(minimal_config(tmp_path, 1), "tick.yml", TickSiteConfig)
    job = build_job("tick", JobEnv(config, Metrics(CollectorRegistry()), tmp_path))
    assert isinstance(job, TickJob)
    assert job.run(threading.Event()) == {"total": 1}


def dashboard_builder() -> Any:
    spec = importlib.util.spec_from_file_location("build_dashboards",
                                                  REPO / "grafana" / "build_dashboards.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_dashboards_get_the_new_jobs_panel() -> None:
    builder = dashboard_builder()
    boards = builder.boards(TickSiteConfig().job_configs())
    assert set(boards) - set(builder.boards(Config().job_configs())) == {"jobs.json"}
    jobs = boards["jobs.json"]()
    (tick,) = jobs["panels"]
    assert tick["title"] == "Tick total"
    assert tick["targets"][0]["expr"] == 'homemon_tick_total{probe=~"$probe"}'
    assert tick["datasource"]["uid"] == "homemon-prometheus"
