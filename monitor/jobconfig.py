"""What every job's config has; a job's own config class (monitor/jobs/<name>/config.py)
subclasses it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from monitor.configschema import Duration, bounded


@dataclass
class JobConfig:
    """The part of a job's config the daemon reads: whether it runs, how often, how long at most.

    A job's config class subclasses this (redeclaring a field changes only its default) and is
    one field of `JobsConfig`; the field's name is the job's name and its key under `jobs:`.
    """

    enabled: bool = True
    interval: Duration = bounded(Duration(60), positive=True)
    timeout: Duration = bounded(Duration(30), positive=True)
    # the module with `build(env) -> Job`; None: monitor.jobs.<the job's name>
    module: ClassVar[str | None] = None

    def validate(self) -> list[tuple[str, str]]:
        """Problems as (key, message); the loader prefixes the file and `jobs.<name>.`."""
        return []
