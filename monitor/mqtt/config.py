"""The optional `mqtt:` section: where Home Assistant's broker is and how to log in.

Off unless present. Kept apart from monitor/config.py so the publisher stays one package; the
top-level Config has one field of this type.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from monitor.configschema import Duration, bounded

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
# MQTT topic levels we build from these prefixes: no wildcards, no empty levels
_TOPIC_PREFIX = re.compile(r"^[^#+/\s]+(/[^#+/\s]+)*$")


@dataclass
class MqttTlsConfig:
    ca_file: str | None = None  # None: the system's CA store
    insecure: bool = False  # skip the certificate's host name check (self-signed brokers)

    def validate(self) -> list[tuple[str, str]]:
        if self.ca_file is not None and not Path(self.ca_file).is_file():
            return [("ca_file", f'no such file "{self.ca_file}"')]
        return []


@dataclass
class BrokerAddress:
    secure: bool
    host: str
    port: int


@dataclass
class MqttConfig:
    url: str  # mqtt://host:1883 or mqtts://host:8883
    username: str | None = None
    password: str | None = None  # write ${file:/run/secrets/mqtt_password}, never the value
    topic_prefix: str = "home-monitor"  # state and availability topics; unique per box
    discovery_prefix: str = "homeassistant"  # Home Assistant's default
    device_name: str = "home-monitor"
    status_url: str | None = None  # the status page for HA's "visit"; None: http://<hostname>:<port>/
    keepalive: Duration = bounded(Duration(60), min=1, max=3600)
    queue_size: int = bounded(1000, min=10, max=100_000)  # messages held while the broker is away
    tls: MqttTlsConfig | None = None  # only for mqtts:// (empty: the system's CA store)

    def validate(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        try:
            address = parse_broker_url(self.url)
        except ValueError as exc:
            problems.append(("url", str(exc)))
        else:
            if self.tls is not None and not address.secure:
                problems.append(("tls", "set only with an mqtts:// url"))
        if self.password is not None and self.username is None:
            problems.append(("username", "a password needs a username"))
        for key in ("topic_prefix", "discovery_prefix"):
            if not _TOPIC_PREFIX.match(getattr(self, key)):
                problems.append((key, "expected topic levels like \"home-monitor\" or "
                                      "\"home/monitor\": no +, #, spaces or empty levels"))
        if self.status_url is not None and not self.status_url.startswith(("http://", "https://")):
            problems.append(("status_url", "expected an http(s) URL"))
        return problems

    @property
    def broker(self) -> BrokerAddress:
        return parse_broker_url(self.url)


def parse_broker_url(url: str) -> BrokerAddress:
    """'mqtt://host:1883' / 'mqtts://host' -> BrokerAddress; ValueError says what is wrong
    without repeating a URL that carries credentials."""
    shown = f'"{url}"' if "@" not in url else "(a URL with credentials, not shown)"
    expected = f'expected "mqtt://host:1883" or "mqtts://host:8883", got {shown}'
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(expected) from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(expected)
    if parts.username is not None or parts.password is not None:
        raise ValueError("put credentials in mqtt.username and mqtt.password, not in the URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(expected)
    if port == 0:
        raise ValueError(expected)
    return BrokerAddress(parts.scheme == "mqtts", parts.hostname,
                         port if port is not None else DEFAULT_PORTS[parts.scheme])
