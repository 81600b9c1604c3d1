"""Builds the jobs, the scheduler and the HTTP server; handles shutdown."""

from __future__ import annotations

import gc
import logging
import random
import signal
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry, disable_created_metrics

from monitor import __version__
from monitor.config import Config
from monitor.diskspace import DiskSpaceCollector
from monitor.history import History
from monitor.httpserver import DroppedConnectionsCollector
from monitor.jobs.base import Job, JobEnv, build_job
from monitor.logs import event
from monitor.metrics import Metrics
from monitor.runner import JobRunner
from monitor.web import build_server
from monitor.webpage.statuspage import StatusPage

log = logging.getLogger("monitor.daemon")

FIRST_RUN_DELAY = 1.0  # seconds after start; plus a random offset so jobs do not fire together
MAX_START_OFFSET = 5.0  # and at most a quarter of the job's interval
SHUTDOWN_GRACE = 8.0  # SIGTERM -> exit within 10 s, as container runtimes expect


class Daemon:
    def __init__(self, config: Config, registry: CollectorRegistry | None = None,
                 jobs: Mapping[str, Job] | None = None) -> None:
        """`jobs` replaces the built job of the same name (tests inject hanging ones)."""
        disable_created_metrics()  # type: ignore[no-untyped-call]  # the library lacks a hint
        self.config = config
        self.metrics = Metrics(registry)
        self.shutdown = threading.Event()
        self.state_dir = Path(config.state_dir)
        self.env = JobEnv(config, self.metrics, self.state_dir, self.shutdown)
        link_lock = threading.Lock()
        self.runners: list[JobRunner] = []
        job_configs = config.job_configs()
        for name, job_config in job_configs.items():
            if not job_config.enabled:
                continue
            job = jobs[name] if jobs and name in jobs else build_job(name, self.env)
            self.runners.append(JobRunner(
                job, self.metrics, interval=job_config.interval,
                timeout=job_config.timeout, link_lock=link_lock, shutdown=self.shutdown))
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=2 * len(job_configs) + 2)},
            job_defaults={"coalesce": True, "max_instances": 1}, timezone="UTC")
        cards = [card for runner in self.runners if (card := runner.job.card()) is not None]
        self.history = History(cards)
        self.page = StatusPage(self.history, self.runners, cards)
        # free space where the daemon keeps its state, computed at each scrape
        self.metrics.registry.register(DiskSpaceCollector([self.state_dir]))
        self.server = build_server(config.listen_address, self.metrics.registry, self.page,
                                   self.health, config.web_config_file)
        self.metrics.registry.register(DroppedConnectionsCollector(self.server))
        self.mqtt = None  # Home Assistant discovery of the cards' entities
        if config.mqtt is not None:
            from monitor.mqtt.publisher import MqttPublisher  # noqa: PLC0415 - paho only if used

            self.mqtt = MqttPublisher(config, self.metrics.registry, cards)

    def health(self) -> tuple[bool, str]:
        if not self.scheduler.running:
            return False, "scheduler not running"
        stuck = [runner.name for runner in self.runners if runner.stuck]
        if stuck:
            return False, "stuck past timeout: " + ", ".join(stuck)
        return True, "ok"

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.server.start()
        now = datetime.now().astimezone()
        for runner in self.runners:
            runner.job.on_start()
            offset = random.uniform(0, min(MAX_START_OFFSET, runner.interval / 4))
            first = now + timedelta(seconds=FIRST_RUN_DELAY + offset)
            self._schedule(runner.name, runner.interval, partial(self._run, runner), first)
            for task in runner.job.periodic():
                self._schedule(f"{runner.name}-{task.name}", task.interval, task.func,
                               now + timedelta(seconds=task.interval))
        if self.mqtt is not None:
            self.mqtt.start()
        self.scheduler.start()
        # start-up objects live for the whole run: keep the collector from rescanning them,
        # which steadies /metrics tail latency
        gc.freeze()
        host, port = self.config.listen_address
        event(log, logging.INFO, "home-monitor started", version=__version__,
              listen=f"{host}:{self.server.port}", config=self.config.source,
              jobs=[runner.name for runner in self.runners])

    def _run(self, runner: JobRunner) -> None:
        outcome = runner.run_once()
        self.history.observe(runner.name, outcome.result, outcome.summary, outcome.finished_at)
        if self.mqtt is not None:
            self.mqtt.job_ran(runner.name, outcome.result, outcome.summary, outcome.finished_at)
        self.page.charts(time.time())  # rebuilt here, in the job's thread, not by a request

    def _schedule(self, job_id: str, interval: float, func: Any, first: datetime) -> None:
        self.scheduler.add_job(
            func, IntervalTrigger(seconds=interval, start_date=first), id=job_id,
            next_run_time=first, misfire_grace_time=max(1, int(interval)))

    def stop(self) -> None:
        """Stop scheduling, tell running jobs to stop, give them a few seconds, close."""
        self.shutdown.set()
        self.scheduler.shutdown(wait=False)
        for runner in self.runners:
            runner.signal_stop()
        deadline = time.monotonic() + SHUTDOWN_GRACE
        for runner in self.runners:
            runner.join(max(0.0, deadline - time.monotonic()))
        for runner in self.runners:
            runner.job.close()
        if self.mqtt is not None:
            self.mqtt.stop()
        self.server.stop()
        event(log, logging.INFO, "home-monitor stopped")

    def run_until_signalled(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.shutdown.set())
        self.start()
        self.shutdown.wait()
        self.stop()
        return 0
