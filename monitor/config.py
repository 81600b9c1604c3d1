"""The user's config: YAML -> typed, validated dataclasses. Unknown keys are errors."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from monitor.configschema import ConfigError, Problems, convert_dataclass, describe_value
from monitor.jobconfig import JobConfig
from monitor.jobs.registry import JobsConfig
from monitor.mqtt.config import MqttConfig
from monitor.yamlsafe import load_yaml, read_limited

__all__ = ["Config", "ConfigError", "JobConfig", "JobsConfig", "LogConfig", "load", "parse"]

DEFAULT_PORT = 10132
CONFIG_ENV = "HOMEMON_CONFIG"
DEFAULT_CONFIG_FILE = "home-monitor.yml"
MAX_CONFIG_BYTES = 1024 * 1024  # a config is a few KB; 40 000 targets still fit


# --- top level -----------------------------------------------------------------------------


@dataclass
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    # auto: text for a person at a terminal, JSON lines (for Loki) when stdout is not a TTY
    format: Literal["auto", "json", "text"] = "auto"


@dataclass
class Config:
    # loopback unless the user opens it (the container's config listens on 0.0.0.0)
    listen: str = f"127.0.0.1:{DEFAULT_PORT}"
    state_dir: str = "./state"
    # TLS and basic auth, in the Prometheus exporter-toolkit's web-config format
    web_config_file: str | None = None
    log: LogConfig = field(default_factory=LogConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    mqtt: MqttConfig | None = None  # Home Assistant discovery (docs/home-assistant.md)
    # the file it came from, set by parse(); init=False: not a config key
    source: str = field(default="(defaults)", init=False, repr=False, compare=False)

    def validate(self) -> list[tuple[str, str]]:
        problems = []
        try:
            split_listen(self.listen)
        except ValueError as exc:
            problems.append(("listen", str(exc)))
        if self.web_config_file is not None:
            from monitor.webconfig import check_web_config  # noqa: PLC0415 - only when set

            problems += [("web_config_file", problem)
                         for problem in check_web_config(self.web_config_file)]
        return problems

    @property
    def listen_address(self) -> tuple[str, int]:
        return split_listen(self.listen)

    def job(self, name: str) -> JobConfig:
        """The config of the job `name`; KeyError for a name that is no job."""
        return self.job_configs()[name]

    def job_configs(self) -> dict[str, JobConfig]:
        """Every job's config by name, in registry order (enabled or not)."""
        return job_configs(self.jobs)


def job_configs(jobs: JobsConfig) -> dict[str, JobConfig]:
    found = {f.name: getattr(jobs, f.name) for f in fields(jobs)}
    return {name: config for name, config in found.items() if isinstance(config, JobConfig)}


JOB_NAMES = tuple(job_configs(JobsConfig()))  # the built-in jobs, for `once JOB`


def split_listen(text: str) -> tuple[str, int]:
    """'0.0.0.0:10132', '[::]:10132', ':10132', 'localhost:10132' -> (host, port)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError('expected "host:port" with a port from 1 to 65535, '
                         f"got {describe_value(text)}")
    host = host.strip("[]") or "0.0.0.0"
    if " " in host or "/" in host:
        raise ValueError(f'expected "host:port", got {describe_value(text)}')
    return host, int(port_text)


def parse(data: Any, source: str, kind: type[Config] = Config) -> Config:
    """Validate already-parsed YAML data; raises ConfigError naming `source` and key paths.
    `kind` is Config or a subclass with more jobs (tests register a job that way)."""
    problems = Problems()
    if data is None:
        problems.add("", "the file is empty; expected a mapping with keys such as listen, jobs")
    elif not isinstance(data, dict):
        problems.add("", f"expected a mapping at the top level, got a {type(data).__name__}")
    if problems:
        raise ConfigError([f"{source}: {problem}" for problem in problems])
    config: Config | None = convert_dataclass(kind, data, "", problems)
    if problems or config is None:
        raise ConfigError([f"{source}: {problem}" for problem in problems.redacted()])
    config.source = source
    return config


def load_file(path: str | os.PathLike[str]) -> Config:
    name = str(path)
    raw = read_limited(path, name, MAX_CONFIG_BYTES)
    try:
        text = raw.decode("utf-8")
        data = load_yaml(text, name)
    except RecursionError:
        raise ConfigError([f"{name}: (file): nested too deeply"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{name}: (file): not UTF-8 text; expected a YAML file"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        problem = str(getattr(exc, "problem", None) or exc)[:200]
        raise ConfigError([f"{name}: {where}: invalid YAML: {problem}"]) from None
    return parse(data, name)


def resolve_path(explicit: str | None) -> str | None:
    """--config, else $HOMEMON_CONFIG, else ./home-monitor.yml if present, else None (defaults)."""
    if explicit:
        return explicit
    if os.environ.get(CONFIG_ENV):
        return os.environ[CONFIG_ENV]
    return DEFAULT_CONFIG_FILE if Path(DEFAULT_CONFIG_FILE).is_file() else None


def load(explicit: str | None = None) -> Config:
    path = resolve_path(explicit)
    return Config() if path is None else load_file(path)
