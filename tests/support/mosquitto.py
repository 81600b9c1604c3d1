"""A real Mosquitto broker (Debian's `mosquitto`) on a free loopback port, and a paho
subscriber that records what arrives. The broker is stopped by its pid, also on failure."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.procs import free_port, wait_until


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
    if not found:
        raise RuntimeError("mosquitto is not installed; `make test` installs it")
    return found


class Broker:
    """`start()`/`stop()` may be repeated: the same port and config each time. No persistence,
    so a restarted broker has forgotten every retained message."""

    def __init__(self, home: Path, users: dict[str, str] | None = None,
                 netns: str | None = None) -> None:
        """`netns`: run inside that network namespace (its own loopback)."""
        self.home = home
        self.netns = netns
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "user root",
                 "log_dest stdout", "log_type all"]
        if users:
            password_file = home / "passwords"
            password_file.touch(mode=0o600)
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(password_file), user, password],
                               check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        self.config = home / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.log = home / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [mosquitto_binary(), "-c", str(self.config)]
        if self.netns:  # `ip netns exec` execs the command: the pid stays mosquitto's
            command = ["ip", "netns", "exec", self.netns, *command]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._accepts, 10, 0.05, what=f"mosquitto on port {self.port}")

    def _accepts(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
        if self.netns:  # not reachable from here: try from inside
            probe = subprocess.run(["ip", "netns", "exec", self.netns, "bash", "-c",
                                    f"exec 3<>/dev/tcp/127.0.0.1/{self.port}"],
                                   capture_output=True)
            return probe.returncode == 0
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def broker(home: Path, users: dict[str, str] | None = None,
           netns: str | None = None) -> Iterator[Broker]:
    running = Broker(home, users, netns)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float = field(default_factory=time.monotonic)


class Subscriber:
    """Subscribes to `topics` and keeps every message, in order."""

    def __init__(self, port: int, topics: list[str], auth: tuple[str, str] | None = None) -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=paho.MQTTv311)
        if auth:
            self.client.username_pw_set(*auth)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_connect = lambda client, *_: client.subscribe(
            [(topic, 1) for topic in topics])
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("the test's subscriber did not get a SUBACK")

    def _on_message(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(message.topic, message.payload, message.retain))

    def all(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def latest(self) -> dict[str, Received]:
        """Topic -> its newest message."""
        return {message.topic: message for message in self.all()}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def subscriber(port: int, topics: list[str], auth: tuple[str, str] | None = None
               ) -> Iterator[Subscriber]:
    sub = Subscriber(port, topics, auth)
    try:
        yield sub
    finally:
        sub.close()


def publish_retained(port: int, topic: str, payload: bytes,
                     auth: tuple[str, str] | None = None) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    if auth:
        client.username_pw_set(*auth)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
