"""Property values between ``google.protobuf.Struct`` and the plain dicts ``inputs.py`` and ``reset.py`` take.

The plugin declares ``acceptSecrets``, so the engine sends secrets in their wire form (``{sig: secret,
"value": v}``) and stores as secret only what the plugin marks: decoding strips the markers and says which
top-level properties held one; encoding marks the properties named. An unknown value (preview) is the
sentinel string on the wire and a ``pulumi.output.Unknown`` inside.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import struct_pb2
from pulumi.output import Unknown

__all__ = ["UNKNOWN", "Decoded", "Scrubber", "decode", "encode", "unknown"]

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
_SCALARS = frozenset({str, float, bool, type(None)})
_MIN_HIDDEN = 3


def unknown() -> Unknown:
    """A value not known until the update runs (what ``check_inputs`` looks for during a preview)."""
    return Unknown()  # type: ignore[no-untyped-call]


def _plain(value: Any) -> Any:
    if isinstance(value, struct_pb2.Struct):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, struct_pb2.ListValue):
        items = list(value)
        # One C-speed pass decides whether a (possibly huge) list of IDs needs any per-item work.
        if set(map(type, items)) <= _SCALARS:
            return items
        return [_plain(item) for item in items]
    return value


def _reveal(value: Any) -> tuple[Any, bool]:
    """``value`` without secret markers and with unknowns as ``Unknown``; whether it held a secret."""
    if isinstance(value, str):
        return (unknown() if value == UNKNOWN else value), False
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            inner, _ = _reveal(value.get("value"))
            return inner, True
        pairs = {key: _reveal(item) for key, item in value.items()}
        return {key: item for key, (item, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        if UNKNOWN not in value and set(map(type, value)) <= _SCALARS:
            return value, False
        pairs_list = [_reveal(item) for item in value]
        return [item for item, _ in pairs_list], any(s for _, s in pairs_list)
    return value, False


class Decoded(dict[str, Any]):
    """Plain property values; :attr:`secrets` names the top-level properties that held a secret."""

    secrets: frozenset[str]


def decode(struct: Any) -> Decoded:
    """A request's ``Struct`` as plain values (numbers are floats, as on the wire)."""
    decoded = Decoded()
    secrets = set()
    for key, item in struct.items() if struct is not None else ():
        value, secret = _reveal(_plain(item))
        decoded[key] = value
        if secret:
            secrets.add(key)
    decoded.secrets = frozenset(secrets)
    return decoded


def _wire(value: Any) -> Any:
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, Mapping):
        return {str(key): _wire(item) for key, item in value.items() if item is not None}
    if isinstance(value, (list, tuple)):
        if set(map(type, value)) <= _SCALARS:
            return value
        return [_wire(item) for item in value]
    return value


def encode(props: Mapping[str, Any], secrets: Iterable[str] = ()) -> Any:
    """``props`` as a ``Struct``; the keys in ``secrets`` marked secret. Keys whose value is None are
    left out (an absent property)."""
    marked = set(secrets)
    wire: dict[str, Any] = {}
    for key, value in props.items():
        if value is None:
            continue
        item = _wire(value)
        wire[key] = {SIG_KEY: SECRET_SIG, "value": item} if key in marked else item
    struct = struct_pb2.Struct()
    struct.update(wire)
    return struct


class Scrubber:
    """Hides secret input values in text the plugin writes (errors, progress lines): a pipeline ID given
    as a secret must not come back in clear in an error message that quotes it."""

    def __init__(self, props: Mapping[str, Any], secret_keys: Iterable[str]) -> None:
        values: set[str] = set()
        for key in secret_keys:
            _strings(props.get(key), values)
        # Longest first, so a value that contains another is hidden whole. A secret of one or two
        # characters hides nothing (it is guessed at once) and hiding it would shred every message.
        self._values = sorted((v for v in values if len(v.strip()) >= _MIN_HIDDEN), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, "[secret]")
        return text


def _strings(value: Any, into: set[str]) -> None:
    if isinstance(value, str):
        into.add(value)
        # A comma-separated ID string is quoted ID by ID in messages.
        into.update(part.strip() for part in value.split(",") if part.strip())
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        into.add(repr(value))
        if isinstance(value, float) and value.is_integer():
            into.add(str(int(value)))
    elif isinstance(value, Mapping):
        for item in value.values():
            _strings(item, into)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _strings(item, into)
