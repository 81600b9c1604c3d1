"""The bandwidth job's entities (its card declares them): the last speed test and the month's
data use, read from the job's usage file (it survives restarts), and the share of the budget."""

from __future__ import annotations

from monitor.entities import Entity, Reading, rounded
from monitor.jobs.bandwidth.budget import UsageStore, current_month


def declare(usage: UsageStore, budget_bytes: int | None) -> list[Entity]:
    def used_bytes(reading: Reading) -> int:
        return usage.used(current_month(reading.now))

    found = [
        Entity("download", "Download", lambda r: rounded(r.summary.get("download_mbps"), digits=2),
               device_class="data_rate", unit="Mbit/s", precision=1),
        Entity("upload", "Upload", lambda r: rounded(r.summary.get("upload_mbps"), digits=2),
               device_class="data_rate", unit="Mbit/s", precision=1),
        Entity("data_used", "Data used this month", lambda r: rounded(used_bytes(r), 1e-9),
               device_class="data_size", unit="GB", state_class="total", precision=2,
               expires=False),
    ]
    if budget_bytes:
        found.append(Entity(
            "data_budget_used", "Data budget used",
            lambda r: rounded(used_bytes(r), 100 / budget_bytes, digits=1), unit="%",
            precision=0, expires=False, icon="mdi:gauge"))
    return found
