"""``pulumi-resource-enos``: ``StageStateReset`` as a Pulumi provider plugin, for programs in any
Pulumi language (TypeScript, Go, C#, Java, YAML, Python).

It serves Pulumi's ResourceProvider gRPC protocol directly (the stubs every ``pulumi`` SDK since 3.139
ships), so it runs across the SDK range the package declares, and adapts the same three functions the
dynamic provider uses: :func:`enos_pulumi.inputs.check_inputs`, :func:`enos_pulumi.inputs.diff_inputs`
and :func:`enos_pulumi.reset.run_reset`. Its schema (``GetSchema``) names the resource
``enos:index:StageStateReset``. See docs/plugin.md.
"""

from .schema import TOKEN, package_schema
from .server import main

__all__ = ["TOKEN", "main", "package_schema"]
