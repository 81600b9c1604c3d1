"""Render Alertmanager's config from the repo's template and the secret files that exist.

The template (alertmanager/alertmanager.yml) names each secret by a `*_file` field whose value
is a file name in the secrets directory (`url_file: ntfy_url`). Rendering inlines each secret's
value, stripped of surrounding whitespace (an editor's trailing newline is not part of a
token), under the field's inline name (`url`). A notifier whose secret is missing, empty or
unusable (a chat id that is not a number) is dropped, so a receiver with none left is a null
receiver: its alerts are still visible in Alertmanager and Grafana, nothing is sent. Rendering
never fails over a secret's content: Alertmanager waits for it and must start regardless.
A missing secret inside `http_config` (an optional access token) drops only that block.
Inline values also work on Alertmanager releases older than the `*_file` fields (0.26).
The output holds secrets: it is written 0600 unless asked, and can be handed to the user that
reads it (the compose file gives it to Alertmanager's, and nobody else can read it).
"""

from __future__ import annotations

import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

# template field -> Alertmanager's inline field
INLINE = {
    "url_file": "url",
    "user_key_file": "user_key",
    "token_file": "token",
    "bot_token_file": "bot_token",
    "credentials_file": "credentials",
    "chat_id_file": "chat_id",  # not a secret, but one file per receiver keeps set-up simple
}
OPTIONAL_BLOCKS = ("http_config",)
SECRET_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class RenderError(ValueError):
    pass


class _Missing(Exception):
    def __init__(self, secret: str) -> None:
        super().__init__(secret)
        self.secret = secret


class TemplateError(ValueError):
    pass


def read_secret(secrets: Path, name: str) -> str | None:
    """The stripped value, or None when the file is missing or blank."""
    if not SECRET_NAME.fullmatch(name):
        raise TemplateError(f"secret name {name!r}: only a file name in the secrets directory")
    try:
        value = (secrets / name).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return value or None


def _inline(field: str, value: str) -> Any:
    if field == "chat_id":
        try:
            return int(value)
        except ValueError as exc:
            raise RenderError(f"chat_id must be a number, not {value!r}") from exc
    return value


def _resolve(node: Any, secrets: Path, renames: Mapping[str, str]) -> Any:
    """A copy of `node` with secrets inlined; raises _Missing for a required one."""
    if isinstance(node, list):
        return [_resolve(item, secrets, renames) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in INLINE:
            name = renames.get(str(value), str(value))
            secret = read_secret(secrets, name)
            if secret is None:
                raise _Missing(name)
            out[INLINE[key]] = _inline(INLINE[key], secret)
        elif key in OPTIONAL_BLOCKS:
            try:
                out[key] = _resolve(value, secrets, renames)
            except _Missing:
                continue
        else:
            out[key] = _resolve(value, secrets, renames)
    return out


def render(template: dict[str, Any], secrets: Path, template_dir: Path | None = None,
           problems: list[str] | None = None, renames: Mapping[str, str] | None = None,
           ) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(config, {receiver: [integrations on]}); `template_dir` makes template globs absolute.
    Why an integration with all its files is still off goes to `problems`. `renames` reads a
    template's secret from another file (the central stack's own heartbeat URL)."""
    config = {key: value for key, value in template.items() if key != "receivers"}
    status: dict[str, list[str]] = {}
    receivers = []
    for receiver in template.get("receivers", []):
        name = receiver["name"]
        rendered: dict[str, Any] = {"name": name}
        status[name] = []
        for key, value in receiver.items():
            if key == "name":
                continue
            if not key.endswith("_configs"):
                rendered[key] = value
                continue
            kept = []
            for integration in value:
                try:
                    kept.append(_resolve(integration, secrets, renames or {}))
                except _Missing:
                    continue
                except RenderError as exc:
                    if problems is not None:
                        problems.append(f"receiver {name}, {key}: off: {exc}")
            if kept:
                rendered[key] = kept
                status[name] += [key.removesuffix("_configs")] * len(kept)
        receivers.append(rendered)
    config["receivers"] = receivers
    if template_dir is not None:
        config["templates"] = [str(template_dir / glob) if not os.path.isabs(glob) else glob
                               for glob in config.get("templates", [])]
    return config, status


def write(config: dict[str, Any], out: Path, mode: int = 0o600,
          owner: tuple[int, int] | None = None) -> None:
    """Atomically, so a running Alertmanager never reloads half a file. `owner` (uid, gid):
    the file is handed over before it appears under its name, never readable by anyone else."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("# Rendered by `home-monitor alertmanager-config`: edit "
                         "alertmanager/alertmanager.yml and secrets/, not this file.\n")
            yaml.safe_dump(config, handle, sort_keys=False, allow_unicode=True)
        os.chmod(tmp, mode)
        if owner is not None:  # after chmod: with CAP_CHOWN only, root may not chmod it then
            os.chown(tmp, *owner)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def reload(base_url: str, timeout: float = 5.0) -> str:
    """Ask a running Alertmanager to re-read its config; says what happened, never raises."""
    request = urllib.request.Request(f"{base_url.rstrip('/')}/-/reload", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return f"reloaded ({response.status})"
    except urllib.error.HTTPError as exc:
        return f"reload refused ({exc.code}): {exc.read().decode(errors='replace').strip()}"
    except OSError as exc:
        return f"not reloaded ({getattr(exc, 'reason', exc)}): it reads the file when it starts"


def main(template_path: Path, secrets: Path, out: Path, mode: int = 0o600,
         reload_url: str | None = None, renames: Mapping[str, str] | None = None,
         owner: tuple[int, int] | None = None) -> int:
    try:
        template = yaml.safe_load(template_path.read_text(encoding="utf-8"))
        problems: list[str] = []
        config, status = render(template, secrets, template_path.parent.resolve(), problems,
                                renames)
    except (OSError, yaml.YAMLError, TemplateError) as exc:
        print(f"alertmanager-config: {exc}")
        return 2
    write(config, out, mode, owner)
    for problem in problems:
        print(problem)
    for name, integrations in status.items():
        print(f"receiver {name}: " + (", ".join(integrations) if integrations
                                       else "off (no secret files for it)"))
    print(f"wrote {out}")
    if reload_url:
        print(f"alertmanager at {reload_url}: {reload(reload_url)}")
    return 0
