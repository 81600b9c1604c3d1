"""A small strict converter from parsed YAML to typed dataclasses.

Every dataclass field's annotation is the schema. Problems are collected, not raised one at a
time, so `check-config` can print all of them, each naming its key path.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Union, cast

from monitor.units import parse_duration, parse_size


class Duration(float):
    """Seconds, written in the config as '500ms', '15s', '5m', '1h'."""


class ByteSize(int):
    """Bytes, written in the config as '200MB', '50GB' or a plain number."""


# unit type -> (parser of its text form, plain numbers it also accepts)
_UNIT_PARSERS: dict[type, tuple[Callable[[str], float], tuple[type, ...]]] = {
    Duration: (parse_duration, (int, float)),
    ByteSize: (parse_size, (int,)),
}


class Problems(list[str]):
    def add(self, path: str, message: str) -> None:
        self.append(f"{path or '(top level)'}: {message}")


_REFERENCE = re.compile(r"\$\{(file:)?([^}]+)\}")


def expand_references(text: str, path: str, problems: Problems) -> str:
    """`${NAME}` takes an environment variable, `${file:/path}` a file's stripped contents."""

    def substitute(match: re.Match[str]) -> str:
        is_file, name = match.group(1), match.group(2)
        if is_file:
            try:
                return Path(name).read_text(encoding="utf-8").strip()
            except OSError as exc:
                problems.add(path, f"cannot read referenced file {name!r}: {exc.strerror}")
                return ""
        if name not in os.environ:
            problems.add(path, f"environment variable {name} is not set")
            return ""
        return os.environ[name]

    return _REFERENCE.sub(substitute, text)


def _describe(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 60 else text[:57] + "..."


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
    if origin is Literal:
        return "one of " + ", ".join(_describe(choice) for choice in typing.get_args(kind))
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
                return result
        problems.add(path, f"expected {' or '.join(_type_name(o) for o in real)}, "
                           f"got {_describe(value)}")
        return None
    if isinstance(value, str):
        value = expand_references(value, path, problems)
    if origin is Literal:
        for choice in typing.get_args(kind):
            if value == choice and type(value) is type(choice):
                return choice
        problems.add(path, f"expected {_type_name(kind)}, got {_describe(value)}")
        return None
    if origin is list:
        if not isinstance(value, list):
            problems.add(path, f"expected a list, got {_describe(value)}")
            return None
        (item_kind,) = typing.get_args(kind)
        return [convert(item_kind, item, f"{path}[{i}]", problems) for i, item in enumerate(value)]
    if dataclasses.is_dataclass(kind):
        return convert_dataclass(kind, value, path, problems)
    return _convert_scalar(kind, value, path, problems)


def _convert_scalar(kind: Any, value: Any, path: str, problems: Problems) -> Any:
    expected = f"expected {_type_name(kind)}, got {_describe(value)}"
    if kind in _UNIT_PARSERS:
        parse_text, numbers = _UNIT_PARSERS[kind]
        if isinstance(value, numbers) and not isinstance(value, bool) and cast(float, value) >= 0:
            return kind(value)
        if isinstance(value, str):
            try:
                return kind(parse_text(value))
            except ValueError:
                pass
        problems.add(path, expected)
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
    problems.add(path, expected)
    return None


def convert_dataclass(kind: Any, value: Any, path: str, problems: Problems) -> Any:
    coerce = getattr(kind, "coerce", None)
    if coerce is not None:
        value = coerce(value)
    if value is None:
        value = {}
    if not isinstance(value, dict):
        problems.add(path, f"expected a mapping, got {_describe(value)}")
        return None
    hints = typing.get_type_hints(kind)
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


def _required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _check_bounds(field: dataclasses.Field[Any], value: Any, path: str, problems: Problems) -> None:
    if value is None:
        return
    low = field.metadata.get("min")
    if low is not None and value < low:
        problems.add(path, f"must be at least {low}, got {_describe(value)}")
    high = field.metadata.get("max")
    if high is not None and value > high:
        problems.add(path, f"must be at most {high}, got {_describe(value)}")
    if field.metadata.get("positive") and value <= 0:
        problems.add(path, f"must be greater than zero, got {_describe(value)}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def bounded(default: Any = dataclasses.MISSING, **limits: Any) -> Any:
    """A dataclass field with `min`, `max` or `positive=True` checked at load time."""
    if isinstance(default, (list, dict)):
        factory = default
        return dataclasses.field(default_factory=lambda: type(factory)(factory), metadata=limits)
    return dataclasses.field(default=default, metadata=limits)
