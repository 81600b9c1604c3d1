"""Home Assistant MQTT discovery payloads, as HA documents them.

Topics: `<discovery_prefix>/<component>/<node_id>/<object_id>/config`, retained; an empty
retained payload removes the entity (https://www.home-assistant.io/integrations/mqtt/
#mqtt-discovery). Keys are the full names of HA's sensor and binary_sensor schemas
(homeassistant/components/mqtt/sensor.py, binary_sensor.py; abbreviations are optional).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from monitor import __version__
from monitor.entities import Entity, slug

ONLINE, OFFLINE = "online", "offline"


@dataclass(frozen=True)
class Topics:
    topic_prefix: str
    discovery_prefix: str

    @property
    def node_id(self) -> str:
        return slug(self.topic_prefix)

    @property
    def status(self) -> str:
        """Availability: the broker publishes OFFLINE (our will) when the daemon vanishes."""
        return f"{self.topic_prefix}/status"

    def state(self, job: str) -> str:
        return f"{self.topic_prefix}/{job}/state"

    def health(self, job: str) -> str:
        return f"{self.topic_prefix}/{job}/health"

    def config(self, component: str, job: str, key: str) -> str:
        return f"{self.discovery_prefix}/{component}/{self.node_id}/{job}_{key}/config"

    @property
    def config_wildcard(self) -> str:
        """Every discovery config of this node, to find ones left from an earlier config."""
        return f"{self.discovery_prefix}/+/{self.node_id}/+/config"

    def unique_id(self, job: str, key: str) -> str:
        return f"{self.node_id}_{job}_{key}"


def device(topics: Topics, name: str, status_url: str) -> dict[str, Any]:
    return {"identifiers": [topics.node_id], "name": name, "manufacturer": "home-monitor",
            "model": "home-monitor", "sw_version": __version__,
            "configuration_url": status_url}


def health_entity() -> Entity:
    """Each job's health: the result of its last run (plain payload on its own topic)."""
    return Entity("health", "health", lambda r: None, device_class="enum", state_class=None,
                  options=("ok", "failure", "timeout", "skipped"), entity_category="diagnostic",
                  icon="mdi:heart-pulse", expires=False)


def health_payload(result: str) -> str:
    return "ok" if result == "success" else result


def entity_config(entity: Entity, job: str, topics: Topics, device_info: dict[str, Any],
                  expire_after: int) -> dict[str, Any]:
    """The discovery config of one entity of `job`."""
    is_health = entity.key == "health"
    config: dict[str, Any] = {
        "name": f"{job} health" if is_health else entity.name,
        "unique_id": topics.unique_id(job, entity.key),
        "state_topic": topics.health(job) if is_health else topics.state(job),
        "availability_topic": topics.status,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device": device_info,
        "origin": {"name": "home-monitor", "sw_version": __version__},
    }
    if not is_health:
        # JSON null renders as "None", which HA takes as "unknown"
        config["value_template"] = "{{ value_json." + entity.key + " }}"
    if entity.component == "binary_sensor":
        config["payload_on"], config["payload_off"] = "ON", "OFF"
    optional = {"device_class": entity.device_class, "unit_of_measurement": entity.unit,
                "state_class": entity.state_class, "icon": entity.icon,
                "entity_category": entity.entity_category,
                "suggested_display_precision": entity.precision}
    config.update({key: value for key, value in optional.items() if value is not None})
    if entity.options:
        config["options"] = list(entity.options)
    if entity.expires:
        config["expire_after"] = expire_after
    if entity.attributes is not None:
        config["json_attributes_topic"] = topics.state(job)
        config["json_attributes_template"] = ("{{ value_json." + attributes_key(entity)
                                              + " | tojson }}")
    return config


def attributes_key(entity: Entity) -> str:
    return f"{entity.key}_attributes"


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
