"""`web_config_file`: TLS and basic auth in the Prometheus exporter-toolkit's web-config format.

The same keys as node_exporter's, Prometheus' and Alertmanager's `--web.config.file`
(prometheus/exporter-toolkit, docs/web-configuration.md), so one file and one habit serve them
all. Supported: `tls_server_config` (cert_file, key_file, client_auth_type, client_ca_file,
min_version, max_version), `http_server_config` (headers; `http2` is accepted and ignored: this
server speaks HTTP/1.x) and `basic_auth_users` (bcrypt hashes). Any other key is an error
rather than a setting silently ignored. The file is read at start-up (restart to apply).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import ssl
import threading
from dataclasses import dataclass, field
from typing import Literal

import yaml

from monitor.configschema import ConfigError, Problems, convert_dataclass
from monitor.yamlsafe import load_yaml, read_limited

TlsVersion = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
_TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                 "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# exporter-toolkit's names (Go's tls.ClientAuthType) for the three policies OpenSSL has
_CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
                "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
# the headers exporter-toolkit lets a user set, with the values allowed (None: any)
_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None, "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"), "X-XSS-Protection": None,
    "Content-Security-Policy": None}
_BCRYPT_HASH = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")
AUTH_CACHE_SIZE = 256
MAX_WEB_CONFIG_BYTES = 64 * 1024


@dataclass
class TlsServerConfig:
    cert_file: str
    key_file: str
    client_auth_type: Literal["NoClientCert", "VerifyClientCertIfGiven",
                              "RequireAndVerifyClientCert"] = "NoClientCert"
    client_ca_file: str | None = None
    min_version: TlsVersion = "TLS12"
    max_version: TlsVersion = "TLS13"

    def validate(self) -> list[tuple[str, str]]:
        if self.client_auth_type != "NoClientCert" and not self.client_ca_file:
            return [("client_ca_file", f"needed with client_auth_type {self.client_auth_type}")]
        if _TLS_VERSIONS[self.min_version] > _TLS_VERSIONS[self.max_version]:
            return [("min_version", "is above max_version")]
        try:
            ssl_context(self)
        except (OSError, ssl.SSLError) as exc:
            why = exc.strerror or getattr(exc, "reason", None) or type(exc).__name__
            return [("", f"cannot load the certificate, key or CA file: {why}")]
        return []


@dataclass
class HttpServerConfig:
    http2: bool = True  # accepted so a file shared with exporters loads; ignored here
    headers: dict[str, str] = field(default_factory=dict)

    def validate(self) -> list[tuple[str, str]]:
        problems = []
        for name, value in self.headers.items():
            if name not in _HEADERS:
                problems.append((f"headers.{name[:60]}", "this header cannot be set (allowed: "
                                 + ", ".join(_HEADERS) + ")"))
                continue
            allowed = _HEADERS[name]
            if allowed is not None and value not in allowed:
                problems.append((f"headers.{name}", "expected one of " + ", ".join(allowed)))
        return problems


@dataclass
class WebConfig:
    tls_server_config: TlsServerConfig | None = None
    http_server_config: HttpServerConfig = field(default_factory=HttpServerConfig)
    basic_auth_users: dict[str, str] = field(default_factory=dict)

    def validate(self) -> list[tuple[str, str]]:
        # the hash itself is never echoed: it is as good as the password to an offline attack
        return [(f"basic_auth_users.{user[:60]}", "expected a bcrypt hash ($2a$, $2b$ or $2y$, "
                 'e.g. from `htpasswd -nBC 10 "" | tr -d ":\\n"`); the value is not shown')
                for user, hashed in self.basic_auth_users.items()
                if hashed is None or not _BCRYPT_HASH.fullmatch(hashed)]


def ssl_context(tls: TlsServerConfig) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[tls.min_version]
    context.maximum_version = _TLS_VERSIONS[tls.max_version]
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_ca_file:
        context.load_verify_locations(tls.client_ca_file)
    context.verify_mode = _CLIENT_AUTH[tls.client_auth_type]
    return context


def _parse(path: str) -> tuple[WebConfig | None, list[str]]:
    try:
        data = load_yaml(read_limited(path, path, MAX_WEB_CONFIG_BYTES).decode("utf-8"), path)
    except ConfigError as exc:
        return None, [problem.removeprefix(f"{path}: ") for problem in exc.problems]
    except UnicodeDecodeError:
        return None, ["(file): not UTF-8 text; expected a YAML file"]
    except (yaml.YAMLError, RecursionError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        return None, [f"{where}: invalid YAML ({type(exc).__name__})"]
    problems = Problems()
    if data is None:
        data = {}
    web: WebConfig | None = convert_dataclass(WebConfig, data, "", problems)
    return web, problems.redacted()


def check_web_config(path: str) -> list[str]:
    """The file's problems as 'file: key.path: message' (empty when it is good)."""
    _, problems = _parse(path)
    return [f"{path}: {problem}" for problem in problems]


def load_web_config(path: str) -> WebConfig:
    web, problems = _parse(path)
    if problems or web is None:
        raise ConfigError([f"{path}: {problem}" for problem in problems])
    return web


class BasicAuth:
    """Checks `Authorization: Basic ...` against bcrypt hashes. A verdict is cached (keyed by
    a SHA-256 of user, hash and password, never the password itself) because bcrypt costs
    ~60 ms a check at cost 10, and Prometheus sends the same credentials every scrape. One
    bcrypt at a time, and an unknown user costs as much as a known one (no enumeration)."""

    def __init__(self, users: dict[str, str]) -> None:
        import bcrypt  # noqa: PLC0415 - only when basic auth is configured

        self._bcrypt = bcrypt
        self._users = {user: hashed.encode() for user, hashed in users.items()}
        self._decoy = bcrypt.hashpw(b"not a user", bcrypt.gensalt(10))
        self._verdicts: dict[bytes, bool] = {}
        self._lock = threading.Lock()

    def allows(self, authorization: str | None) -> bool:
        credentials = _basic_credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        known = user in self._users
        hashed = self._users.get(user, self._decoy)
        key = hashlib.sha256(b"\0".join((user.encode(), hashed, password))).digest()
        with self._lock:
            verdict = self._verdicts.get(key)
            if verdict is None:
                verdict = self._bcrypt.checkpw(password, hashed)
                if len(self._verdicts) >= AUTH_CACHE_SIZE:
                    self._verdicts.clear()
                self._verdicts[key] = verdict
        return known and verdict


def _basic_credentials(authorization: str | None) -> tuple[str, bytes] | None:
    if not authorization:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return user.decode("utf-8", "replace"), password
