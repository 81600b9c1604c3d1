"""The bandwidth job's entities (TO MOVE onto monitor/jobs/bandwidth/card.py)."""

from __future__ import annotations

from monitor.config import Config
from monitor.mqtt.entity import Entity, Reading, number


def _budget_used(reading: Reading) -> float | None:
    # the job keeps the month's usage on disk (it survives restarts); read it the same way
    from monitor.jobs.bandwidth.budget import UsageStore, current_month  # noqa: PLC0415
    from monitor.jobs.bandwidth.job import USAGE_FILE  # noqa: PLC0415 - only when enabled

    used = UsageStore(reading.state_dir / USAGE_FILE).used(current_month(reading.now))
    return number(used, 1e-9)


def entities(config: Config) -> list[Entity]:
    found = [
        Entity("download", "Download", lambda r: number(r.summary.get("download_mbps"), digits=2),
               device_class="data_rate", unit="Mbit/s", precision=1),
        Entity("upload", "Upload", lambda r: number(r.summary.get("upload_mbps"), digits=2),
               device_class="data_rate", unit="Mbit/s", precision=1),
        Entity("data_used", "Data used this month", _budget_used, device_class="data_size",
               unit="GB", state_class="total", precision=2, expires=False),
    ]
    budget = config.jobs.bandwidth.monthly_data_budget
    if budget:
        found.append(Entity(
            "data_budget_used", "Data budget used",
            lambda r: number(_budget_used(r), 100e9 / budget, digits=1), unit="%",
            precision=0, expires=False, icon="mdi:gauge"))
    return found
