"""Reading YAML config files at bounded cost: a size cap before parsing, duplicate keys
refused, and YAML aliases checked for what they expand to before anything is built."""

from __future__ import annotations

import os
from typing import Any

import yaml

from monitor.configschema import ConfigError

MAX_ALIAS_NODES = 10_000  # nodes YAML aliases may repeat, beyond the file's own (a "bomb")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes in the document with every alias expanded (an alias is the same node object)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(item, memo) for item in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(key, memo) + _expanded_size(value, memo)
                    for key, value in node.value)
    memo[id(node)] = size
    return size


def load_yaml(text: str, name: str) -> Any:
    """Compose, check what aliases would expand to, then construct: a few hundred bytes of
    nested aliases must not cost gigabytes when the config is checked."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        memo: dict[int, int] = {}
        if _expanded_size(node, memo) > len(memo) + MAX_ALIAS_NODES:
            raise ConfigError([f"{name}: (file): YAML aliases expand to more than "
                               f"{MAX_ALIAS_NODES} extra values; write the values out"])
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_limited(path: str | os.PathLike[str], name: str, limit: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(limit + 1)
    except FileNotFoundError:
        raise ConfigError([f"{name}: (file): not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{name}: (file): cannot read: {exc.strerror}"]) from None
    if len(raw) > limit:
        raise ConfigError([f"{name}: (file): larger than {limit // 1024} KiB; "
                           "expected a config file of a few KB"])
    return raw
