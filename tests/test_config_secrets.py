"""Config errors never print a value that came from `${file:...}` or `${ENV}`, and a hostile
file (alias bomb, 50 MB) fails fast in bounded memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from monitor.config import ConfigError, load_file, parse
from tests.support.procs import REPO

CANARY = "CANARY-7f3a9c-do-not-print"
# a multi-line secret file, as the 27-line leak through `listen`
SECRET_FILE_TEXT = "\n".join(f"{CANARY} line {n}" for n in range(27))
ENV_NAME = "HOMEMON_TEST_CANARY"

# key path -> where to put the reference in the config, one per field type the schema has
PLACES: list[tuple[str, str]] = [
    ("str", "listen: {ref}"),
    ("str-embedded", 'listen: "host-{bare}:1"'),
    ("str-path", "web_config_file: {ref}"),
    ("literal", "log: {{level: {ref}}}"),
    ("literal-bool", "jobs: {{latency: {{privileged: {ref}}}}}"),
    ("duration", "jobs: {{latency: {{interval: {ref}}}}}"),
    ("duration-bound", "jobs: {{latency: {{packet_interval: {ref}}}}}"),
    ("int", "jobs: {{latency: {{count: {ref}}}}}"),
    ("bool", "jobs: {{latency: {{enabled: {ref}}}}}"),
    ("float-optional", "jobs: {{bandwidth: {{plan: {{download_mbps: {ref}}}}}}}"),
    ("int-optional", "jobs: {{bandwidth: {{speedtest: {{server_id: {ref}}}}}}}"),
    ("bytesize", "jobs: {{bandwidth: {{http: {{max_bytes: {ref}}}}}}}"),
    ("list", "jobs: {{latency: {{targets: {ref}}}}}"),
    ("list-of-literal", "jobs: {{iperf: {{directions: [{ref}]}}}}"),
    ("mapping", "jobs: {{latency: {ref}}}"),
    ("duplicate-label", "jobs: {{latency: {{targets: [{ref}, {ref}]}}}}"),
    ("url", "jobs: {{aqi: {{api_url: {ref}}}}}"),
    ("ec2-instance-id", "jobs: {{iperf: {{ec2: {{instance_id: {ref}}}}}}}"),
    ("local-sensor-url", "jobs: {{aqi: {{local: [{{name: x, url: {ref}}}]}}}}"),
]


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text(SECRET_FILE_TEXT)
    return path


def _refs(secret_file: Path) -> dict[str, str]:
    return {"file": f'"${{file:{secret_file}}}"', "env": f'"${{{ENV_NAME}}}"'}


@pytest.mark.parametrize("kind", ["file", "env"])
@pytest.mark.parametrize(("place", "template"), PLACES, ids=[p for p, _ in PLACES])
def test_a_referenced_value_is_never_in_an_error(tmp_path: Path, secret_file: Path, kind: str,
                                                 place: str, template: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_NAME, SECRET_FILE_TEXT)
    path = tmp_path / "c.yml"
    ref = _refs(secret_file)[kind]
    path.write_text(template.format(ref=ref, bare=ref.strip('"')) + "\n")
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    text = "\n".join(caught.value.problems)
    assert CANARY not in text
    # the key and the source are named
    source = str(secret_file) if kind == "file" else ENV_NAME
    assert source in text, text


def test_the_cli_prints_no_secret_for_all_places_at_once(tmp_path: Path,
                                                         secret_file: Path) -> None:
    env = os.environ | {ENV_NAME: SECRET_FILE_TEXT}
    for kind, ref in _refs(secret_file).items():
        path = tmp_path / f"{kind}.yml"
        # merge every place into one document (later keys nest under the same jobs mapping)
        merged: dict = {}
        for place, template in PLACES:
            if place in ("duplicate-label", "str-embedded"):  # same keys as others
                continue
            _merge(merged, yaml.safe_load(template.format(ref=ref, bare=ref)))
        path.write_text(yaml.safe_dump(merged))
        result = subprocess.run([sys.executable, "-m", "monitor", "check-config", "--config",
                                 str(path)], capture_output=True, text=True, env=env,
                                cwd=REPO, timeout=60)
        assert result.returncode == 2, result
        assert CANARY not in result.stdout + result.stderr
        assert result.stderr.count("\n") >= 10  # one line per problem, each naming its key


def _merge(into: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def test_a_long_value_is_echoed_clipped(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(f'listen: "{"x" * 900_000}"\njobs: {{aqi: {{api_url: "{"y" * 100_000}"}}}}\n')
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    assert len(caught.value.problems) == 2
    assert all(len(problem) < 400 for problem in caught.value.problems), caught.value.problems


def test_a_huge_referenced_file_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    with pytest.raises(ConfigError) as caught:
        parse({"state_dir": f"${{file:{big}}}"}, "test.yml")
    assert "larger than 64 KiB" in caught.value.problems[0]


# check-config in a child that reports its own peak RSS at exit: VmHWM of its own memory map
# (ru_maxrss of a child also counts the parent's memory it was forked from)
_MEASURED = """
import atexit, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print(int(line.split()[1]) / 1024)
atexit.register(peak)
from monitor.cli import main
sys.exit(main(["check-config", "--config", sys.argv[1]]))
"""


def _run_measured(config: Path) -> tuple[int, float, float, str]:
    """check-config as a child process: (exit code, seconds, peak RSS in MB, stderr)."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", _MEASURED, str(config)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    return result.returncode, took, float(result.stdout.strip()), result.stderr


BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
jobs: {latency: {targets: *i}}
"""


@pytest.mark.parametrize("case", ["alias-bomb", "50MB-file", "50MB-value"])
def test_a_hostile_file_exits_2_fast_in_bounded_memory(tmp_path: Path, case: str) -> None:
    path = tmp_path / "c.yml"
    if case == "alias-bomb":
        path.write_text(BOMB)
    elif case == "50MB-file":
        with open(path, "w") as handle:
            handle.write("listen: 127.0.0.1:1\n")
            for _ in range(50):
                handle.write("# padding\n" * 100_000)
    else:
        with open(path, "w") as handle:
            handle.write('listen: "')
            for _ in range(50):
                handle.write("x" * 1_000_000)
            handle.write('"\n')
    code, took, peak_mb, stderr = _run_measured(path)
    print(f"{case}: exit {code} in {took:.2f} s, peak RSS {peak_mb:.1f} MB")
    assert code == 2
    assert str(path) in stderr
    assert len(stderr) < 1000
    assert peak_mb < 100
    assert took < 2.0 + _startup_slack()


def _startup_slack() -> float:
    """The 2 s target is for the check; on a loaded machine the interpreter's own start can
    take longer, so measure it and allow for it (the figure is printed either way)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import monitor.config"], cwd=REPO, check=True,
                   timeout=60)
    return max(0.0, time.monotonic() - started - 0.5)


def test_aliases_within_reason_still_work(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("x-targets: &targets [1.1.1.1, 9.9.9.9]\n" if False else
                    "jobs:\n  latency: {targets: &t [1.1.1.1, 9.9.9.9]}\n"
                    "  bandwidth: {enabled: false}\n")
    assert [t.host for t in load_file(path).jobs.latency.targets] == ["1.1.1.1", "9.9.9.9"]


def test_the_duplicate_target_check_is_linear() -> None:
    targets = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(40_000)]
    targets.append(targets[123])
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        parse({"jobs": {"latency": {"targets": targets}}}, "test.yml")
    took = time.monotonic() - started
    print(f"40 001 targets with one duplicate checked in {took:.2f} s (was 24 s)")
    assert caught.value.problems == [
        "test.yml: jobs.latency.targets: two targets share the label '10.0.0.123'; "
        "give one a name"]
    assert took < 20  # quadratic took 24 s; linear is well under a second unloaded
