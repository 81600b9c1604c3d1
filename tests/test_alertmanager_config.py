"""The Alertmanager config renderer and the test notification, via the real CLI and a real
Alertmanager: phone set-up is "write the secret file, re-render"; the test alert arrives."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest
import yaml

from monitor.alertmanager_config import TemplateError, read_secret, render
from tests.support.procs import alertmanager, wait_until
from tests.support.stack_configs import REPO, WebhookSink, load_yaml, write_alertmanager_copy

TEMPLATE = REPO / "alertmanager" / "alertmanager.yml"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True,
                          text=True, timeout=60, cwd=REPO)


def receivers(config: dict) -> dict[str, dict]:
    return {r["name"]: r for r in config["receivers"]}


def test_without_secrets_every_receiver_is_off_but_the_routing_stays(tmp_path: Path) -> None:
    config, status = render(load_yaml("alertmanager/alertmanager.yml"), tmp_path / "none")
    assert all(list(r) == ["name"] for r in config["receivers"])
    assert set(status) == {"phone", "phone-once", "home", "heartbeat"}
    assert not any(status.values())
    assert config["route"] == load_yaml("alertmanager/alertmanager.yml")["route"]


def test_secrets_are_inlined_stripped_and_empty_files_count_as_missing(tmp_path: Path) -> None:
    (tmp_path / "ntfy_url").write_text("  https://ntfy.example/topic?template=alertmanager\n\n")
    (tmp_path / "pushover_user_key").write_text("user\n")
    (tmp_path / "pushover_token").write_text("\n")  # blank: Pushover stays off
    (tmp_path / "telegram_bot_token").write_text("1:abc")
    (tmp_path / "telegram_chat_id").write_text("-100123\n")
    config, status = render(load_yaml("alertmanager/alertmanager.yml"), tmp_path)
    phone = receivers(config)["phone"]
    assert phone["webhook_configs"] == [{"url": "https://ntfy.example/topic?template=alertmanager",
                                         "send_resolved": True}]  # no token: no http_config
    assert "pushover_configs" not in phone
    assert phone["telegram_configs"][0]["bot_token"] == "1:abc"
    assert phone["telegram_configs"][0]["chat_id"] == -100123
    assert status["phone"] == ["webhook", "telegram"]
    assert receivers(config)["phone-once"]["webhook_configs"][0]["send_resolved"] is False
    assert list(receivers(config)["home"]) == ["name"]


def test_an_optional_token_adds_the_authorization(tmp_path: Path) -> None:
    (tmp_path / "ntfy_url").write_text("https://ntfy.example/t")
    (tmp_path / "ntfy_token").write_text("tk_secret\n")
    config, _ = render(load_yaml("alertmanager/alertmanager.yml"), tmp_path)
    ntfy = receivers(config)["phone"]["webhook_configs"][0]
    assert ntfy["http_config"] == {"authorization": {"credentials": "tk_secret"}}


def test_the_home_ntfy_server_gets_its_token_when_the_file_exists(tmp_path: Path) -> None:
    """The ntfy profile denies anonymous access: Alertmanager publishes with a token."""
    (tmp_path / "home_ntfy_url").write_text("http://ntfy/alerts?template=alertmanager\n")
    config, _ = render(load_yaml("alertmanager/alertmanager.yml"), tmp_path)
    assert "http_config" not in receivers(config)["home"]["webhook_configs"][0]
    (tmp_path / "home_ntfy_token").write_text("tk_home\n")
    config, _ = render(load_yaml("alertmanager/alertmanager.yml"), tmp_path)
    for name in ("home", "phone", "phone-once"):
        home = receivers(config)[name]["webhook_configs"][-1]
        assert home["url"] == "http://ntfy/alerts?template=alertmanager"
        assert home["http_config"] == {"authorization": {"credentials": "tk_home"}}, name


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a file to another user needs root")
def test_the_cli_hands_the_file_to_alertmanagers_user_and_no_one_else_reads_it(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """As compose runs it: --mode=600 --owner=65534:65534 (nobody, Alertmanager's user)."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "heartbeat_url").write_text("https://hc.example/ping/very-secret-uuid\n")
    # pytest's tmp dirs are 700: a directory any user can enter, as the volume is
    volume = Path(tempfile.mkdtemp(prefix="hm-rendered-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(volume, ignore_errors=True))
    volume.chmod(0o755)
    out = volume / "alertmanager.yml"
    # with only the capabilities compose gives it (root without CAP_FOWNER cannot chmod a file
    # it has handed over)
    done = subprocess.run(
        ["setpriv", "--bounding-set=-all,+chown,+dac_read_search", sys.executable, "-m",
         "monitor", "alertmanager-config", f"--template={TEMPLATE}", f"--secrets={secrets}",
         f"--out={out}", "--mode=600", "--owner=65534:65534"],
        capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    info = out.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o600, 65534, 65534)
    assert not [p for p in out.parent.iterdir() if p.name != out.name], "no temp file left"
    as_other = subprocess.run(["setpriv", "--reuid=10132", "--regid=10132", "--clear-groups",
                               "cat", str(out)], capture_output=True, text=True, timeout=30)
    assert as_other.returncode != 0
    assert "Permission denied" in as_other.stderr
    as_owner = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               "cat", str(out)], capture_output=True, text=True, timeout=30)
    assert as_owner.returncode == 0, as_owner.stderr
    assert "very-secret-uuid" in as_owner.stdout
    refused = cli("alertmanager-config", f"--out={out}", "--owner=nobody")
    assert refused.returncode == 2
    assert "UID:GID" in refused.stderr


def test_an_unusable_value_turns_its_app_off_and_says_why(tmp_path: Path) -> None:
    """Alertmanager waits for the renderer: a typo in a secret must not keep it down."""
    (tmp_path / "telegram_bot_token").write_text("1:abc")
    (tmp_path / "telegram_chat_id").write_text("@mychannel")
    (tmp_path / "ntfy_url").write_text("https://ntfy.example/t")
    problems: list[str] = []
    config, status = render(load_yaml("alertmanager/alertmanager.yml"), tmp_path,
                            problems=problems)
    assert "telegram_configs" not in receivers(config)["phone"]
    assert status["phone"] == ["webhook"]
    assert any("telegram_configs: off: chat_id must be a number" in p for p in problems)
    with pytest.raises(TemplateError, match="file name"):
        read_secret(tmp_path, "../etc/passwd")


def test_the_cli_writes_a_private_file_and_never_prints_a_secret(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "heartbeat_url").write_text("https://hc.example/ping/very-secret-uuid\n")
    out = tmp_path / "rendered" / "alertmanager.yml"
    done = cli("alertmanager-config", f"--template={TEMPLATE}", f"--secrets={secrets}",
               f"--out={out}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "receiver heartbeat: webhook" in done.stdout
    assert "receiver phone: off" in done.stdout
    assert "very-secret-uuid" not in done.stdout + done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    config = yaml.safe_load(out.read_text())
    assert config["templates"] == [str(TEMPLATE.parent / "templates" / "*.tmpl")]
    assert receivers(config)["heartbeat"]["webhook_configs"][0]["url"].endswith("secret-uuid")
    checked = subprocess.run(["amtool", "check-config", str(out)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_central_stack_reads_its_own_heartbeat_file(tmp_path: Path) -> None:
    """Central and probe share secrets/ for the phone, but a central heartbeat on the probe's
    URL would keep the probe's dead-man's switch quiet while the probe is dead."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "heartbeat_url").write_text("https://hc.example/ping/probe\n")
    out = tmp_path / "alertmanager.yml"
    args = ("alertmanager-config", f"--template={TEMPLATE}", f"--secrets={secrets}",
            f"--out={out}", "--secret-file=heartbeat_url=central_heartbeat_url")
    done = cli(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "receiver heartbeat: off" in done.stdout
    (secrets / "central_heartbeat_url").write_text("https://hc.example/ping/central\n")
    assert cli(*args).returncode == 0
    url = receivers(yaml.safe_load(out.read_text()))["heartbeat"]["webhook_configs"][0]["url"]
    assert url == "https://hc.example/ping/central"
    bad = cli(*args[:-1], "--secret-file=heartbeat_url")
    assert bad.returncode == 2
    assert "NAME=FILE" in bad.stderr


def _running_config(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/api/v2/status", timeout=5) as response:
        return yaml.safe_load(json.load(response)["config"]["original"])


@pytest.mark.slow
def test_phone_set_up_is_one_file_then_a_rerender_and_the_test_notification_arrives(
        tmp_path: Path) -> None:
    """What `docker compose up -d` does after a secret file is added: the one-shot renderer
    runs again and reloads the running Alertmanager; then `test-notification` sends through
    it."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    start = write_alertmanager_copy(tmp_path / "alertmanager", {})  # fresh clone: all off
    with WebhookSink() as phone, alertmanager(tmp_path, start.read_text()) as url:
        assert list(receivers(_running_config(url))["phone"]) == ["name"]
        (secrets / "ntfy_url").write_text(phone.url + "\n")
        rendered = tmp_path / "alertmanager" / "alertmanager.yml"  # the file it runs
        done = cli("alertmanager-config", f"--template={TEMPLATE}", f"--secrets={secrets}",
                   f"--out={rendered}", f"--reload={url}")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "reloaded" in done.stdout
        assert receivers(_running_config(url))["phone"]["webhook_configs"][0]["url"] == phone.url

        sent = cli("test-notification", f"--alertmanager={url}")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "phone" in sent.stdout
        wait_until(lambda: phone.notifications("TestNotification", "firing"), 30,
                   what="the test notification at the phone")
        _, body = phone.notifications("TestNotification", "firing")[0]
        assert "if you read this on your phone" in body["alerts"][0]["annotations"]["summary"]


def test_test_notification_says_when_alertmanager_is_not_there() -> None:
    done = cli("test-notification", "--alertmanager=http://127.0.0.1:9")
    assert done.returncode == 1
    assert "did not take the alert" in done.stdout
