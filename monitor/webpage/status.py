"""The figures of the status page as one JSON-able dict: /api/status serves it as is and the
HTML page is rendered from it, so both always say the same."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor import __version__
from monitor.config import Config
from monitor.history import History
from monitor.jobs.aqi.indices import daqi_band
from monitor.metrics import Metrics
from monitor.runner import JobRunner

# docs/iperf.md "What it costs": data leaving AWS to the internet, most regions
EGRESS_USD_PER_GB = 0.09


def iso(at: float | None) -> str | None:
    """Local time with its offset, to the second: what a person and Home Assistant both read."""
    if at is None:
        return None
    return datetime.fromtimestamp(at).astimezone().isoformat(timespec="seconds")


def snapshot(history: History, runners: Sequence[JobRunner], config: Config, metrics: Metrics,
             now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    with history.lock:
        last = dict(history.last)
        outages = list(history.outages)
        up, since = history.internet_up, history.internet_since
        extra = dict(history.extra)
    enabled = {runner.name for runner in runners}
    return {
        "version": __version__,
        "generated_at": iso(now),
        "internet": _internet(up, since, outages, now) if "latency" in enabled else None,
        "targets": _targets(last.get("latency")),
        "outages": _outages(up, since, outages, now),
        "speedtest": _speedtest(last.get("bandwidth")),
        "budget": _budget(config, extra) if "bandwidth" in enabled else None,
        "iperf": _iperf(last.get("iperf")),
        "ec2": _ec2(config, metrics) if "iperf" in enabled else None,
        "air": _air(last.get("aqi")) if "aqi" in enabled else None,
        "jobs": [_job(runner) for runner in runners],
    }


def _internet(up: bool | None, since: float | None, outages: list[Any],
              now: float) -> dict[str, Any]:
    if up and outages and since is not None and outages[-1].end >= since - 60:
        since = outages[-1].end  # the outage log knows the first reply to the probe slot
    return {"up": up, "since": iso(since),
            "for_seconds": None if since is None else round(max(0.0, now - since))}


def _targets(latest: tuple[float, dict[str, Any]] | None) -> dict[str, Any]:
    if latest is None:
        return {}
    at, summary = latest
    targets = {}
    for label, figures in (summary.get("targets") or {}).items():
        targets[label] = {"rtt_ms": figures.get("avg_ms"), "jitter_ms": figures.get("jitter_ms"),
                          "loss_ratio": figures.get("loss"), "at": iso(at)}
        if figures.get("error"):
            targets[label]["error"] = figures["error"]
    return targets


def _outages(up: bool | None, since: float | None, outages: list[Any],
             now: float) -> list[dict[str, Any]]:
    listed = [{"start": iso(o.start), "end": iso(o.end),
               "seconds": round(float(o.end - o.start), 1)} for o in reversed(outages)]
    if up is False and since is not None:  # going on now
        listed.insert(0, {"start": iso(since), "end": None,
                          "seconds": round(max(0.0, now - since), 1)})
    return listed


def _speedtest(latest: tuple[float, dict[str, Any]] | None) -> dict[str, Any] | None:
    if latest is None:
        return None
    at, summary = latest
    keys = ("download_mbps", "upload_mbps", "latency_ms", "idle_rtt_ms", "loaded_rtt_download_ms",
            "loaded_rtt_upload_ms", "backend", "server", "failed_backends", "cross_check")
    return {"at": iso(at), **{key: summary.get(key) for key in keys}}


def _budget(config: Config, extra: dict[str, Any]) -> dict[str, Any] | None:
    budget = config.jobs.bandwidth.monthly_data_budget
    used = extra.get("budget_used_bytes")
    return {"month": extra.get("budget_month"), "used_bytes": used,
            "budget_bytes": None if budget is None else int(budget),
            "used_ratio": round(used / budget, 4) if budget and used is not None else None}


def _iperf(latest: tuple[float, dict[str, Any]] | None) -> dict[str, Any] | None:
    if latest is None:
        return None
    at, summary = latest
    figures: dict[str, Any] = {"at": iso(at), "server": summary.get("server")}
    for direction in ("download", "upload"):
        bps = summary.get(f"{direction}_bits_per_second")
        figures[f"{direction}_mbps"] = None if bps is None else round(bps / 1e6, 2)
        figures[f"{direction}_retransmits"] = summary.get(f"{direction}_retransmits")
    figures["ec2_start_seconds"] = summary.get("ec2_start_seconds")
    return figures


def _sample(metric: Any, **labels: str) -> float | None:
    """One sample of one of our own metric objects (no exposition, no registry walk)."""
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith(("_created",)):
                continue
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def _ec2(config: Config, metrics: Metrics) -> dict[str, Any] | None:
    ec2 = config.jobs.iperf.ec2
    if ec2 is None:
        return None
    running = _sample(metrics.iperf.instance_running, instance_id=ec2.instance_id)
    seconds = _sample(metrics.iperf.instance_running_seconds, instance_id=ec2.instance_id)
    egress = _sample(metrics.iperf.bytes, direction="download") or 0.0
    return {"instance_id": ec2.instance_id,
            "state": None if running is None else ("running" if running else "stopped"),
            "running_seconds": None if seconds is None else round(seconds),
            "egress_bytes": int(egress),
            "estimated_egress_usd": round(egress / 1e9 * EGRESS_USD_PER_GB, 2),
            "since": "daemon start"}


def _air(latest: tuple[float, dict[str, Any]] | None) -> dict[str, Any] | None:
    if latest is None:
        return None
    at, summary = latest
    daqi = summary.get("uk_daqi_worst")
    return {"at": iso(at), "pm2_5": summary.get("pm25_median"),
            "pm10": summary.get("pm10_median"), "uk_daqi": daqi,
            "uk_daqi_band": daqi_band(daqi).name if isinstance(daqi, int) else None,
            "sensors_fresh": summary.get("sensors_fresh")}


def _job(runner: JobRunner) -> dict[str, Any]:
    last = runner.last
    if runner.stuck:
        health = "stuck"
    elif last is None:
        health = "waiting"
    elif last.result == "success":
        health = "ok"
    elif last.result == "skipped":
        health = "skipped"
    else:
        health = "failing"
    return {"name": runner.name, "health": health, "interval_seconds": runner.interval,
            "last_result": last.result if last else None,
            "last_run": iso(last.finished_at) if last else None,
            "last_duration_seconds": round(last.duration, 3) if last else None,
            "last_success": iso(runner.last_success),
            "error": last.error if last else None}
