"""A compose service, as `docker compose config --format json` prints it, as `docker run` flags.

The container tests and bench/container.py run the image with the `monitor` service's own
settings read from docker-compose.yml, not a copy of them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

STATE = "/var/lib/home-monitor"
CONFIG_TARGET = "/etc/home-monitor/home-monitor.yml"


def monitor_config(target: str) -> str:
    """Only the latency job, pinging a test address every few seconds."""
    return yaml.safe_dump({
        "listen": "0.0.0.0:10132",
        "state_dir": STATE,
        "log": {"level": "info", "format": "json"},
        "jobs": {
            "latency": {"enabled": True, "interval": "5s", "timeout": "5s", "count": 3,
                        "packet_interval": "200ms", "packet_timeout": "1s",
                        "targets": [{"host": target, "name": "test"}]},
            "bandwidth": {"enabled": False},
            "iperf": {"enabled": False},
            "aqi": {"enabled": False},
        },
    }, sort_keys=False)


def run_args(service: dict[str, Any], config_file: Path, volume: str) -> list[str]:
    """`docker run` flags for a compose service in canonical form (`docker compose config`).

    Every key must be understood here or deliberately left out: a new hardening setting in
    docker-compose.yml must not be silently dropped from this test.
    """
    left_out = {"build", "image", "restart", "ports", "logging", "networks", "depends_on",
                "command", "entrypoint"}
    args: list[str] = []
    for key, value in service.items():
        if key in left_out:
            continue
        if key == "read_only":
            args += ["--read-only"] if value else []
        elif key in ("cap_drop", "cap_add", "security_opt", "tmpfs", "dns", "group_add"):
            flag = "--" + key.replace("_", "-")
            args += [part for item in value for part in (flag, item)]
        elif key == "sysctls":
            args += [part for k, v in value.items() for part in ("--sysctl", f"{k}={v}")]
        elif key == "environment":
            args += [part for k, v in value.items() for part in ("-e", f"{k}={v}")]
        elif key == "user":
            args += ["--user", value]
        elif key == "init":
            args += ["--init"] if value else []
        elif key in ("stop_grace_period", "stop_signal", "pids_limit", "mem_limit", "shm_size",
                     "cpus"):
            flag = {"stop_grace_period": "--stop-timeout", "mem_limit": "--memory"}.get(
                key, "--" + key.replace("_", "-"))
            args += [flag, str(duration_seconds(value) if key == "stop_grace_period" else value)]
        elif key == "healthcheck":
            args += healthcheck_args(value)
        elif key == "volumes":
            for mount in value:
                if mount["target"] == CONFIG_TARGET:
                    args += ["-v", f"{config_file}:{CONFIG_TARGET}:ro"]
                elif mount["type"] == "volume":
                    args += ["-v", f"{volume}:{mount['target']}"]
                else:
                    raise AssertionError(f"monitor mounts {mount}: teach this test about it")
        else:
            raise AssertionError(f"monitor service key {key!r}: teach run_args() about it")
    return args


def duration_seconds(text: str) -> int:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for suffix in sorted(units, key=len, reverse=True):
        if str(text).endswith(suffix):
            return max(1, round(float(str(text)[: -len(suffix)]) * units[suffix]))
    return int(text)


def healthcheck_args(check: dict[str, Any]) -> list[str]:
    if check.get("disable"):
        return ["--no-healthcheck"]
    args = []
    for key in ("interval", "timeout", "start_period", "retries"):
        if key in check:
            args += [f"--health-{key.replace('_', '-')}", str(check[key])]
    if "test" in check:
        test = check["test"]
        args += ["--health-cmd", test[1] if test[0] == "CMD-SHELL" else subprocess.list2cmdline(
            test[1:])]
    return args
