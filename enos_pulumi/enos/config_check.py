"""What can be told wrong with the connection settings at preview, before a reset needs them and without
credentials: stack config keys in the ``enos`` namespace that are no setting (a typo), and any setting
given that :func:`~enos_pulumi.enos.settings.resolve_settings` would refuse (checked by the same rules,
:func:`~enos_pulumi.enos.settings.setting_problems`)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from .settings import ORG_ID_KEYS, SETTINGS_KEYS, setting_problems

__all__ = ["config_problems"]


def config_problems(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> list[str]:
    """What can be told wrong with the connection settings before a reset needs them (at preview): an
    ``enos:*`` stack config key this package does not know (with the known key nearest to it), and a
    setting it would refuse (from ``config``, else ``environ``): a gateway URL, a bound out of range, an
    unknown ``enos:authScheme``... A missing setting is no problem here: a preview job need not have the
    secret key; nor is an ``enos:caBundle`` path that does not exist on this machine."""
    known = {key for key, _ in SETTINGS_KEYS.values()} | {ORG_ID_KEYS[0]}
    by_lower = {key.lower(): key for key in known}
    problems = []
    for key in sorted(k for k in config if k.startswith("enos:") and k not in known):
        near = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.75)
        hint = f"did you mean {by_lower[near[0]]}? " if near else ""
        problems.append(
            f"stack config {key} is not an enos-pulumi setting: {hint}Remove it (pulumi config rm {key}); "
            f"the settings are {', '.join(sorted(known))}"
        )
    return problems + [problem for _, problem in setting_problems(config, environ)]
