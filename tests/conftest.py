"""Markers by kind of test, decided here for every file (not file by file):

- `netns`: builds network namespaces, so needs root and `ip netns`; skipped without them.
- `stack`: checks the compose stack's configs, often by running Prometheus, Alertmanager,
  promtool or amtool.
- `container`: builds and runs the image on a private Docker engine.
- `arm`: builds the image for linux/arm64 and linux/arm/v7 and runs it under qemu (binfmt_misc).
- `slow`: takes more than a few seconds.

`pytest -m "not netns and not slow"` is the quick loop.
"""

from __future__ import annotations

import fnmatch

import pytest

from tests.support.netns import netns_available

# test file name pattern -> markers its tests get
MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("test_*_netns.py", ("netns", "slow")),
    ("test_stack_e2e.py", ("netns", "slow")),
    ("test_stack_*.py", ("stack",)),
    ("test_container*.py", ("container", "slow")),
    ("test_web_abuse.py", ("slow",)),
    ("test_container_arm.py", ("arm",)),
)


def markers_for(file_name: str) -> set[str]:
    return {marker for pattern, markers in MARKERS if fnmatch.fnmatch(file_name, pattern)
            for marker in markers}


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker in sorted(markers_for(item.path.name)):
            item.add_marker(marker)
    netns_items = [item for item in items if item.get_closest_marker("netns") is not None]
    if netns_items and not netns_available():
        for item in netns_items:
            item.add_marker(pytest.mark.skip(reason="needs root and `ip netns` (CI runs as root)"))
