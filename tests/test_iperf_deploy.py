"""deploy/ec2: the IAM policy and the cloud-init user-data the user pastes into AWS."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "ec2"


def test_iam_policy_is_least_privilege() -> None:
    policy = json.loads((DEPLOY / "iam-policy.json").read_text())
    assert policy["Version"] == "2012-10-17"
    grants: dict[str, Any] = {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            grants[action] = statement["Resource"]
    assert set(grants) == {"ec2:StartInstances", "ec2:StopInstances", "ec2:DescribeInstances"}
    assert grants["ec2:DescribeInstances"] == "*"  # Describe cannot be scoped to a resource
    for action in ("ec2:StartInstances", "ec2:StopInstances"):
        assert grants[action].startswith("arn:aws:ec2:")
        assert ":instance/i-" in grants[action]
        assert "*" not in grants[action]


def user_data() -> dict[str, Any]:
    text = (DEPLOY / "user-data.yaml").read_text()
    assert text.startswith("#cloud-config\n"), "cloud-init only reads it with this first line"
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def test_user_data_is_cloud_config() -> None:
    data = user_data()
    assert "iperf3" in data["packages"]
    paths = {entry["path"] for entry in data["write_files"]}
    assert "/etc/systemd/system/home-monitor-iperf3.service" in paths
    assert "/etc/systemd/system/home-monitor-idle-shutdown.timer" in paths
    enabled = [" ".join(cmd) if isinstance(cmd, list) else cmd for cmd in data["runcmd"]]
    assert any("enable --now home-monitor-iperf3.service" in cmd for cmd in enabled)
    assert any("enable --now home-monitor-idle-shutdown.timer" in cmd for cmd in enabled)


def _scripts() -> list[tuple[str, str]]:
    found = []
    for entry in user_data()["write_files"]:
        content = entry["content"]
        if content.startswith("#!"):
            found.append((entry["path"], content))
    return found


@pytest.mark.parametrize(("path", "content"), _scripts(), ids=[p for p, _ in _scripts()])
def test_embedded_scripts_parse(path: str, content: str, tmp_path: Path) -> None:
    shell = content.splitlines()[0].removeprefix("#!").split()[0]
    assert shell in ("/bin/sh", "/bin/bash", "/usr/bin/env")
    script = tmp_path / "script"
    script.write_text(content)
    for checker in ("sh", "bash"):
        if shutil.which(checker):
            done = subprocess.run([checker, "-n", str(script)], capture_output=True, text=True)
            assert done.returncode == 0, f"{checker} -n {path}: {done.stderr}"


def test_idle_shutdown_script_counts_and_powers_off(tmp_path: Path) -> None:
    """Run the real script with stand-ins for ss/systemctl/logger on PATH: it must power off
    only after IDLE_MINUTES idle checks and reset on a connection."""
    (path, content), = [s for s in _scripts() if s[0].endswith("idle-shutdown")]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    for name, body in (("ss", 'cat "$SS_OUTPUT"'), ("systemctl", f'echo "$@" >> {calls}'),
                       ("logger", "true")):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    defaults = tmp_path / "defaults"
    defaults.write_text("IPERF_PORT=5201\nIDLE_MINUTES=3\n")
    count = tmp_path / "count"
    script = tmp_path / "idle"
    script.write_text(content.replace("/etc/default/home-monitor-iperf", str(defaults))
                      .replace("/run/home-monitor-idle-minutes", str(count)))
    ss_output = tmp_path / "ss"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SS_OUTPUT": str(ss_output)}

    def check(connected: bool) -> bool:
        ss_output.write_text("ESTAB 0 0 10.0.0.5:5201 81.2.69.1:40000\n" if connected else "")
        subprocess.run(["sh", str(script)], check=True, env=env)
        return calls.exists() and "poweroff" in calls.read_text()

    assert [check(False), check(False), check(True), check(False), check(False)] == [False] * 5
    assert check(False)
