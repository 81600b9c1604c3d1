"""tests/conftest.py decides the markers: no namespace test can slip past `-m "not netns"`."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import markers_for

TESTS = Path(__file__).resolve().parent


def test_every_file_that_builds_namespaces_is_marked_netns() -> None:
    builders = [path.name for path in sorted(TESTS.rglob("test_*.py"))
                if path != Path(__file__).resolve()
                and any(call in path.read_text() for call in ("NetnsPair(", "netns_pair("))]
    assert builders, "no namespace tests found: has the helper been renamed?"
    assert [name for name in builders if "netns" not in markers_for(name)] == []


def test_stack_files_are_marked_stack() -> None:
    stack = [path.name for path in TESTS.rglob("test_stack_*.py")]
    assert stack
    assert all("stack" in markers_for(name) for name in stack)


def test_exactly_the_arm_emulation_file_is_marked_arm() -> None:
    arm = [path.name for path in sorted(TESTS.rglob("test_*.py"))
           if "arm" in markers_for(path.name)]
    assert arm == ["test_container_arm.py"]
    assert {"container", "slow"} <= markers_for("test_container_arm.py")
