"""A disabled feature costs no memory: without `mqtt:` the daemon never imports paho or the
publisher (checked in a fresh interpreter, as `home-monitor run` starts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.procs import REPO, free_port, minimal_config, write_config

PROBE = """
import json, sys
from prometheus_client import CollectorRegistry
from monitor.config import load
from monitor.daemon import Daemon
Daemon(load(sys.argv[1]), CollectorRegistry())
print(json.dumps(sorted(m for m in sys.modules
                        if m.split(".")[0] == "paho" or m.startswith("monitor.mqtt"))))
"""


def loaded_by_the_daemon(tmp_path: Path, mqtt: dict[str, Any] | None) -> set[str]:
    config = minimal_config(tmp_path, free_port(), latency={
        "targets": [{"host": "127.0.0.1", "internet": True}]})
    if mqtt is not None:
        config["mqtt"] = mqtt
    path = write_config(tmp_path / "home-monitor.yml", config)
    done = subprocess.run([sys.executable, "-c", PROBE, str(path)], cwd=REPO, check=True,
                          capture_output=True, text=True, timeout=60)
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_without_mqtt_paho_is_never_imported(tmp_path: Path) -> None:
    loaded = loaded_by_the_daemon(tmp_path, None)
    assert not {module for module in loaded if module.startswith("paho")}
    assert "monitor.mqtt.publisher" not in loaded
    assert loaded <= {"monitor.mqtt", "monitor.mqtt.config"}  # the config section's class


def test_with_mqtt_the_publisher_and_paho_load(tmp_path: Path) -> None:
    loaded = loaded_by_the_daemon(tmp_path, {"url": "mqtt://127.0.0.1:1"})
    assert {"paho.mqtt.client", "monitor.mqtt.publisher"} <= loaded
