"""The config examples in README.md and docs/ are valid configs: the docs stay true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from monitor.config import parse

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def config_examples() -> list[tuple[str, object]]:
    found = []
    for path in DOCS:
        blocks = re.findall(r"```yaml\n(.*?)```", path.read_text(encoding="utf-8"), re.S)
        for number, block in enumerate(blocks):
            data = yaml.safe_load(block)
            if isinstance(data, dict) and ("jobs" in data or "listen" in data):
                found.append((f"{path.name}#{number}", data))
    return found


EXAMPLES = config_examples()


def test_every_job_doc_has_an_example() -> None:
    names = {where.split("#")[0] for where, _ in EXAMPLES}
    assert {"README.md", "latency.md", "bandwidth.md", "iperf.md", "aqi.md"} <= names


@pytest.mark.parametrize(("where", "data"), EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_config_example_is_valid(where: str, data: object) -> None:
    parse(data, where)  # raises ConfigError naming the doc and the key
