"""The iperf job's entities (TO MOVE onto monitor/jobs/iperf/card.py)."""

from __future__ import annotations

from collections.abc import Callable

from monitor.config import Config
from monitor.mqtt.entity import Entity, Reading, gauge_value, number

EC2_STATES = ("running", "stopped")


def _ec2_state(instance_id: str) -> Callable[[Reading], str | None]:
    def value(reading: Reading) -> str | None:
        running = gauge_value(reading.metrics.iperf.instance_running, instance_id=instance_id)
        return None if running is None else ("running" if running else "stopped")
    return value


def _mbps(direction: str) -> Callable[[Reading], float | None]:
    return lambda reading: number(reading.summary.get(f"{direction}_bits_per_second"), 1e-6, 2)


def entities(config: Config) -> list[Entity]:
    found = [Entity(f"iperf_{direction}", f"iperf {direction}", _mbps(direction),
                    device_class="data_rate", unit="Mbit/s", precision=1)
             for direction in config.jobs.iperf.directions]
    ec2 = config.jobs.iperf.ec2
    if ec2 is not None:
        found.append(Entity("ec2_instance", "EC2 instance", _ec2_state(ec2.instance_id),
                            device_class="enum", state_class=None, options=EC2_STATES,
                            icon="mdi:server", expires=False, live=True))
    return found
