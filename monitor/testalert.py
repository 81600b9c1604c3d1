"""Send a test notification through Alertmanager, so the user knows the phone path works
before an outage does. The alert takes the same route as the outage report (every phone
receiver that has its secrets, and the local ntfy server), resolves by itself after
`ends_after` seconds and is never re-sent as "resolved".
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import yaml

ALERTNAME = "TestNotification"


def test_alert(now: float, ends_after: float, host: str) -> dict[str, object]:
    started = datetime.fromtimestamp(now, UTC)
    return {
        "labels": {"alertname": ALERTNAME, "severity": "info",
                   "sent": started.strftime("%Y-%m-%dT%H:%M:%SZ")},  # each test is new
        "annotations": {"summary": f"Test notification from home-monitor on {host}: "
                                   "if you read this on your phone, alerts reach you"},
        "startsAt": started.isoformat(),
        "endsAt": (started + timedelta(seconds=ends_after)).isoformat(),
    }


def send(alertmanager_url: str, *, ends_after: float = 300, timeout: float = 10,
         now: float | None = None) -> dict[str, object]:
    """POST one test alert to Alertmanager's v2 API; raises OSError when it is unreachable."""
    alert = test_alert(time.time() if now is None else now, ends_after, socket.gethostname())
    request = urllib.request.Request(
        f"{alertmanager_url.rstrip('/')}/api/v2/alerts", data=json.dumps([alert]).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout):
        return alert


def receivers(alertmanager_url: str, timeout: float = 10) -> list[str]:
    """Names of the receivers that have at least one integration (from /api/v2/status)."""
    with urllib.request.urlopen(f"{alertmanager_url.rstrip('/')}/api/v2/status",
                                timeout=timeout) as response:
        status = json.load(response)
    config = yaml.safe_load(status["config"]["original"])
    return [r["name"] for r in config.get("receivers", [])
            if any(key.endswith("_configs") for key in r)]


def main(alertmanager_url: str) -> int:
    try:
        alert = send(alertmanager_url)
    except (OSError, urllib.error.URLError) as exc:
        print(f"test-notification: Alertmanager at {alertmanager_url} did not take the alert: "
              f"{getattr(exc, 'reason', exc)}")
        return 1
    try:
        on = receivers(alertmanager_url)
    except (OSError, ValueError, KeyError):
        on = []
    labels = alert["labels"]
    assert isinstance(labels, dict)
    print(f"sent {ALERTNAME} (sent={labels['sent']}) to {alertmanager_url}; "
          + (f"receivers that have an integration: {', '.join(on)}" if on else
             "no receiver has its secrets yet (see secrets/README.md): nothing will arrive"))
    return 0
