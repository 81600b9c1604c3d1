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
from monitor.ledger.render import local_zone
from monitor.ledger.report import Plan
from monitor.ledger.store import Ledger
from monitor.ledger_metrics import LedgerCollector, MonthlyReport
from monitor.logs import event
from monitor.metrics import Metrics
from monitor.runner import JobRunner
from monitor.web import build_server
from monitor.webpage.report import ReportRoute
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
        self.ledger = Ledger.from_config(config.ledger, self.state_dir, __version__) \
            if config.ledger.enabled else None
        self.env = JobEnv(config, self.metrics, self.state_dir, self.shutdown, self.ledger)
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
        self.history = History(cards, ledger=self.ledger)
        self.page = StatusPage(self.history, self.runners, cards,
                               report_link=self.ledger is not None)
        # free space where the daemon keeps its state, computed at each scrape
        self.metrics.registry.register(DiskSpaceCollector([self.state_dir]))
        report = None
        if self.ledger is not None:
            plan, tz = Plan(*config.report_plan()), local_zone()
            monthly = MonthlyReport(self.ledger, plan, tz) if config.ledger.monthly_report \
                else None
            LedgerCollector(self.ledger, self.metrics.registry,
                            config.ledger.monitor_off_report_after, monthly=monthly)
            report = ReportRoute(self.ledger, plan, tz)
        self.server = build_server(config.listen_address, self.metrics.registry, self.page,
                                   self.health, config.web_config_file, report)
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
        if self.ledger is not None:
            self._open_ledger(self.ledger)
            self.history.refresh()
        self.server.start()
        now = datetime.now().astimezone()
        if self.ledger is not None:
            # the history follows the ledger's commits here, off the request path
            self._schedule("ledger-history", self.ledger.write_interval, self._refresh,
                           now + timedelta(seconds=self.ledger.write_interval))
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

    def _open_ledger(self, ledger: Ledger) -> None:
        gap = ledger.open()
        if gap is not None:
            event(log, logging.WARNING if gap.seconds >= self.config.ledger.
                  monitor_off_report_after else logging.INFO,
                  f"no data for {gap.seconds:.0f} s: monitor off (power cut or restart)",
                  last_seen=round(gap.last_seen, 3), restarted=round(gap.restarted_at, 3),
                  clean_stop=gap.clean_stop)

    def _run(self, runner: JobRunner) -> None:
        outcome = runner.run_once()
        self.history.observe(runner.name, outcome.result, outcome.summary, outcome.finished_at)
        if self.mqtt is not None:
            self.mqtt.job_ran(runner.name, outcome.result, outcome.summary, outcome.finished_at)
        self._refresh()

    def _refresh(self) -> None:
        """Read what the ledger committed and redraw the charts: here, in a job's or the
        scheduler's thread, not by a request."""
        now = time.time()
        self.history.refresh(now)
        self.page.charts(now)

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
        if self.ledger is not None:
            self.ledger.close()  # after the jobs: their last records are written
        self.server.stop()
        event(log, logging.INFO, "home-monitor stopped")

    def run_until_signalled(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.shutdown.set())
        self.start()
        self.shutdown.wait()
        self.stop()
        return 0
