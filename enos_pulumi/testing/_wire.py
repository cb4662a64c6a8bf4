"""Property values as the engine keeps and sends them: secrets, unknowns, ``google.protobuf.Struct``.

A secret is kept in Pulumi's wire form, ``{"4dabf18193072939515e22adb298388d":
"1b47061264138c4ac30d75fd1eb44270", "value": v}``: the form a program registers it in and the form
``pulumi.runtime.rpc`` recognizes. The engine strips secrets before calling a provider that declared
``acceptSecrets=False`` (the dynamic provider host does) and marks the provider's answers secret by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi.output import Unknown

__all__ = [
    "SECRET_SIG",
    "SECRET_SIG_KEY",
    "UNKNOWN",
    "annotate_secrets",
    "contains_secrets",
    "contains_unknowns",
    "decode",
    "is_secret",
    "is_unknown",
    "reveal",
    "secret",
    "to_struct",
    "to_wire",
]

SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
#: An input that is not known yet (preview): the string a value takes on the wire.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _flat(value: Any) -> bool:
    """A list of plain scalars: nothing inside to strip, mark or convert (one C-speed pass over a million
    IDs, instead of a Python call per item)."""
    return isinstance(value, list) and set(map(type, value)) <= _SCALARS


def secret(value: Any) -> dict[str, Any]:
    """``value`` marked secret, as a program registers ``pulumi.Output.secret(value)``."""
    return {SECRET_SIG_KEY: SECRET_SIG, "value": value}


def is_secret(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get(SECRET_SIG_KEY) == SECRET_SIG


def contains_secrets(value: Any) -> bool:
    if is_secret(value):
        return True
    if isinstance(value, Mapping):
        return any(contains_secrets(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return not _flat(value) and any(contains_secrets(item) for item in value)
    return False


def reveal(value: Any) -> Any:
    """``value`` with every secret marker removed (what a provider that accepts no secrets receives)."""
    if is_secret(value):
        return reveal(value["value"])
    if isinstance(value, Mapping):
        return {key: reveal(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        # Lists without markers are returned as they are: copying a million IDs on every call is slow.
        return value if _flat(value) else [reveal(item) for item in value]
    return value


def is_unknown(value: Any) -> bool:
    return isinstance(value, Unknown) or (isinstance(value, str) and value == UNKNOWN)


def contains_unknowns(value: Any) -> bool:
    if is_unknown(value):
        return True
    if isinstance(value, Mapping):
        return any(contains_unknowns(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        if _flat(value):
            return UNKNOWN in value
        return any(contains_unknowns(item) for item in value)
    return False


def annotate_secrets(outs: Mapping[str, Any], ins: Mapping[str, Any]) -> dict[str, Any]:
    """The engine's ``annotateSecrets``: an output is marked secret when the input of the same name held a
    secret anywhere inside it; objects on both sides are matched key by key, a list as a whole."""
    result = dict(outs)
    for key, in_value in ins.items():
        if key not in result:
            continue
        out_value = result[key]
        both_objects = (
            isinstance(out_value, Mapping)
            and not is_secret(out_value)
            and isinstance(in_value, Mapping)
            and not is_secret(in_value)
        )
        if both_objects:
            result[key] = annotate_secrets(out_value, in_value)
        elif not is_secret(out_value) and contains_secrets(in_value):
            result[key] = secret(out_value)
    return result


def to_wire(value: Any) -> Any:
    # Struct.update takes JSON-like values; unknowns become the wire sentinel, None-valued keys are
    # left out (the SDK does not send them either).
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, Mapping):
        return {key: to_wire(item) for key, item in value.items() if item is not None}
    if isinstance(value, (list, tuple)):
        return value if _flat(value) else [to_wire(item) for item in value]
    return value


def to_struct(props: Mapping[str, Any]) -> Any:
    """``props`` as the ``google.protobuf.Struct`` a gRPC request carries (numbers become doubles)."""
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    struct.update(to_wire(props))
    return struct


def decode(struct: Any, keep_unknowns: bool = False) -> dict[str, Any]:
    """A reply's ``Struct`` as Python values, decoded by Pulumi's own ``rpc.deserialize_properties``."""
    from pulumi.runtime import rpc

    return dict(rpc.deserialize_properties(struct, keep_unknowns) or {})
