"""A full disk and a read-only state directory under a live ledger: a small tmpfs mounted in a
private mount namespace (`unshare -m`), so nothing on the host is touched. Named *_netns.py
for the root-only marking (tests/conftest.py); the namespace here is a mount namespace."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import REPO

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux")


def run(case: str, state: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    state.mkdir()
    done = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-m",
                           "tests.support.ledger_disk", case, str(state)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    logs = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert not any(state.iterdir()), "the tmpfs was visible outside its namespace"
    return json.loads(done.stdout), logs


def test_a_full_disk_is_counted_and_logged_and_the_rows_written_once_there_is_room(
        tmp_path: Path) -> None:
    result, logs = run("full", tmp_path / "state")
    assert result["first"] is True
    assert result["full"] == [False, False, False]
    assert result["errors"] >= 3
    assert result["buffered"] >= 3000
    assert result["after"] is True
    assert result["stored"] == 3010
    failures = [line for line in logs if line["msg"].startswith("ledger: cannot write")]
    assert len(failures) == 1  # rate-limited: one line, not one per attempt
    assert "full" in failures[0]["error"]
    assert any(line["msg"] == "ledger: writing again" for line in logs)


def test_a_read_only_state_directory_keeps_rows_in_memory(tmp_path: Path) -> None:
    result, logs = run("ro", tmp_path / "state")
    for case, stored in (("existing", 2), ("fresh", 1)):
        figures = result[case]
        assert figures["blocked"] is False, case
        assert figures["errors"] >= 1, case
        assert figures["buffered"] >= 2, case  # the start event and the outage
        assert figures["after"] is True, case
        assert figures["stored"] == stored, case
    errors = [str(line.get("error", "")).lower() for line in logs
              if line["msg"].startswith("ledger: cannot write")]
    assert errors
    assert all("read-only" in e or "readonly" in e or "unable to open" in e
                          for e in errors), errors
