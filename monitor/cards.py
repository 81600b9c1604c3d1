"""The Card contract: what a job adds to the history, /api/status and the status page.

A job's card (monitor/jobs/<name>/card.py, returned by its `Job.card()`) is asked by the core
and never the other way round: the history, the page and /api/status loop over the cards and
name no job. docs/architecture.md describes the contract; later readers (an MQTT publisher, a
monthly report) extend it with more methods that have a default here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from monitor.charts import Chart
from monitor.entities import Entity
from monitor.series import Latest, SeriesKey, Table


@dataclass(frozen=True)
class JobView:
    """What a card reads of its job's history: the slots of its series and its last success.
    Read with the history's lock held; a card copies what it keeps."""

    table: Table
    latest: Latest | None


@dataclass(frozen=True)
class Figure:
    """One current value of a job, typed: for /api/status readers, Home Assistant entities
    (name, unit, device class) and reports."""

    name: str
    value: float | None
    unit: str = ""
    device_class: str | None = None


@dataclass(frozen=True)
class PanelSpec:
    """A Grafana time series panel a job declares in its job module's `PANELS` when it has no
    dashboard module of its own (grafana/build_dashboards.py puts it on the Jobs dashboard)."""

    title: str
    queries: tuple[tuple[str, str], ...]  # (PromQL, legend)
    unit: str = "short"
    description: str = ""


class Card(Protocol):
    """A job's contribution to what people read. Subclass it so new hooks get defaults."""

    job: str  # the job's name: its key under `jobs:`

    def series(self, summary: Mapping[str, Any]) -> Mapping[SeriesKey, float | None]:
        """The typed series of one successful run's key figures, kept 24 h in 5-minute slots."""
        return {}

    def observe(self, result: str, summary: Mapping[str, Any], at: float) -> None:
        """Every run's outcome (success or not), for state the card keeps itself (the internet
        state, say). Called with the history's lock held: quick, must not raise."""
        return

    def status(self, view: JobView, now: float) -> dict[str, Any]:
        """Its keys of /api/status (JSON-able); the page is rendered from the same dict."""
        return {}

    def figures(self, view: JobView) -> Sequence[Figure]:
        """The current values, typed (what an MQTT publisher or a report reads)."""
        return ()

    def entities(self) -> Sequence[Entity]:
        """Its entities for a home automation system (monitor/entities.py), asked once at
        start; the MQTT publisher (monitor/mqtt) declares them to Home Assistant and reads
        their values after each run."""
        return ()

    def charts(self, view: JobView) -> Sequence[Chart]:
        """Its 24 h charts, drawn by the web layer."""
        return ()

    def section(self, status: Mapping[str, Any], charts: Sequence[str], now: float) -> str:
        """Its HTML section(s) of the status page, from the /api/status dict and its charts
        already drawn (monitor/htmlparts.py has the shared formatting)."""
        return ""

