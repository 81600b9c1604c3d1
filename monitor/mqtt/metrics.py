"""The publisher's own metrics (registered only when `mqtt:` is configured)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

MESSAGE_KINDS = ("availability", "discovery", "removal", "state")
FAILURE_REASONS = ("auth", "refused", "tls", "dns", "timeout", "network", "connection_lost",
                   "publish")


class MqttMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.connected = Gauge("homemon_mqtt_connected", "1 while connected to the MQTT broker",
                               registry=registry)
        self.published = Counter("homemon_mqtt_messages_published", "Messages handed to the "
                                 "broker connection, by kind", ["kind"], registry=registry)
        self.dropped = Counter("homemon_mqtt_messages_dropped", "Messages dropped because the "
                               "queue was full while the broker was away (oldest first)",
                               registry=registry)
        self.failures = Counter("homemon_mqtt_failures", "Failed connection attempts, lost "
                                "connections and refused publishes, by reason", ["reason"],
                                registry=registry)
        self.queued = Gauge("homemon_mqtt_queued_messages", "Messages waiting for the broker",
                            registry=registry)
        for kind in MESSAGE_KINDS:
            self.published.labels(kind=kind)
        for reason in FAILURE_REASONS:
            self.failures.labels(reason=reason)
