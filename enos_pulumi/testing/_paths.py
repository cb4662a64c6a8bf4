"""Property paths (``ignoreChanges`` entries such as ``tags.owner``, ``items[0]``, ``["a.b"]``, ``list[*]``)
and the engine's ``processIgnoreChanges`` over them.

Read in Pulumi's engine: ``pkg/resource/deploy/step_generator.go`` ``processIgnoreChanges`` resets every
ignored path of the new inputs to its value in the old inputs (``PropertyPath.Reset``), removes it where
the old inputs have none, and fails with one error naming every path whose parent is missing; a path that
does not parse is skipped.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from ._wire import is_secret

__all__ = ["IgnoreChangesError", "parse_path", "process_ignore_changes"]

Segment = str | int
_MISSING = object()


class IgnoreChangesError(ValueError):
    """An ``ignoreChanges`` path whose parent exists in neither the old nor the new inputs."""


def parse_path(path: str) -> list[Segment] | None:
    """``a.b[0]["c.d"][*]`` as ``["a", "b", 0, "c.d", "*"]``; None when it does not parse."""
    segments: list[Segment] = []
    index, key = 0, ""
    while index < len(path):
        char = path[index]
        if char == ".":
            if not key and (not segments or path[index - 1] != "]"):
                return None
            if key:
                segments.append(key)
            key, index = "", index + 1
        elif char == "[":
            if key:
                segments.append(key)
                key = ""
            end = path.find("]", index)
            if end < 0:
                return None
            inner = path[index + 1 : end]
            if inner.startswith('"') and inner.endswith('"') and len(inner) >= 2:
                segments.append(inner[1:-1])
            elif inner == "*":
                segments.append("*")
            elif inner.isdigit():
                segments.append(int(inner))
            else:
                return None
            index = end + 1
        else:
            key, index = key + char, index + 1
    if key:
        segments.append(key)
    return segments or None


def _children(value: Any) -> list[Segment]:
    if is_secret(value):
        value = value["value"]
    if isinstance(value, Mapping):
        return list(value)
    if isinstance(value, list):
        return list(range(len(value)))
    return []


def _get(value: Any, segment: Segment) -> Any:
    if is_secret(value):  # a path reaches through a secret, as the engine's PropertyPath does
        value = value["value"]
    if isinstance(segment, int) and isinstance(value, list):
        return value[segment] if 0 <= segment < len(value) else _MISSING
    if isinstance(segment, str) and isinstance(value, Mapping):
        return value.get(segment, _MISSING)
    return _MISSING


def _lookup(value: Any, segments: list[Segment]) -> Any:
    for segment in segments:
        value = _get(value, segment)
        if value is _MISSING:
            break
    return value


def _expand(old: Any, new: Any, segments: list[Segment]) -> list[list[Segment]]:
    """Concrete paths for a path with ``*``: every key or index either side has at that point."""
    if "*" not in segments:
        return [segments]
    at = segments.index("*")
    prefix = segments[:at]
    keys = dict.fromkeys(_children(_lookup(old, prefix)) + _children(_lookup(new, prefix)))
    return [path for key in keys for path in _expand(old, new, [*prefix, key, *segments[at + 1 :]])]


def _reset(old: Mapping[str, Any], new: dict[str, Any], segments: list[Segment]) -> bool:
    """``PropertyPath.Reset``: ``new`` at ``segments`` becomes ``old``'s value there, or goes if ``old`` has
    none; False when the parent to write into is missing from ``new``."""
    old_value = _lookup(old, segments)
    parent, leaf = _lookup(new, segments[:-1]), segments[-1]
    if is_secret(parent):
        parent = parent["value"]
    if old_value is _MISSING:
        if _get(parent, leaf) is _MISSING:
            return True
        if isinstance(parent, dict):
            del parent[leaf]
            return True
        return False  # an element cannot be removed from the middle of a list
    if isinstance(parent, dict) and isinstance(leaf, str):
        parent[leaf] = copy.deepcopy(old_value)
        return True
    if isinstance(parent, list) and isinstance(leaf, int) and leaf < len(parent):
        parent[leaf] = copy.deepcopy(old_value)
        return True
    return False


def _named(key: str, paths: list[str]) -> bool:
    heads = [(parse_path(path) or [""])[0] for path in paths]
    return key in heads or "*" in heads


def process_ignore_changes(
    inputs: Mapping[str, Any], old_inputs: Mapping[str, Any], ignore_changes: Iterable[str]
) -> dict[str, Any]:
    """The new inputs with each ignored path reset to the stored inputs' value (or removed, if none)."""
    paths = list(ignore_changes)
    # Only what a path reaches into is copied: a million-ID list that no path names is shared as it is.
    result = {key: copy.deepcopy(value) if _named(key, paths) else value for key, value in inputs.items()}
    invalid = []
    for path in paths:
        segments = parse_path(path)
        if segments is None:
            continue  # the engine skips a path it cannot parse
        if not all(
            _reset(old_inputs, result, concrete) for concrete in _expand(old_inputs, result, segments)
        ):
            invalid.append(path)
    if invalid:
        raise IgnoreChangesError(
            "cannot ignore changes to the following properties because one or more elements of the path "
            f"are missing: {', '.join(repr(p) for p in invalid)}"
        )
    return result
