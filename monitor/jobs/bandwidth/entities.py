"""The bandwidth job's entities (its card declares them): the last speed test with the backend
that measured it, the last cross-check's ratios (when one is configured), and the month's data
use, read from the job's usage file (it survives restarts), and the share of the budget."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from monitor.entities import Entity, Reading, rounded
from monitor.jobs.bandwidth.budget import UsageStore, current_month
from monitor.jobs.bandwidth.config import BackendName

DIRECTIONS = ("download", "upload")


def declare(usage: UsageStore, budget_bytes: int | None,
            cross_checked: bool = False) -> list[Entity]:
    def used_bytes(reading: Reading) -> int:
        return usage.used(current_month(reading.now))

    found = [
        Entity("download", "Download", lambda r: rounded(r.summary.get("download_mbps"), digits=2),
               device_class="data_rate", unit="Mbit/s", precision=1),
        Entity("upload", "Upload", lambda r: rounded(r.summary.get("upload_mbps"), digits=2),
               device_class="data_rate", unit="Mbit/s", precision=1),
        Entity("backend", "Speed test backend", _backend, device_class="enum", state_class=None,
               options=get_args(BackendName), entity_category="diagnostic",
               icon="mdi:speedometer", attributes=_backend_attributes),
        Entity("data_used", "Data used this month", lambda r: rounded(used_bytes(r), 1e-9),
               device_class="data_size", unit="GB", state_class="total", precision=2,
               expires=False),
    ]
    if cross_checked:
        found += [_ratio_entity(direction) for direction in DIRECTIONS]
    if budget_bytes:
        found.append(Entity(
            "data_budget_used", "Data budget used",
            lambda r: rounded(used_bytes(r), 100 / budget_bytes, digits=1), unit="%",
            precision=0, expires=False, icon="mdi:gauge"))
    return found


def _backend(reading: Reading) -> str | None:
    backend = reading.summary.get("backend")
    return backend if backend in get_args(BackendName) else None


def _backend_attributes(reading: Reading) -> dict[str, Any]:
    return {"server": reading.summary.get("server"),
            "failed_backends": reading.summary.get("failed_backends") or []}


def _cross_check(reading: Reading) -> Mapping[str, Any]:
    check = reading.summary.get("cross_check")
    return check if isinstance(check, Mapping) else {}


def _ratio_entity(direction: str) -> Entity:
    """The cross-check backend's figure divided by the main test's. A cross-check runs once a
    day or so: the runs in between keep the last ratio, and it never expires."""
    def attributes(reading: Reading) -> dict[str, Any]:
        check = _cross_check(reading)
        return {"backend": check.get("backend"), "reference": reading.summary.get("backend"),
                f"{direction}_mbps": check.get(f"{direction}_mbps"),
                "failure": check.get("failure")}

    return Entity(f"cross_check_{direction}_ratio", f"Cross-check {direction} ratio",
                  lambda r: rounded(_cross_check(r).get(f"{direction}_ratio"), digits=4),
                  precision=2, expires=False, keep_last=True, entity_category="diagnostic",
                  icon="mdi:scale-balance", attributes=attributes)
