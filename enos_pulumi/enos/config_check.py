"""What can be told wrong with the connection settings at preview, before a reset needs them and without
credentials: stack config keys in the ``enos`` namespace that are no setting (a typo), and a gateway URL
that :func:`~enos_pulumi.enos.settings.resolve_settings` would refuse."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError

# The same rules as resolve_settings, not a copy of them.
from .gateway_url import normalize_gateway
from .settings import ORG_ID_KEYS, SETTINGS_KEYS, _pick

__all__ = ["config_problems"]


def config_problems(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> list[str]:
    """What can be told wrong with the connection settings before a reset needs them (at preview): an
    ``enos:*`` stack config key this package does not know (with the known key nearest to it), and a
    gateway URL it would refuse (from ``config``, else ``environ``). A missing setting is no problem
    here: a preview job need not have the secret key."""
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
    found = _pick("api_gateway", {}, config, os.environ if environ is None else environ)
    if found is not None and isinstance(found[0], str):
        try:
            normalize_gateway(found[0].strip(), found[1])
        except ConfigurationError as exc:
            problems.append(str(exc))
    return problems
