"""Publishes the device, its entities and their states to an MQTT broker for Home Assistant.

Jobs never wait for the broker: `job_ran` builds the small state payloads and appends them to a
bounded queue (a full queue drops its oldest message, counted); a sender thread hands them to
paho while connected. paho's own loop thread connects, reconnects with backoff and keeps the
session alive. On every (re)connect the sender publishes "online", every discovery config,
the removals and the latest state of each job, so nothing lost while away stays lost.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import CollectorRegistry

from monitor.cards import Card
from monitor.entities import Entity, Reading
from monitor.errors import describe
from monitor.jobconfig import JobConfig
from monitor.logs import event
from monitor.mqtt.config import MqttConfig
from monitor.mqtt.discovery import (
    OFFLINE,
    ONLINE,
    Topics,
    attributes_key,
    device,
    encode,
    entity_config,
    health_entity,
    health_payload,
)
from monitor.mqtt.metrics import MqttMetrics

log = logging.getLogger("monitor.mqtt")

RECONNECT_MIN, RECONNECT_MAX = 1, 10  # seconds, paho doubles from min to max
QOS = 1
IN_FLIGHT = 50  # messages handed to paho and not yet acknowledged, at most
STOP_FLUSH = 2.0  # seconds stop() waits for "offline" to leave
AUTH_REASONS = {"Bad user name or password", "Not authorized"}


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    kind: str  # a MESSAGE_KINDS label


class _Client(paho.Client):
    """paho's client, remembering why the last connection attempt failed: its
    on_connect_fail callback is not told."""

    last_error: BaseException | None = None

    def reconnect(self) -> MQTTErrorCode:
        try:
            return super().reconnect()
        except OSError as exc:
            self.last_error = exc
            raise


HINTS = {
    "refused": "nothing accepts connections at that address and port",
    "dns": "the broker's host name does not resolve",
    "tls": "the TLS handshake failed: is it a TLS (mqtts) port, is the certificate trusted?",
    "timeout": "the broker did not answer in time",
    "network": "the connection failed",
}


def failure_reason(exc: BaseException | None, tls: bool) -> str:
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return "tls"
    # a plain MQTT listener drops a TLS ClientHello: the handshake sees a reset or EOF
    if tls and isinstance(exc, ConnectionResetError | BrokenPipeError | EOFError):
        return "tls"
    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "network"


class Site(Protocol):
    """What the publisher reads of the whole config (monitor.config.Config), named here so the
    mqtt package sits below the config module that imports its config class."""

    mqtt: MqttConfig | None

    @property
    def listen_address(self) -> tuple[str, int]: ...

    def job(self, name: str) -> JobConfig: ...


def status_url(config: Site) -> str:
    assert config.mqtt is not None
    if config.mqtt.status_url:
        return config.mqtt.status_url
    host, port = config.listen_address
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def loopback_status_url(config: Site) -> bool:
    """True when HA would be sent to this box's loopback: no mqtt.status_url and the daemon
    listens on loopback only (the default listen), so the device's "visit" link leads nowhere."""
    assert config.mqtt is not None
    if config.mqtt.status_url:
        return False
    host = config.listen_address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may well resolve for HA
        return False


