"""`log.format: auto`: the real daemon writes text to a terminal and JSON lines to a pipe;
an explicit json or text wins either way."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.procs import REPO, free_port, minimal_config, stop_process, write_config


def first_line(config: Path, *, tty: bool) -> str:
    """Start `home-monitor run`, return its first log line (the start-up line)."""
    cmd = [sys.executable, "-m", "monitor", "run", "--config", str(config)]
    if tty:
        leader, follower = pty.openpty()
        proc = subprocess.Popen(cmd, stdout=follower, stderr=subprocess.DEVNULL, cwd=REPO)
        os.close(follower)
        read_fd = leader
    else:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO)
        assert proc.stdout is not None
        read_fd = proc.stdout.fileno()
    buffer = b""
    deadline = time.monotonic() + 30
    try:
        while b"\n" not in buffer and time.monotonic() < deadline:
            ready, _, _ = select.select([read_fd], [], [], 0.5)
            if ready:
                chunk = os.read(read_fd, 4096)
                if not chunk:
                    break
                buffer += chunk
    finally:
        stop_process(proc)
        if tty:
            os.close(read_fd)
    assert b"\n" in buffer, f"no log line within 30 s: {buffer!r}"
    return buffer.split(b"\n", 1)[0].decode().rstrip("\r")


def is_json(line: str) -> bool:
    try:
        return json.loads(line)["msg"] == "home-monitor started"
    except (ValueError, KeyError, TypeError):
        return False


@pytest.mark.parametrize(("fmt", "tty", "want_json"), [
    (None, True, False), (None, False, True),
    ("auto", True, False), ("json", True, True), ("text", False, False)])
def test_log_format_follows_the_terminal_unless_set(tmp_path: Path, fmt: str | None, tty: bool,
                                                    want_json: bool) -> None:
    config = minimal_config(tmp_path, free_port())
    config["log"] = {"level": "info"} | ({"format": fmt} if fmt else {})
    line = first_line(write_config(tmp_path / "home-monitor.yml", config), tty=tty)
    assert "home-monitor started" in line
    assert is_json(line) == want_json, line
    if not want_json:
        assert " INFO " in line, line
        assert "jobs=[]" in line, line
