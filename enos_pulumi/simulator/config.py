"""The simulator's run-time settings: names, defaults, one validator each, and :class:`Settings`, the
object the request handlers read them from.

The constructor, ``configure``, ``POST /__admin/config`` and the command line all go through
:func:`check`, so a value the simulator cannot use (``1e400``, ``NaN``, a negative delay, a bool where a
number belongs) is refused with a message naming the key, wherever it comes from. Assigning the
attribute (``sim.pair_limit = 0``) is not checked: a test's way to force what no client could.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Generic, Protocol, TypeVar, overload

__all__ = [
    "AUTH_SCHEMES",
    "DEFAULTS",
    "GET_FORMATS",
    "LOG_LIMIT",
    "Setting",
    "Settings",
    "check",
    "check_all",
    "check_log_limit",
]

AUTH_SCHEMES = ("apim-signature", "bearer", "any")
GET_FORMATS = ("list", "items")

#: Every setting with its default. ``POST /__admin/config`` accepts these keys; ``reset`` restores the
#: values the simulator was started with.
DEFAULTS: dict[str, Any] = {
    "token_lifetime": 7200.0,
    "pair_limit": 100_000,
    "require_paused": True,
    "get_format": "list",
    "latency_ms": 0.0,
    "pause_seconds": 0.0,
    "start_seconds": 0.0,
    "auth": "apim-signature",
    "request_timeout": 30.0,
}


#: How many requests the log keeps (and transitions the history keeps) by default: the newest ones.
#: Enough for any test's or trial's look back; a cap, so that a client flooding the simulator (or a long
#: ``enos-simulator`` session) cannot grow its memory without bound. Fixed at construction.
LOG_LIMIT = 10_000


def check_log_limit(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise ValueError(f"request_log_limit must be an integer of at least 1, got {raw!r}")
    return raw


def _number(key: str, raw: Any, *, positive: bool) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ValueError(f"{key} must be a number, got {raw!r}")
    try:
        value = float(raw)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "greater than 0" if positive else "0 or more"
        raise ValueError(f"{key} must be a finite number {bound}, got {raw!r}")
    return value


def check(key: str, raw: Any) -> Any:
    """The value to store for setting ``key``; ValueError naming the key if ``raw`` is unusable."""
    if key not in DEFAULTS:
        raise ValueError(f"unknown config key {key!r}; expected one of {', '.join(DEFAULTS)}")
    if key in ("token_lifetime", "request_timeout"):
        return _number(key, raw, positive=True)
    if key in ("latency_ms", "pause_seconds", "start_seconds"):
        return _number(key, raw, positive=False)
    if key == "pair_limit":
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
            raise ValueError(f"pair_limit must be an integer of at least 1, got {raw!r}")
        return raw
    if key == "require_paused":
        if not isinstance(raw, bool):
            raise ValueError(f"require_paused must be true or false, got {raw!r}")
        return raw
    choices = AUTH_SCHEMES if key == "auth" else GET_FORMATS
    if raw not in choices:
        raise ValueError(f"{key} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def check_all(raw: Any) -> dict[str, Any]:
    """Validate a whole config object (all keys first, so a bad one changes nothing)."""
    if not isinstance(raw, Mapping):
        raise ValueError("config must be a JSON object")
    unknown = sorted(str(k) for k in raw if k not in DEFAULTS)
    if unknown:
        raise ValueError(
            f"unknown config key(s): {', '.join(unknown)}; expected some of {', '.join(DEFAULTS)}"
        )
    return {key: check(key, value) for key, value in raw.items()}


class Settings:
    """Every setting's current value as an attribute. :meth:`update` validates all the changes before
    applying any. Handlers read it on every request, so a change applies to the next one."""

    token_lifetime: float
    pair_limit: int
    require_paused: bool
    get_format: str
    latency_ms: float
    pause_seconds: float
    start_seconds: float
    auth: str
    request_timeout: float

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self.__dict__.update(check_all({**DEFAULTS, **(values or {})}))

    def update(self, changes: Mapping[str, Any]) -> None:
        self.__dict__.update(check_all(changes))

    def as_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in DEFAULTS}


T = TypeVar("T")


class _HasSettings(Protocol):
    _settings: Settings


class Setting(Generic[T]):
    """A class attribute that reads and writes one setting of the owner's ``_settings`` (unchecked)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Setting[T]: ...
    @overload
    def __get__(self, obj: _HasSettings, objtype: type | None = None) -> T: ...
    def __get__(self, obj: _HasSettings | None, objtype: type | None = None) -> Setting[T] | T:
        if obj is None:
            return self
        value: T = getattr(obj._settings, self.name)
        return value

    def __set__(self, obj: _HasSettings, value: T) -> None:
        setattr(obj._settings, self.name, value)