class MqttPublisher:
    def __init__(self, config: Site, registry: CollectorRegistry,
                 cards: Sequence[Card]) -> None:
        """`cards`: the enabled jobs' cards; each job's entities are its card's `entities()`
        plus its health. A job switched off has no card: its entities' retained configs, left
        on the broker by an earlier run, are removed when the subscription delivers them."""
        assert config.mqtt is not None, "build the publisher only when mqtt: is configured"
        self.settings: MqttConfig = config.mqtt
        self.config = config
        self.own = MqttMetrics(registry)
        self.topics = Topics(self.settings.topic_prefix, self.settings.discovery_prefix)
        self.broker = self.settings.broker
        self.entities = {card.job: list(card.entities()) for card in cards}
        self.expire_after = {job: _expire_after(config.job(job)) for job in self.entities}
        self._lock = threading.Lock()
        self._queue: deque[Message] = deque()
        self._latest: dict[str, Message] = {}  # topic -> the newest state, for reconnects
        self._values: dict[str, dict[str, Any]] = {job: {} for job in self.entities}
        self._readings: dict[str, Reading] = {}  # each job's last successful run
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._connected = False
        self._resync = False
        self._failure_logged: str | None = None
        self._in_flight: deque[paho.MQTTMessageInfo] = deque()
        self._configs = self._discovery_messages()
        self._config_topics = {message.topic for message in self._configs}
        self.client = self._make_client()
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)

    # --- set-up ----------------------------------------------------------------------------

    def _make_client(self) -> _Client:
        client = _Client(CallbackAPIVersion.VERSION2,
                         client_id=f"{self.topics.node_id}-{os.getpid()}",
                         protocol=paho.MQTTv311)
        if self.settings.username is not None:
            client.username_pw_set(self.settings.username, self.settings.password)
        if self.broker.secure:
            tls = self.settings.tls
            context = ssl.create_default_context(cafile=tls.ca_file if tls else None)
            if tls is not None and tls.insecure:
                context.check_hostname = False
            client.tls_set_context(context)
        client.will_set(self.topics.status, OFFLINE, qos=QOS, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN, RECONNECT_MAX)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _discovery_messages(self) -> list[Message]:
        device_info = device(self.topics, self.settings.device_name, status_url(self.config))
        messages = []
        for job, entities in self.entities.items():
            for entity in [*entities, health_entity()]:
                payload = entity_config(entity, job, self.topics, device_info,
                                        self.expire_after[job])
                messages.append(Message(self.topics.config(entity.component, job, entity.key),
                                        encode(payload), "discovery"))
        return messages

    def start(self) -> None:
        event(log, logging.INFO, "mqtt: connecting", broker=self._where(),
              entities=len(self._configs))
        if loopback_status_url(self.config):
            event(log, logging.WARNING, "mqtt: the device's configuration_url points Home "
                  "Assistant at this box's loopback (listen is loopback and mqtt.status_url "
                  "is unset): set mqtt.status_url to the address HA can reach",
                  configuration_url=status_url(self.config))
        self.client.connect_async(self.broker.host, self.broker.port,
                                  keepalive=round(self.settings.keepalive))
        self.client.loop_start()
        self._sender.start()

    def stop(self) -> None:
        """Say "offline" (a clean exit sends no will), then disconnect; bounded."""
        self._stopping.set()
        self._wake.set()
        self._sender.join(STOP_FLUSH)
        if self._connected:
            info = self.client.publish(self.topics.status, OFFLINE, qos=QOS, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # the connection just went
                info.wait_for_publish(STOP_FLUSH)
        self.client.disconnect()
        self.client.loop_stop()

    def _where(self) -> str:
        scheme = "mqtts" if self.broker.secure else "mqtt"
        return f"{scheme}://{self.broker.host}:{self.broker.port}"

    # --- called by the daemon after each run -----------------------------------------------

    def job_ran(self, job: str, result: str, summary: Any, finished_at: float) -> None:
        """Queue the job's health and, after a success, its state. Never waits."""
        if job not in self.entities:
            return
        with self._lock:
            self._queue_latest(Message(self.topics.health(job), health_payload(result).encode(),
                                       "state"))
            if result == "success":
                reading = Reading(summary, finished_at)
                self._readings[job] = reading
                self._update(job, reading, self.entities[job])
                self._queue_state(job)
        self._wake.set()

    def publish_changes(self, now: float) -> None:
        """Between runs: re-read the `live` entities (internet up/down, the last outage) and
        publish the job's state at once if one changed. The sender calls it every second."""
        with self._lock:
            for job, reading in self._readings.items():
                live = [entity for entity in self.entities[job] if entity.live]
                if live and self._update(job, replace(reading, now=now), live):
                    self._queue_state(job)

    def _update(self, job: str, reading: Reading, entities: Sequence[Entity]) -> bool:
        """With self._lock held: the entities' values from `reading`; True if one changed."""
        values = self._values[job]
        before = dict(values)
        for entity in entities:
            value = _extract(entity, reading, job)
            if value is None and entity.keep_last and entity.key in values:
                continue
            values[entity.key] = value
            if entity.attributes is not None:
                values[attributes_key(entity)] = entity.attributes(reading) or {}
        return values != before

    def _queue_state(self, job: str) -> None:
        self._queue_latest(Message(self.topics.state(job), encode(self._values[job]), "state"))

    def _queue_latest(self, message: Message) -> None:
        """With self._lock held: queue it and keep it as the topic's latest, for reconnects."""
        self._latest[message.topic] = message
        self._enqueue(message)

    def _enqueue(self, message: Message) -> None:
        """With self._lock held. A full queue loses its oldest message."""
        if len(self._queue) >= self.settings.queue_size:
            self._queue.popleft()
            self.own.dropped.inc()
        self._queue.append(message)
        self.own.queued.set(len(self._queue))

    # --- the sender thread -----------------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self.publish_changes(time.time())
                self._send_pending()
            except Exception as exc:  # noqa: BLE001 - keep publishing; the failure is counted
                self.own.failures.labels(reason="publish").inc()
                event(log, logging.WARNING, "mqtt: publishing failed", error=describe(exc))

    def _send_pending(self) -> None:
        if not self._connected:
            return
        if self._resync:
            self._resync = False
            self._in_flight.clear()  # what paho still holds it resends by itself
            with self._lock:
                self._queue.clear()  # the snapshot below supersedes whatever waited
                latest = list(self._latest.values())
            snapshot = [Message(self.topics.status, ONLINE.encode(), "availability"),
                        *self._configs, *latest]
            for message in snapshot:
                if not self._publish(message):
                    self._resync = True  # lost the connection again: redo it all next time
                    return
        while self._connected:
            with self._lock:
                if not self._queue:
                    self.own.queued.set(0)
                    return
                message = self._queue.popleft()
                self.own.queued.set(len(self._queue))
            if not self._publish(message):
                with self._lock:
                    self._queue.appendleft(message)
                    self.own.queued.set(len(self._queue))
                return

    def _publish(self, message: Message) -> bool:
        """Hand one message to paho; False if it was not taken (the connection is gone).
        paho keeps a QoS 1 message it could not send yet and resends it after reconnecting."""
        if not self._connected or not self._room_in_flight():
            return False
        info = self.client.publish(message.topic, message.payload, qos=QOS, retain=True)
        if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            self.own.published.labels(kind=message.kind).inc()
            self._in_flight.append(info)
        else:  # refused for good (e.g. too large): retrying would not help
            self.own.failures.labels(reason="publish").inc()
            event(log, logging.WARNING, "mqtt: the client refused a message",
                  topic=message.topic, error=paho.error_string(info.rc))
        return True

    def _room_in_flight(self) -> bool:
        """Wait (in the sender thread) until the broker has acknowledged enough: paho's own
        queue is unbounded, so this is what bounds it."""
        while True:
            while self._in_flight and _settled(self._in_flight[0]):
                self._in_flight.popleft()
            if len(self._in_flight) < IN_FLIGHT:
                return True
            if not self._connected or self._stopping.is_set():
                self._in_flight.clear()  # paho resends those after a reconnect
                return False
            time.sleep(0.01)

    # --- paho's callbacks (its loop thread) ------------------------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any,
                    reason_code: ReasonCode, properties: Any) -> None:
        if reason_code.is_failure:
            text = str(reason_code)
            if text in AUTH_REASONS:
                self._failed("auth", f"the broker refused the login ({text}): check "
                             "mqtt.username and mqtt.password")
            else:
                self._failed("refused", f"the broker refused the connection: {text}")
            return
        client.subscribe(self.topics.config_wildcard, qos=QOS)
        self._connected, self._resync = True, True
        self.own.connected.set(1)
        self._failure_logged = None
        event(log, logging.INFO, "mqtt: connected", broker=self._where())
        self._wake.set()

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        error = self.client.last_error
        reason = failure_reason(error, self.broker.secure)
        self._failed(reason, f"cannot connect: {HINTS.get(reason, 'failed')}",
                     error=describe(error) if error else None)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any,
                       reason_code: ReasonCode, properties: Any) -> None:
        was_connected, self._connected = self._connected, False
        self.own.connected.set(0)
        if was_connected and not self._stopping.is_set():
            self._failed("connection_lost", f"lost the broker connection ({reason_code}); "
                         "reconnecting")

    def _failed(self, reason: str, message: str, error: str | None = None) -> None:
        """Counted every time, logged when the reason changes (not once per retry)."""
        self.own.failures.labels(reason=reason).inc()
        if reason != self._failure_logged:
            self._failure_logged = reason
            fields: dict[str, Any] = {"broker": self._where(), "reason": reason,
                                      "retry_within_seconds": RECONNECT_MAX}
            if error:
                fields["error"] = error
            event(log, logging.WARNING, f"mqtt: {message}", **fields)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        """A retained discovery config of this node that the current config no longer has
        (a target renamed, a job switched off earlier): remove it."""
        if message.payload and message.topic not in self._config_topics:
            with self._lock:
                self._enqueue(Message(message.topic, b"", "removal"))
            self._wake.set()


def _expire_after(job: JobConfig) -> int:
    """A measurement older than two runs and a timeout is stale: HA shows it unavailable."""
    return int(2 * job.interval + job.timeout)


def _settled(info: paho.MQTTMessageInfo) -> bool:
    """Acknowledged, or out of our hands: a message paho took while disconnected is resent by
    paho after the reconnect (and its is_published() raises)."""
    return info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS or info.is_published()


def _extract(entity: Entity, reading: Reading, job: str) -> Any:
    try:
        return entity.value(reading)
    except Exception:  # noqa: BLE001 - one odd figure must not cost the other entities
        log.debug("mqtt: entity %s of %s failed to read its value", entity.key, job,
                  exc_info=True)
        return None
