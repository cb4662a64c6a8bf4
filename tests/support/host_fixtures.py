"""Pulumi's real dynamic provider host (``python -u -m pulumi.dynamic``), started and configured for tests.

Register with ``pytest_plugins = ["tests.support.host_fixtures"]`` in a test module. Fixtures:

``module_simulator`` (module scope): a standard simulator (see ``tests.support.fixtures_simulator``)
shared by the module's host; tests isolate themselves with distinct resource and stage names.
``provider_host`` (module scope): a :class:`HostedProvider` - one host process, configured like
``pulumi up`` configures it (``enos:secretKey`` as a wire secret), its :class:`enos_pulumi.testing.Engine`
and the ``__provider`` string serialized exactly as ``pulumi.dynamic.Resource`` serializes it.
``host_factory`` (function scope): ``host_factory(sim, settings={...}, env={...})`` starts more hosts
(other settings, another simulator, credentials from the environment); all are stopped at teardown.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from enos_pulumi.provider import StageStateResetProvider
from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import Engine, ProviderHost, secret, serialize_provider
from tests.support.fixtures_simulator import (
    SIM_ACCESS_KEY,
    SIM_ORG_ID,
    SIM_PAUSED_PIPELINE,
    SIM_SECRET_KEY,
    SIM_STAGE,
    started_by,
)

__all__ = [
    "REPO_ROOT",
    "HostFactory",
    "HostedProvider",
    "clean_module_simulator",
    "host_factory",
    "provider_host",
    "resource_inputs",
    "start_hosted_provider",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT = "enos-pulumi-test"


def resource_inputs(provider: str, **overrides: Any) -> dict[str, Any]:
    """The inputs ``StageStateReset`` registers (defaults filled in as the resource does), ``__provider``
    included; an override of ``None`` leaves that input out, as the resource does for ``trigger=None``."""
    inputs: dict[str, Any] = {
        "__provider": provider,
        "org_id": SIM_ORG_ID,
        "pipeline_id": SIM_PAUSED_PIPELINE,
        "stage_instance_name": SIM_STAGE,
        "asset_ids": ["a1", "a2"],
        "point_ids": ["p1", "p2"],
        "require_paused": True,
        "verify": False,
    }
    inputs.update(overrides)
    return {key: value for key, value in inputs.items() if value is not None}


@dataclass
class HostedProvider:
    """One running host, the engine over it, the ``__provider`` string and the simulator it talks to."""

    host: ProviderHost
    engine: Engine
    provider: str
    simulator: Simulator

    def inputs(self, **overrides: Any) -> dict[str, Any]:
        return resource_inputs(self.provider, **overrides)

    def stop(self) -> None:
        self.host.stop()


def _clean_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    # The host gets the test process's environment minus any developer ENOS_* variables, like the CLI
    # passes its own environment to the plugin.
    env = {key: value for key, value in os.environ.items() if not key.startswith("ENOS_")}
    env["PULUMI_PROJECT"] = PROJECT
    env.update(extra or {})
    return env


def start_hosted_provider(
    simulator: Simulator,
    *,
    cwd: str | Path = REPO_ROOT,
    settings: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    access_key: str | None = SIM_ACCESS_KEY,
    secret_key: str | None = SIM_SECRET_KEY,
    gateway: str | None = None,
) -> HostedProvider:
    """Start and configure a host for ``simulator``; ``None`` for a credential leaves it out of the
    stack config (so it must come from ``env``). ``settings`` adds more ``enos:*`` stack config."""
    provider = serialize_provider(StageStateResetProvider())
    host = ProviderHost(cwd=cwd, env=_clean_env(env)).start()
    try:
        config: dict[str, Any] = {
            "enos:apiGateway": gateway if gateway is not None else simulator.base_url,
            # Stack config the provider must ignore (another namespace, the program's own keys).
            f"{PROJECT}:release": "r1",
            "aws:region": "eu-west-1",
        }
        if access_key is not None:
            config["enos:accessKey"] = access_key
        if secret_key is not None:
            config["enos:secretKey"] = secret(secret_key)  # `pulumi config set --secret`
        config.update(settings or {})
        host.configure(config)
    except BaseException:
        host.stop()
        raise
    return HostedProvider(host, Engine(host, project=PROJECT), provider, simulator)


HostFactory = Callable[..., HostedProvider]


@pytest.fixture(scope="module")
def provider_host(
    module_simulator: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostedProvider]:
    # cwd is a scratch "program directory": the provider must import from the installed package.
    hosted = start_hosted_provider(module_simulator, cwd=tmp_path_factory.mktemp("program"))
    try:
        yield hosted
    finally:
        hosted.stop()


@pytest.fixture
def host_factory() -> Iterator[HostFactory]:
    yield from started_by(start_hosted_provider)


@pytest.fixture
def clean_module_simulator(module_simulator: Simulator) -> Iterator[None]:
    """The module's shared simulator with no faults or log left over from the test before."""
    module_simulator.clear_faults()
    module_simulator.clear_log()
    yield
    module_simulator.clear_faults()
