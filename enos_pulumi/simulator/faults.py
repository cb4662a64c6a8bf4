"""Injected faults: what can go wrong, for which requests, how many times; and the command-line spec.

A fault is aimed at an operation (the names of :data:`OPERATIONS`, the same names the request log uses)
and applies to the next ``count`` matching requests, or until cleared. ``operate`` matches every Operate
Pipeline action (``pause``, ``start``, ``stop`` and any other), so specs written before the per-action
names existed keep working.

This module says what a fault is, which requests it hits (:meth:`Fault.matches`, :class:`ActiveFaults`)
and at which stage (:attr:`Fault.is_gateway`); what each kind does to a request is in :mod:`.dispatch`.
A new kind goes into :data:`FAULT_KINDS`, ``Fault.__post_init__`` (its defaults and checks) and the
dispatcher.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FAULT_KINDS", "OPERATE_ACTIONS", "OPERATIONS", "ActiveFaults", "Fault", "parse_fault"]

#: Operate Pipeline actions that have an operation name of their own (log and fault targeting).
OPERATE_ACTIONS = ("pause", "start", "stop")

#: Operation names used in the request log and to target faults. ``operate`` in the log is an Operate
#: Pipeline request with another action (release, save, none); as a fault target it matches all of them.
OPERATIONS = ("token", "refresh", "delete", "get", "list", *OPERATE_ACTIONS, "operate", "unknown")

FAULT_KINDS = ("latency", "status", "drop", "data-false", "expire", "html", "code", "no-effect", "becomes")
#: Kinds that may come ``after`` the service acted: the operation takes effect, its answer is lost.
AFTER_KINDS = ("status", "drop", "html", "code")

_OPERATE_OPS = frozenset((*OPERATE_ACTIONS, "operate"))
_FIELDS = ("op", "count", "latency_ms", "status", "retry_after", "code", "msg", "to", "after")


@dataclass
class Fault:
    """One injected fault, applied to the next ``count`` requests of operation ``op`` (None: any, forever).

    Kinds: ``latency`` (delay ``latency_ms`` then answer normally), ``status`` (HTTP ``status`` with a small
    JSON body, optional ``Retry-After``), ``drop`` (close the connection without answering), ``data-false``
    (``code 0, data false``, nothing done), ``expire`` (expire every token, so the request gets the 1203 401),
    ``html`` (HTTP ``status`` with an HTML page), ``code`` (HTTP 200 envelope with EnOS ``code``),
    ``no-effect`` (Operate Pipeline answers ``code 0`` but the status never changes: a pause that never
    takes effect; the transition is still checked, so an illegal one is refused as usual), ``becomes``
    (Operate Pipeline is accepted, and when it takes effect the pipeline becomes ``to`` instead: a start
    that ends FAILED). With ``after`` a ``status``, ``html``, ``drop`` or ``code`` fault comes after the
    service acted: the operation takes effect and its answer is lost (a 5xx, a cut connection, 61199).
    A fault's ``count`` goes down with every matching request it meets, whatever the answer.
    """

    kind: str
    op: str | None = None
    count: int | None = None
    latency_ms: float = 0.0
    status: int | None = None
    retry_after: str | None = None
    code: int | None = None
    msg: str | None = None
    to: str | None = None
    after: bool = False
    id: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if self.op is not None and self.op not in OPERATIONS:
            raise ValueError(f"unknown operation {self.op!r}; expected one of {', '.join(OPERATIONS)}")
        if self.count is not None and self.count < 1:
            raise ValueError("fault count must be at least 1 (omit it for 'until cleared')")
        # Faults whose effect is meaningless elsewhere get a default target, so that a token or list
        # request does not use up their count.
        if self.kind == "data-false" and self.op is None:
            self.op = "delete"
        if self.kind in ("no-effect", "becomes"):
            self.op = self.op or "operate"
            if self.op not in _OPERATE_OPS:
                raise ValueError(f"a {self.kind!r} fault targets pause, start, stop or operate")
        if self.kind == "becomes" and not (self.to or "").strip():
            raise ValueError("a 'becomes' fault needs the status the pipeline becomes, e.g. becomes=FAILED")
        if self.after and self.kind not in AFTER_KINDS:
            raise ValueError(f"'after' applies to {', '.join(AFTER_KINDS)} faults, not {self.kind!r}")
        if self.kind == "status" and self.status is None:
            self.status = 503
        if self.kind == "html" and self.status is None:
            self.status = 502
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"HTTP status {self.status} out of range")
        if self.kind == "code" and self.code is None:
            raise ValueError("a 'code' fault needs an EnOS code, e.g. code=61121")
        if not math.isfinite(self.latency_ms) or self.latency_ms < 0:
            raise ValueError("latency must be a finite number of ms")
        if self.kind == "latency" and self.latency_ms <= 0:
            raise ValueError("a 'latency' fault needs a positive delay in ms, e.g. latency=200")

    @property
    def is_gateway(self) -> bool:
        """Applied before authentication, as a proxy or gateway in front of EnOS would (an ``after``
        fault is applied once the service has acted)."""
        return self.kind in ("status", "drop", "expire", "html") and not self.after

    def matches(self, op: str) -> bool:
        if self.op is None:
            # An EnOS business code (61121, 61199...) means nothing to the token service: without an
            # explicit op=token it is aimed at the APIs, not at the token request that comes first.
            return not (self.kind == "code" and op in ("token", "refresh"))
        if self.op == "operate":
            return op in _OPERATE_OPS
        return self.op == op

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "op": self.op, "count": self.count}
        for name in ("latency_ms", "status", "retry_after", "code", "msg", "to", "after"):
            value = getattr(self, name)
            if value not in (None, 0.0, False):
                out[name] = value
        return out

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Fault:
        """A fault from JSON (admin endpoint): ``{"kind": "status", "status": 429, "op": "delete", ...}``
        or ``{"spec": "status=429,op=delete"}``."""
        if "spec" in raw:
            return parse_fault(str(raw["spec"]))
        norm = {str(k).replace("-", "_"): v for k, v in raw.items()}
        kind = norm.pop("kind", None)
        if not isinstance(kind, str):
            raise ValueError("a fault needs a 'kind' (or a 'spec' string)")
        unknown = set(norm) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        try:
            return cls(
                kind=kind,
                op=_opt_str(norm.get("op")),
                count=_opt_int(norm.get("count")),
                latency_ms=_number(norm.get("latency_ms") or 0.0),
                status=_opt_int(norm.get("status")),
                retry_after=_retry_after(norm.get("retry_after")),
                code=_opt_int(norm.get("code")),
                msg=_opt_str(norm.get("msg")),
                to=_opt_str(norm.get("to")),
                after=_flag(norm.get("after")),
            )
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"invalid fault {_shown(raw)}: {exc}") from None


class ActiveFaults:
    """The faults in force, oldest first, each numbered as it is added; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            fault.id = self._next_id
            self._next_id += 1
            self._faults.append(fault)
        return fault

    def copies(self) -> list[Fault]:
        """The faults in force (copies; counts show what is left)."""
        with self._lock:
            return [Fault(**vars(f)) for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, op: str, gateway: bool) -> tuple[float, Fault | None]:
        """Consume the faults that apply to one request at one stage (gateway or service).

        Returns the summed delay of matching latency faults (gateway stage only) and the first other
        matching fault; each consumed fault's count goes down by one and it is dropped at zero.
        """
        delay_ms = 0.0
        chosen: Fault | None = None
        with self._lock:
            for fault in list(self._faults):
                if not fault.matches(op):
                    continue
                if fault.kind == "latency":
                    if not gateway:
                        continue
                    delay_ms += fault.latency_ms
                elif chosen is None and fault.is_gateway == gateway:
                    chosen = fault
                else:
                    continue
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
        return delay_ms, chosen


