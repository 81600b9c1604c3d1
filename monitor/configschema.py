"""A small strict converter from parsed YAML to typed dataclasses.

Every dataclass field's annotation is the schema. Problems are collected, not raised one at a
time, so `check-config` can print all of them, each naming its key path.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union, cast

from monitor.units import parse_duration, parse_size


class ConfigError(Exception):
    """One or more problems, each already prefixed with the file and key path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Duration(float):
    """Seconds, written in the config as '500ms', '15s', '5m', '1h'."""


class ByteSize(int):
    """Bytes, written in the config as '200MB', '50GB' or a plain number."""


# unit type -> (parser of its text form, plain numbers it also accepts)
_UNIT_PARSERS: dict[type, tuple[Callable[[str], float], tuple[type, ...]]] = {
    Duration: (parse_duration, (int, float)),
    ByteSize: (parse_size, (int,)),
}


MAX_REFERENCED_FILE = 64 * 1024  # bytes a `${file:...}` may hold (a secret, not a dump)
ECHO_LIMIT = 60  # characters of a value echoed in a message
_SECRET_PREFIX = 12  # characters of a referenced value that, found in a message, redact it


class Referenced(str):
    """A string built from `${NAME}` or `${file:...}`: its content is never echoed."""

    sources: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"(the value of {', '.join(self.sources)}, not shown)"


class Problems(list[str]):
    """Problems as 'path: message'; also the referenced values seen, to keep them out."""

    def __init__(self) -> None:
        super().__init__()
        self.referenced: dict[str, Referenced] = {}  # key path -> value

    def add(self, path: str, message: str) -> None:
        self.append(f"{path or '(top level)'}: {message}")

    def redacted(self) -> list[str]:
        """Every problem, with any that contains a piece of a referenced value replaced by
        one naming only the key path and the reference (a catch-all behind `describe_value`)."""
        out = []
        for problem in self:
            for path, value in self.referenced.items():
                piece = str.__str__(value)[:_SECRET_PREFIX]
                if len(piece) >= 4 and piece in problem:
                    problem = (f"{path}: invalid value from {', '.join(value.sources)} "
                               "(its content is not shown)")
                    break
            out.append(problem)
        return out


_REFERENCE = re.compile(r"\$\{(file:)?([^}]+)\}")


def expand_references(text: str, path: str, problems: Problems) -> str:
    """`${NAME}` takes an environment variable, `${file:/path}` a file's stripped contents.
    A result that used a reference is a `Referenced` string, so messages never echo it."""
    sources: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        is_file, name = match.group(1), match.group(2)
        sources.append(_clip("${" + (is_file or "") + name + "}", 200))
        if is_file:
            return _read_referenced(name, path, problems)
        if name not in os.environ:
            problems.add(path, f"environment variable {_clip(name)} is not set")
            return ""
        return os.environ[name]

    expanded = _REFERENCE.sub(substitute, text)
    if not sources:
        return expanded
    result = Referenced(expanded)
    result.sources = tuple(sources)
    problems.referenced[path] = result
    return result


def _read_referenced(name: str, path: str, problems: Problems) -> str:
    try:
        with open(name, "rb") as handle:
            data = handle.read(MAX_REFERENCED_FILE + 1)
    except OSError as exc:
        problems.add(path, f"cannot read referenced file {_clip(name)!r}: {exc.strerror}")
        return ""
    if len(data) > MAX_REFERENCED_FILE:
        problems.add(path, f"referenced file {_clip(name)!r} is larger than "
                           f"{MAX_REFERENCED_FILE // 1024} KiB")
        return ""
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        problems.add(path, f"referenced file {_clip(name)!r} is not UTF-8 text")
        return ""


