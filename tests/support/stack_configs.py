"""Helpers for the stack tests: the repo's configs, made runnable by the binaries here.

The compose stack pins current images (Prometheus 3.x, Alertmanager 0.3x); the binaries this
machine can run are Debian's Prometheus 2.42 and Alertmanager 0.25. Alertmanager's config is
rendered by the shipped renderer (secrets inlined), which both versions run as is.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from monitor.alertmanager_config import render, write

REPO = Path(__file__).resolve().parents[2]
COMPOSE_SCHEMA = REPO.parent / "shared" / "schemas" / "compose-spec.json"
RULE_FILES = sorted((REPO / "prometheus" / "rules").glob("*.yml"))
DASHBOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))

# A value for every secret the Alertmanager template names: every receiver on.
DUMMY_SECRETS = {
    "ntfy_url": "http://127.0.0.1:9/dummy-ntfy", "ntfy_token": "tk_dummy",
    "home_ntfy_url": "http://127.0.0.1:9/dummy-home-ntfy", "home_ntfy_token": "tk_dummy_home",
    "pushover_user_key": "dummy-user-key", "pushover_token": "dummy-token",
    "telegram_bot_token": "123:dummy-bot-token", "telegram_chat_id": "123456789",
    "heartbeat_url": "http://127.0.0.1:9/dummy-heartbeat",
}


def load_yaml(relative: str) -> Any:
    return yaml.safe_load((REPO / relative).read_text(encoding="utf-8"))


def write_alertmanager_copy(directory: Path, secrets: dict[str, str] | None = None) -> Path:
    """alertmanager.yml as compose runs it: rendered by the shipped renderer from the template
    and `secrets` (name -> file content; None = every receiver on, with dummy values), with the
    templates copied alongside. Secrets are inlined, so Alertmanager 0.25 runs it too."""
    directory.mkdir(parents=True, exist_ok=True)
    templates = directory / "templates"
    templates.mkdir(exist_ok=True)
    for template in (REPO / "alertmanager" / "templates").glob("*.tmpl"):
        (templates / template.name).write_text(template.read_text(encoding="utf-8"))
    secret_dir = directory / "secrets"
    secret_dir.mkdir(exist_ok=True)
    for name, value in (DUMMY_SECRETS if secrets is None else secrets).items():
        (secret_dir / name).write_text(value, encoding="utf-8")
    config, _ = render(load_yaml("alertmanager/alertmanager.yml"), secret_dir, directory)
    path = directory / "alertmanager.yml"
    write(config, path)
    return path


# --- PromQL from rules and dashboards --------------------------------------------------------

GRAFANA_INTERVALS = {"$__rate_interval": "1m", "${__rate_interval}": "1m",
                     "$__interval": "1m", "${__interval}": "1m",
                     "$__range": "1h", "${__range}": "1h", "$__auto": "1m"}


def grafana_variable_values(dashboard: dict[str, Any]) -> dict[str, str]:
    """What each template variable of a dashboard stands for when the panel is drawn.

    "All" of a multi-value variable is its allValue (a regex), a textbox its default.
    """
    values = {}
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("includeAll"):
            values[var["name"]] = var.get("allValue") or ".*"
        else:
            current = var.get("current", {}).get("value")
            values[var["name"]] = str(current if current is not None else var.get("query"))
    return values


def substitute(expr: str, variables: dict[str, str]) -> str:
    for placeholder, value in GRAFANA_INTERVALS.items():
        expr = expr.replace(placeholder, value)
    # longest names first, so $sensor_id is not eaten by $sensor
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", variables[name]).replace("$" + name,
                                                                           variables[name])
    return expr


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def dashboard_queries(datasource_type: str = "prometheus") -> list[tuple[str, str]]:
    """(where, expression) for every query of that datasource type in every dashboard."""
    found = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        variables = grafana_variable_values(dashboard)
        for panel in panels(dashboard):
            for query in panel.get("targets", []):
                source = query.get("datasource") or panel.get("datasource") or {}
                if source.get("type") == datasource_type and query.get("expr"):
                    found.append((f"{path.name}: {panel['title']} [{query['refId']}]",
                                  substitute(query["expr"], variables)))
    return found


def rule_expressions() -> list[tuple[str, str]]:
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                found.append((f"{path.name}: {name}", rule["expr"]))
    return found


def alert_rules() -> dict[str, dict[str, Any]]:
    rules = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rules[rule["alert"]] = rule
    return rules


def fenced_blocks(markdown: str, marker: str) -> list[str]:
    """Code blocks that directly follow an HTML comment `<!-- marker -->`."""
    pattern = re.compile(r"<!--\s*" + re.escape(marker) + r"\s*-->\s*```[a-z]*\n(.*?)```",
                         re.DOTALL)
    return pattern.findall(markdown)


# --- a phone stand-in ------------------------------------------------------------------------

class WebhookSink:
    """Records every JSON body POSTed to it, as Alertmanager's webhook receiver sends them."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        received: list[tuple[float, dict[str, Any]]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with contextlib.suppress(ValueError):
                    received.append((time.time(), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/phone"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def notifications(self, alertname: str, status: str) -> list[tuple[float, dict[str, Any]]]:
        return [(when, body) for when, body in self.received
                if body.get("status") == status
                and body.get("commonLabels", {}).get("alertname") == alertname]


class TelegramStandIn:
    """Answers like api.telegram.org's sendMessage and records each request (path, form)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        requests: list[tuple[str, dict[str, list[str]]]] = []
        self.requests = requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                kind = self.headers.get("Content-Type", "")
                if kind.startswith("application/json"):
                    fields = {key: [str(value)] for key, value in json.loads(body).items()}
                else:
                    fields = urllib.parse.parse_qs(body.decode())
                requests.append((self.path, fields))
                reply = json.dumps({"ok": True, "result": {
                    "message_id": len(requests), "date": int(time.time()),
                    "chat": {"id": 1, "type": "private"}}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TelegramStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