def parse_fault(spec: str) -> Fault:
    """Parse a command-line fault: ``KIND[=VALUE][,key=value...]``.

    Examples: ``latency=200``, ``status=429,retry-after=2,count=3``, ``drop,op=delete,count=1``,
    ``data-false,count=1`` (op defaults to delete), ``expire,op=delete,count=1``, ``html=502``,
    ``code=61121,op=start,count=3``, ``no-effect,op=pause``, ``becomes=FAILED,op=start``,
    ``status=503,op=pause,after=true`` (the pause takes effect, its answer is a 503).
    Keys: ``op`` (one of OPERATIONS), ``count`` (next N matching requests; default: until cleared),
    ``retry-after``, ``msg``, ``status`` (for html), ``after`` (true/false).
    """
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise ValueError("empty fault spec")
    head, _, head_value = parts[0].partition("=")
    kind = head.strip()
    fields: dict[str, Any] = {"kind": kind}
    if kind.isascii() and kind.isdigit():  # "61121" is shorthand for "code=61121"
        fields = {"kind": "code", "code": kind}
    elif kind not in FAULT_KINDS:
        raise ValueError(
            f"bad fault spec {spec!r}: unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}"
        )
    elif head_value:
        value_key = {
            "latency": "latency_ms",
            "status": "status",
            "html": "status",
            "code": "code",
            "becomes": "to",
        }.get(kind)
        if value_key is None:
            raise ValueError(f"fault {kind!r} takes no value (got {parts[0]!r})")
        fields[value_key] = head_value
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"expected key=value in fault spec, got {part!r}")
        key = key.strip().replace("-", "_")
        if key == "ms":
            key = "latency_ms"
        fields[key] = value.strip()
    try:
        return Fault.from_mapping(fields)
    except ValueError as exc:
        raise ValueError(f"bad fault spec {spec!r}: {exc}") from None


def _shown(raw: Mapping[str, Any]) -> str:
    text = repr(dict(raw))
    return text if len(text) <= 200 else text[:200] + "...}"


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _opt_int(value: Any) -> int | None:
    """An integer from JSON or a spec: an int, or a string of ASCII digits (no floats, no bools)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected an integer, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text.startswith("-") else text
        if not (digits.isascii() and digits.isdigit() and len(digits) <= 12):
            raise ValueError(f"expected an integer, got {value!r}")
        return int(text)
    return value


def _flag(value: Any) -> bool:
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _retry_after(value: Any) -> str | None:
    if value is None or value == "":
        return None
    seconds = _number(value)
    if seconds < 0:
        raise ValueError("retry-after must not be negative")
    return str(int(seconds)) if seconds.is_integer() else str(seconds)
