"""Test Pulumi programs that declare ``StageStateReset`` without the Pulumi CLI and without EnOS.

- :class:`ProgramStack` runs a program's ``preview``/``up``/``refresh``/``destroy`` like the CLI: the
  program runs in this process with Pulumi's mock runtime, and every ``StageStateReset`` goes through
  Pulumi's real dynamic provider host (``python -m pulumi.dynamic``, a fresh one per command), with
  secrets stripped and re-marked, ``--replace``, ``ignoreChanges``, the refresh diff and pending creates
  handled as Pulumi's engine handles them.
- :func:`start_simulator` / :func:`simulator_stack` (and the pytest fixtures ``enos_simulator`` and
  ``enos_stack``, see :mod:`enos_pulumi.testing.plugin`) point it at the local EnOS simulator.
- :class:`Engine` and :class:`ProviderHost` are the layers below, for driving one resource's inputs
  directly; :func:`capture_program` returns what a program registers.
- :class:`PluginHost` and :class:`PluginEngine` drive the provider plugin ``pulumi-resource-enos`` (the
  resource for programs in other languages) the same way.

Install with ``pip install 'enos-pulumi[testing]'``. See docs/testing.md.
"""

from ._engine import Engine, Goal
from ._host import DiffReply, HostError, ProviderHost
from ._paths import IgnoreChangesError
from ._plugin_host import PluginEngine, PluginHost
from ._program import Registration, capture_program, reset_pulumi_runtime, run_program
from ._simulator import (
    PAUSED_PIPELINE,
    RUNNING_PIPELINE,
    SIMULATOR_ACCESS_KEY,
    SIMULATOR_ORG_ID,
    SIMULATOR_SECRET_KEY,
    simulator_config,
    simulator_stack,
    start_simulator,
)
from ._stack import ProgramStack, UpdateResult
from ._steps import (
    DIFF_NONE,
    DIFF_SOME,
    DIFF_UNKNOWN,
    TYPE_TOKEN,
    CheckFailedError,
    DeploymentError,
    Interrupted,
    ResourceProtectedError,
    ResourceState,
    Step,
)
from ._wire import UNKNOWN, is_secret, reveal, secret

__all__ = [
    "DIFF_NONE",
    "DIFF_SOME",
    "DIFF_UNKNOWN",
    "PAUSED_PIPELINE",
    "RUNNING_PIPELINE",
    "SIMULATOR_ACCESS_KEY",
    "SIMULATOR_ORG_ID",
    "SIMULATOR_SECRET_KEY",
    "TYPE_TOKEN",
    "UNKNOWN",
    "CheckFailedError",
    "DeploymentError",
    "DiffReply",
    "Engine",
    "Goal",
    "HostError",
    "IgnoreChangesError",
    "Interrupted",
    "PluginEngine",
    "PluginHost",
    "ProgramStack",
    "ProviderHost",
    "Registration",
    "ResourceProtectedError",
    "ResourceState",
    "Step",
    "UpdateResult",
    "capture_program",
    "is_secret",
    "reset_pulumi_runtime",
    "reveal",
    "run_program",
    "secret",
    "serialize_provider",
    "simulator_config",
    "simulator_stack",
    "start_simulator",
]


def serialize_provider(provider: object) -> str:
    """The ``__provider`` input, produced exactly as ``pulumi.dynamic.Resource`` produces it."""
    from pulumi.dynamic.dynamic import serialize_provider as pulumi_serialize
    from pulumi.runtime._serialization import _serialize

    serialized, _contains_secrets = _serialize(True, pulumi_serialize, provider)
    return str(serialized)