def _clip(text: str, limit: int = ECHO_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe_value(value: Any) -> str:
    """A value as echoed in a message: a referenced one by its source, others clipped before
    the whole text is built (a 50 MB value costs no more than a short one)."""
    if isinstance(value, Referenced):
        return repr(value)
    if isinstance(value, str):
        return f'"{_clip(value[:ECHO_LIMIT + 1])}"'
    if isinstance(value, (list, dict)):
        return f"a {type(value).__name__} of {len(value)} items"
    return _clip(repr(value)[:ECHO_LIMIT + 1])



def _type_name(kind: Any) -> str:
    if kind is Duration:
        return 'a duration like "30s"'
    if kind is ByteSize:
        return 'a size like "200MB"'
    if kind is bool:
        return "true or false"
    if kind is int:
        return "a whole number"
    if kind is float:
        return "a number"
    if kind is str:
        return "a string"
    if dataclasses.is_dataclass(kind):
        return "a mapping"
    origin = typing.get_origin(kind)
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    if origin is Literal:
        return "one of " + ", ".join(describe_value(choice) for choice in typing.get_args(kind))
    return str(kind)


def convert(kind: Any, value: Any, path: str, problems: Problems) -> Any:
    """Convert `value` to `kind`; on a problem, record it and return None."""
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        real = [option for option in options if option is not type(None)]
        if len(real) == 1:
            return convert(real[0], value, path, problems)
        for option in real:
            trial = Problems()
            result = convert(option, value, path, trial)
            if not trial:
                problems.referenced.update(trial.referenced)
                return result
        problems.add(path, f"expected {' or '.join(_type_name(o) for o in real)}, "
                           f"got {describe_value(value)}")
        return None
    if isinstance(value, str):
        value = expand_references(value, path, problems)
    if origin is Literal:
        for choice in typing.get_args(kind):
            if value == choice and type(value) is type(choice):
                return choice
        problems.add(path, f"expected {_type_name(kind)}, got {describe_value(value)}")
        return None
    if origin is dict:
        return _convert_dict(kind, value, path, problems)
    if origin is list:
        if not isinstance(value, list):
            problems.add(path, f"expected a list, got {describe_value(value)}")
            return None
        (item_kind,) = typing.get_args(kind)
        return [convert(item_kind, item, f"{path}[{i}]", problems) for i, item in enumerate(value)]
    if dataclasses.is_dataclass(kind):
        return convert_dataclass(kind, value, path, problems)
    return _convert_scalar(kind, value, path, problems)


def _convert_dict(kind: Any, value: Any, path: str, problems: Problems) -> Any:
    if not isinstance(value, dict):
        problems.add(path, f"expected a mapping, got {describe_value(value)}")
        return None
    key_kind, item_kind = typing.get_args(kind)
    result = {}
    for key, item in value.items():
        key_path = _join(path, str(key))
        converted_key = convert(key_kind, key, key_path, problems)
        result[converted_key] = convert(item_kind, item, key_path, problems)
    return result


def _convert_scalar(kind: Any, value: Any, path: str, problems: Problems) -> Any:
    def expected() -> str:  # built only for a problem: most values are fine
        return f"expected {_type_name(kind)}, got {describe_value(value)}"

    if kind in _UNIT_PARSERS:
        parse_text, numbers = _UNIT_PARSERS[kind]
        if isinstance(value, numbers) and not isinstance(value, bool) and cast(float, value) >= 0:
            return kind(value)
        if isinstance(value, str):
            try:
                return kind(parse_text(value))
            except ValueError:
                pass
        problems.add(path, expected())
        return None
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    problems.add(path, expected())
    return None


def convert_dataclass(kind: Any, value: Any, path: str, problems: Problems) -> Any:
    coerce = getattr(kind, "coerce", None)
    if coerce is not None:
        value = coerce(value)
    if value is None:
        value = {}
    if not isinstance(value, dict):
        problems.add(path, f"expected a mapping, got {describe_value(value)}")
        return None
    hints = _type_hints(kind)
    fields = {field.name: field for field in dataclasses.fields(kind) if field.init}
    for key in value:
        if key not in fields:
            known = ", ".join(sorted(fields))
            problems.add(_join(path, str(key)), f"unknown key (known keys: {known})")
    arguments: dict[str, Any] = {}
    for name, field in fields.items():
        key_path = _join(path, name)
        if name in value:
            before = len(problems)
            converted = convert(hints[name], value[name], key_path, problems)
            if len(problems) == before:
                arguments[name] = converted
                _check_bounds(field, converted, key_path, problems)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            problems.add(key_path, "is required")
    if any(name not in arguments and _required(field) for name, field in fields.items()):
        return None
    try:
        result = kind(**arguments)
    except (TypeError, ValueError) as exc:
        problems.add(path, str(exc))
        return None
    validate = getattr(result, "validate", None)
    if validate is not None:
        for key, message in validate():
            problems.add(_join(path, key), message)
    return result


@functools.cache
def _type_hints(kind: type) -> dict[str, Any]:
    """Resolving annotations costs more than converting a value: once per class, not per item
    (40 000 latency targets)."""
    return typing.get_type_hints(kind)


def _required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _check_bounds(field: dataclasses.Field[Any], value: Any, path: str, problems: Problems) -> None:
    if value is None:
        return
    def shown() -> str:
        return describe_value(problems.referenced.get(path, value))

    low = field.metadata.get("min")
    if low is not None and value < low:
        problems.add(path, f"must be at least {low}, got {shown()}")
    high = field.metadata.get("max")
    if high is not None and value > high:
        problems.add(path, f"must be at most {high}, got {shown()}")
    if field.metadata.get("positive") and value <= 0:
        problems.add(path, f"must be greater than zero, got {shown()}")


def _join(path: str, key: str) -> str:
    key = _clip(key[:ECHO_LIMIT + 1])  # a key is echoed in its path: clipped like a value
    return f"{path}.{key}" if path else key


def bounded(default: Any = dataclasses.MISSING, **limits: Any) -> Any:
    """A dataclass field with `min`, `max` or `positive=True` checked at load time."""
    if isinstance(default, (list, dict)):
        factory = default
        return dataclasses.field(default_factory=lambda: type(factory)(factory), metadata=limits)
    return dataclasses.field(default=default, metadata=limits)
