"""The iperf job's entities (its card declares them): throughput per direction and, with an
EC2 instance, its state (live: the watchdog stops it between runs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from monitor.entities import Entity, Reading, rounded, sample
from monitor.jobs.iperf.config import Ec2Config
from monitor.jobs.iperf.metrics import IperfMetrics

EC2_STATES = ("running", "stopped")


def declare(directions: Sequence[str], ec2: Ec2Config | None,
            metrics: IperfMetrics) -> list[Entity]:
    found = [Entity(f"iperf_{direction}", f"iperf {direction}", _mbps(direction),
                    device_class="data_rate", unit="Mbit/s", precision=1)
             for direction in directions]
    if ec2 is not None:
        instance_id = ec2.instance_id

        def state(reading: Reading) -> str | None:
            running = sample(metrics.instance_running, instance_id=instance_id)
            return None if running is None else ("running" if running else "stopped")

        found.append(Entity("ec2_instance", "EC2 instance", state, device_class="enum",
                            state_class=None, options=EC2_STATES, icon="mdi:server",
                            expires=False, live=True))
    return found


def _mbps(direction: str) -> Callable[[Reading], float | None]:
    return lambda reading: rounded(reading.summary.get(f"{direction}_bits_per_second"), 1e-6, 2)
