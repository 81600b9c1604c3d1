"""The real daemon on a read-only and on a full state directory (a small tmpfs mounted in a
private mount namespace, `unshare -m`, so nothing on the host is touched): it keeps measuring
and serving, and the ledger's write errors are counted on /metrics and logged. Named *_netns.py
for the root-only marking (tests/conftest.py)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.ledger.test_daemon_restart import _config
from tests.support.procs import daemon, free_port, http_get, wait_until, write_config

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux")


def _metric(base: str, name: str) -> float:
    for line in http_get(f"{base}/metrics")[1].decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return -1.0


@pytest.mark.parametrize("mount", ["ro,size=1m", "size=64k"], ids=["read-only", "full"])
def test_the_daemon_keeps_measuring_without_a_writable_ledger(tmp_path: Path,
                                                              mount: str) -> None:
    port = free_port()
    state = tmp_path / "state"
    state.mkdir()
    config_path = write_config(tmp_path / "config.yml", _config(tmp_path, port))
    # the full case: a 64 KiB tmpfs filled up before the daemon starts
    fill = "" if mount.startswith("ro") else \
        f" && (dd if=/dev/zero of={state}/filler bs=4k 2>/dev/null || true)"
    script = (f"mount -t tmpfs -o {mount} tmpfs {state}{fill} && exec {sys.executable} -m "
              f"monitor run --config {config_path}")
    log = tmp_path / "daemon.log"
    base = f"http://127.0.0.1:{port}"
    with daemon(config_path, port=port, log_path=log,
                command=["unshare", "-m", "--propagation", "private", "sh", "-c", script]):
        wait_until(lambda: _metric(base, "homemon_ledger_write_errors_total") >= 1, 20,
                   what="a counted write error")
        wait_until(lambda: _metric(base, 'homemon_job_runs_total{job="latency",'
                                         'result="success"}') >= 2, 20,
                   what="latency runs going on")
        assert http_get(f"{base}/healthz")[0] == 200
        status = json.loads(http_get(f"{base}/api/status")[1])
        assert status["targets"]["lo"]["rtt_ms"] > 0
        assert http_get(f"{base}/report?format=json")[0] == 200  # an empty report, no error
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    failures = [line for line in lines if line["msg"].startswith("ledger: cannot write")]
    assert len(failures) == 1, failures  # one line while it lasts, not one per attempt
    assert not any(state.iterdir()), "the tmpfs was visible outside its namespace"
