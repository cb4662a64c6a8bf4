"""The provider plugin ``pulumi-resource-enos``, started and configured like the CLI does, for tests.

Register with ``pytest_plugins = ["tests.support.plugin_fixtures"]``. Fixtures:

``module_simulator`` (module scope): a standard simulator shared by the module's plugin; tests isolate
themselves with distinct resource and stage names. ``plugin`` (module scope): a :class:`HostedPlugin` -
one plugin process configured from ``enos:*`` stack config (``enos:secretKey`` a secret), its
:class:`PluginEngine` and the simulator. ``plugin_factory`` starts more (other settings, environment).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import PluginEngine, PluginHost, secret
from tests.support.fixtures_simulator import (
    SIM_ACCESS_KEY,
    SIM_ORG_ID,
    SIM_PAUSED_PIPELINE,
    SIM_SECRET_KEY,
    SIM_STAGE,
    started_by,
)

__all__ = [
    "HostedPlugin",
    "PluginFactory",
    "plugin",
    "plugin_factory",
    "plugin_inputs",
    "start_plugin",
]

PROJECT = "enos-plugin-test"


def plugin_inputs(**overrides: Any) -> dict[str, Any]:
    """What a YAML or TypeScript program registers (camelCase, no defaults filled in); an override of
    None leaves that input out."""
    inputs: dict[str, Any] = {
        "orgId": SIM_ORG_ID,
        "pipelineId": SIM_PAUSED_PIPELINE,
        "stageInstanceName": SIM_STAGE,
        "assetIds": ["a1", "a2"],
        "pointIds": ["p1", "p2"],
    }
    inputs.update(overrides)
    return {key: value for key, value in inputs.items() if value is not None}


@dataclass
class HostedPlugin:
    host: PluginHost
    engine: PluginEngine
    simulator: Simulator

    def stop(self) -> None:
        self.host.stop()


def start_plugin(
    simulator: Simulator,
    *,
    cwd: str | Path | None = None,
    settings: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    secret_key: str | None = SIM_SECRET_KEY,
) -> HostedPlugin:
    """Start ``pulumi-resource-enos`` and configure it for ``simulator``; ``settings`` add or replace
    ``enos:*`` stack config (None for a key leaves it out)."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("ENOS_")}
    base["PULUMI_PROJECT"] = PROJECT
    base.update(env or {})
    host = PluginHost(cwd=cwd, env=base).start()
    try:
        config: dict[str, Any] = {
            "enos:apiGateway": simulator.base_url,
            "enos:accessKey": SIM_ACCESS_KEY,
            f"{PROJECT}:release": "r1",  # the program's own config: never the provider's
        }
        if secret_key is not None:
            config["enos:secretKey"] = secret(secret_key)  # `pulumi config set --secret`
        config.update(settings or {})
        host.configure({key: value for key, value in config.items() if value is not None})
    except BaseException:
        host.stop()
        raise
    return HostedPlugin(host, PluginEngine(host, project=PROJECT), simulator)


PluginFactory = Callable[..., HostedPlugin]


@pytest.fixture(scope="module")
def plugin(module_simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostedPlugin]:
    hosted = start_plugin(module_simulator, cwd=tmp_path_factory.mktemp("program"))
    try:
        yield hosted
    finally:
        hosted.stop()


@pytest.fixture
def plugin_factory() -> Iterator[PluginFactory]:
    yield from started_by(start_plugin)
