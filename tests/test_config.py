"""Bad configs exit 2 naming the file and the key path; `run` refuses with the same words."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import Config, ConfigError, load_file, parse

REPO = Path(__file__).resolve().parents[1]

# (id, file contents or None for "no file", words the message must contain)
BAD_CONFIGS: list[tuple[str, bytes | None, list[str]]] = [
    ("wrong-type", b"jobs:\n  latency:\n    count: five\n",
     ["jobs.latency.count", "expected a whole number", '"five"']),
    ("unknown-key", b"jobs:\n  latency:\n    intervall: 15s\n",
     ["jobs.latency.intervall", "unknown key"]),
    ("unknown-top-key", b"listne: 0.0.0.0:1\n", ["listne", "unknown key"]),
    ("bad-duration", b"jobs:\n  latency:\n    interval: fast\n",
     ['jobs.latency.interval: expected a duration like "30s", got "fast"']),
    ("bad-listen", b"listen: localhost\n", ["listen", "host:port"]),
    ("bad-listen-port", b"listen: 0.0.0.0:99999\n", ["listen", "port from 1 to 65535"]),
    ("negative-interval", b"jobs:\n  bandwidth:\n    interval: -5m\n",
     ["jobs.bandwidth.interval", "expected a duration"]),
    ("zero-interval", b"jobs:\n  latency:\n    interval: 0s\n",
     ["jobs.latency.interval", "greater than zero"]),
    ("empty-file", b"", ["(top level)", "empty"]),
    ("list-at-top", b"- listen: 0.0.0.0:1\n- jobs: {}\n", ["(top level)", "mapping", "list"]),
    ("binary-garbage", bytes(range(256)) * 4, ["(file)", "not UTF-8"]),
    ("missing-file", None, ["(file)", "not found"]),
    ("unset-env-var", b"state_dir: ${HOMEMON_TEST_SURELY_UNSET}/state\n",
     ["state_dir", "environment variable HOMEMON_TEST_SURELY_UNSET is not set"]),
    ("duplicate-key", b"listen: 0.0.0.0:1\njobs: {}\njobs: {}\n",
     ["line 3", "duplicate key 'jobs'"]),
    ("bad-choice", b"log:\n  format: xml\n", ["log.format", "one of", '"json"']),
    ("bool-as-string", b"jobs:\n  aqi:\n    enabled: maybe\n",
     ["jobs.aqi.enabled", "true or false"]),
    ("aqi-without-sources", b"jobs:\n  aqi:\n    enabled: true\n", ["jobs.aqi.sensors", "needs"]),
    ("target-list-item", b"jobs:\n  latency:\n    targets: [1.1.1.1, {hots: x}]\n",
     ["jobs.latency.targets[1].hots", "unknown key"]),
    ("yaml-syntax", b"jobs:\n  latency: {interval: 15s\n", ["invalid YAML"]),
    ("unreadable-directory", b"<directory>", ["(file)", "cannot read"]),
]


def _materialise(tmp_path: Path, contents: bytes | None) -> Path:
    path = tmp_path / "home-monitor.yml"
    if contents == b"<directory>":
        path.mkdir()
    elif contents is not None:
        path.write_bytes(contents)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HOMEMON_CONFIG"}
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True,
                          text=True, timeout=30, env=env, cwd=REPO)


@pytest.mark.parametrize(("contents", "words"), [(c, w) for _, c, w in BAD_CONFIGS],
                         ids=[case_id for case_id, _, _ in BAD_CONFIGS])
def test_bad_config_exits_2_naming_file_and_key(tmp_path: Path, contents: bytes | None,
                                                words: list[str]) -> None:
    path = _materialise(tmp_path, contents)
    checked = _cli("check-config", "--config", str(path))
    assert checked.returncode == 2, checked
    assert checked.stderr.startswith(f"{path}: "), checked.stderr
    for word in words:
        assert word in checked.stderr, (word, checked.stderr)
    refused = _cli("run", "--config", str(path))
    assert refused.returncode == 2
    assert refused.stderr == checked.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root to run the check as another user")
def test_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "home-monitor.yml"
    path.write_text("listen: 0.0.0.0:1\n")
    path.chmod(0)
    tmp_path.chmod(0o755)
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-c", "from monitor.config import load_file; import sys; "
         f"load_file({str(path)!r})"],
        capture_output=True, text=True, timeout=30, cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": os.environ["PATH"]})
    assert "ConfigError" in result.stderr
    assert f"{path}: (file): cannot read: Permission denied" in result.stderr


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("listen: nope\njobs:\n  latency: {interval: fast, count: 0}\n  foo: {}\n")
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    lines = caught.value.problems
    assert any("listen:" in line for line in lines)
    assert any("jobs.latency.interval:" in line for line in lines)
    assert any("jobs.latency.count: must be at least 1" in line for line in lines)
    assert any("jobs.foo: unknown key" in line for line in lines)


def test_good_config_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("HOMEMON_TEST_DIR", str(tmp_path))
    config = parse({
        "listen": "[::]:9999",
        "state_dir": "${HOMEMON_TEST_DIR}/state",
        "log": {"level": "debug", "format": "text"},
        "jobs": {
            "latency": {"interval": "30s", "targets": [
                "1.1.1.1", {"host": "192.168.1.1", "name": "router"},
                {"host": "example.net", "name": "${file:" + str(secret) + "}"}]},
            "bandwidth": {"backend": "http", "http": {"download_url": "http://x/", "max_bytes":
                                                       "100MB"}, "monthly_data_budget": "50GB"},
            "aqi": {"enabled": True, "sensors": [1, 2], "area": {
                "latitude": 51.5, "longitude": -0.12, "radius_km": 3}},
        },
    }, "inline")
    assert config.listen_address == ("::", 9999)
    assert config.state_dir == f"{tmp_path}/state"
    latency = config.jobs.latency
    assert latency.interval == 30
    assert [t.label for t in latency.targets] == ["1.1.1.1", "router", "s3cret"]
    assert [t.counts_for_internet for t in latency.targets] == [True, False, True]
    assert config.jobs.bandwidth.http.max_bytes == 100_000_000
    assert config.jobs.bandwidth.monthly_data_budget == 50_000_000_000
    assert config.jobs.aqi.area is not None
    assert config.jobs.aqi.area.radius_km == 3


def test_defaults_match_the_documented_ones() -> None:
    config = Config()
    assert config.listen_address == ("127.0.0.1", 10132)  # loopback unless opened
    assert (config.jobs.latency.enabled, config.jobs.latency.interval) == (True, 15)
    assert (config.jobs.bandwidth.enabled, config.jobs.bandwidth.interval) == (True, 3600)
    assert not config.jobs.iperf.enabled
    assert not config.jobs.aqi.enabled


def test_config_source_order(tmp_path: Path) -> None:
    explicit = tmp_path / "a.yml"
    explicit.write_text("listen: 127.0.0.1:1111\n")
    from_env = tmp_path / "b.yml"
    from_env.write_text("listen: 127.0.0.1:2222\n")
    cwd_file = tmp_path / "home-monitor.yml"
    cwd_file.write_text("listen: 127.0.0.1:3333\n")
    base = {k: v for k, v in os.environ.items() if k != "HOMEMON_CONFIG"}
    base["PYTHONPATH"] = str(REPO)

    def check(*args: str, env: dict[str, str], cwd: Path) -> str:
        return subprocess.run([sys.executable, "-m", "monitor", "check-config", *args],
                              capture_output=True, text=True, env=env, cwd=cwd,
                              timeout=30).stdout

    with_env = base | {"HOMEMON_CONFIG": str(from_env)}
    assert check("--config", str(explicit), env=with_env, cwd=tmp_path).startswith(str(explicit))
    assert check(env=with_env, cwd=tmp_path).startswith(str(from_env))
    assert check(env=base, cwd=tmp_path).startswith("home-monitor.yml")
    assert check(env=base, cwd=tmp_path / "..").startswith("(defaults)")
