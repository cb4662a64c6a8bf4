"""The provider's ``enos:*`` settings: CheckConfig, DiffConfig and Configure on plain values.

The engine hands a provider its package's stack config without the namespace (``apiGateway``), plus the
plugin ``version`` it added itself; a program's explicit ``enos.Provider`` sends the same names. What
Configure keeps is keyed like the dynamic provider's (``enos:apiGateway``) so that
:func:`enos_pulumi.enos.settings.resolve_settings` reads both alike, the environment filling the gaps at
call time.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pulumi.output import Unknown

from ..enos.quoting import HIDDEN, PLAIN, Show, describe_value
from ..enos.settings import setting_problems
from ..inputs import Failure
from .schema import CONFIG, PACKAGE, RESERVED_CONFIG_KEYS

__all__ = ["SECRET_SETTING", "check_config", "configured", "diff_config"]

SETTINGS = {p.name: p for p in CONFIG}
SECRET_SETTING = "secretKey"
_STRINGS = {p.name for p in CONFIG if p.type.get("type") == "string"}


def _ours(key: str) -> bool:
    return key not in RESERVED_CONFIG_KEYS and not key.startswith("__")


def check_config(
    news: Mapping[str, Any], environ: Mapping[str, str] | None = None, secrets: Collection[str] = ()
) -> list[Failure]:
    """A misspelt setting would be ignored silently (and its default used): name it instead. Any setting
    ``pulumi up`` would refuse (from ``news``, else ``environ``: default none) fails too, by the rules
    ``resolve_settings`` applies, except that a missing one is fine (a preview needs no credentials) and
    ``caBundle`` is not looked for. The values of the settings in ``secrets`` (and of ``secretKey``) are
    never quoted."""
    failures: list[Failure] = []
    hidden = {SECRET_SETTING, *secrets}
    given: dict[str, Any] = {}
    for key, value in news.items():
        if not _ours(key) or value is None or isinstance(value, Unknown):
            continue
        if key not in SETTINGS:
            failures.append(
                (
                    key,
                    f"is not an {PACKAGE} setting (stack config {PACKAGE}:{key}); the settings are "
                    f"{', '.join(sorted(SETTINGS))}",
                )
            )
        elif key in _STRINGS and not isinstance(value, str):
            failures.append((key, f"must be a string, got {describe_value(value, _show(key, hidden))}"))
        else:
            given[f"{PACKAGE}:{key}"] = value
    secret_keys = {f"{PACKAGE}:{key}" for key in hidden}
    for config_key, problem in setting_problems(given, environ or {}, secret_keys):
        failures.append((config_key.split(":", 1)[1], problem))
    return failures


def _show(key: str, hidden: Collection[str]) -> Show:
    return HIDDEN if key in hidden else PLAIN


def diff_config(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """The settings that changed. None ever replaces the provider (and so never a reset): settings are
    read at call time."""
    keys = {key for key in set(olds) | set(news) if _ours(key)}
    return sorted(key for key in keys if olds.get(key) != news.get(key))


def configured(args: Mapping[str, Any], variables: Mapping[str, str]) -> dict[str, Any]:
    """The settings as ``resolve_settings`` takes them: ``{"enos:apiGateway": ...}``.

    ``args`` are the provider's inputs (secrets already revealed); an engine that sends none sends the
    older ``variables`` map (``enos:config:apiGateway`` -> text) instead.
    """
    config: dict[str, Any] = {}
    for key, value in args.items():
        if key in SETTINGS and value is not None:
            config[f"{PACKAGE}:{key}"] = value
    if not args:
        for key, value in variables.items():
            for prefix in (f"{PACKAGE}:config:", f"{PACKAGE}:"):
                name = key[len(prefix) :] if key.startswith(prefix) else None
                if name in SETTINGS:
                    config[f"{PACKAGE}:{name}"] = value
                    break
    return config
