"""The user's config: YAML -> typed, validated dataclasses. Unknown keys are errors."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from monitor.configschema import Problems, convert_dataclass
from monitor.jobconfig import JobConfig
from monitor.jobs.registry import JobsConfig

__all__ = ["Config", "ConfigError", "JobConfig", "JobsConfig", "LogConfig", "load", "parse"]

DEFAULT_PORT = 10132
CONFIG_ENV = "HOMEMON_CONFIG"
DEFAULT_CONFIG_FILE = "home-monitor.yml"


class ConfigError(Exception):
    """One or more problems, each already prefixed with the file and key path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --- top level -----------------------------------------------------------------------------


@dataclass
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    # auto: text for a person at a terminal, JSON lines (for Loki) when stdout is not a TTY
    format: Literal["auto", "json", "text"] = "auto"


@dataclass
class Config:
    listen: str = f"0.0.0.0:{DEFAULT_PORT}"
    state_dir: str = "./state"
    log: LogConfig = field(default_factory=LogConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    # the file it came from, set by parse(); init=False: not a config key
    source: str = field(default="(defaults)", init=False, repr=False, compare=False)

    def validate(self) -> list[tuple[str, str]]:
        try:
            split_listen(self.listen)
        except ValueError as exc:
            return [("listen", str(exc))]
        return []

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
        raise ValueError(f'expected "host:port" with a port from 1 to 65535, got "{text}"')
    host = host.strip("[]") or "0.0.0.0"
    if " " in host or "/" in host:
        raise ValueError(f'expected "host:port", got "{text}"')
    return host, int(port_text)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


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
        raise ConfigError([f"{source}: {problem}" for problem in problems])
    config.source = source
    return config


def load_file(path: str | os.PathLike[str]) -> Config:
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{name}: (file): not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{name}: (file): cannot read: {exc.strerror}"]) from None
    try:
        text = raw.decode("utf-8")
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except UnicodeDecodeError:
        raise ConfigError([f"{name}: (file): not UTF-8 text; expected a YAML file"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        problem = getattr(exc, "problem", None) or str(exc)
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
