"""The provider plugin ``pulumi-resource-enos`` as a process, driven with the engine's rules.

:class:`PluginHost` starts the plugin as the CLI starts a resource plugin (its command, logging flags and
the engine address as arguments; the port read from stdout) and configures it as the engine configures a
package's default provider: Handshake where the SDK has it, CheckConfig on the ``enos:*`` stack config
(without the namespace, plus the plugin ``version``), then Configure with the checked values.
:class:`PluginEngine` is :class:`~enos_pulumi.testing.Engine` for a provider that accepts secrets and
supports preview: a preview also sends Create and Update with ``preview`` set.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._engine import Engine
from ._host import DiffReply, HostError, ProviderHost
from ._steps import Step, make_step
from ._wire import decode, is_secret, to_struct

__all__ = ["PLUGIN_TOKEN", "PluginEngine", "PluginHost", "plugin_command"]

PLUGIN_TOKEN = "enos:index:StageStateReset"
_PACKAGE = "enos"


def plugin_command() -> list[str]:
    """``pulumi-resource-enos`` of this interpreter's environment (where pip put it), else from PATH."""
    beside = Path(sys.executable).with_name("pulumi-resource-enos")
    found = str(beside) if beside.exists() else shutil.which("pulumi-resource-enos")
    if found is None:
        raise FileNotFoundError("pulumi-resource-enos is not installed: pip install enos-pulumi")
    return [found]


class PluginHost(ProviderHost):
    """One ``pulumi-resource-enos`` process. ``engine_address`` is passed as the CLI passes its own."""

    def __init__(
        self,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
        engine_address: str = "127.0.0.1:1",
    ) -> None:
        argv = [*(command or plugin_command()), "--logtostderr", "-v=9", engine_address]
        super().__init__(cwd, env, command=argv)
        self.engine_address = engine_address
        self.supports_preview = False
        #: Check's answer per URN, as the engine passes it on (secrets in wire form, unknowns kept).
        self.checked: dict[str, dict[str, Any]] = {}
        #: The last Diff's detailed diff per URN: input name -> (kind name, input diff).
        self.detailed_diffs: dict[str, dict[str, tuple[str, bool]]] = {}
        self._last_detailed: dict[str, tuple[str, bool]] = {}

    def handshake(self) -> bool:
        """What the engine sends first (SDKs without the call answer UNIMPLEMENTED); whether it answered."""
        from pulumi.runtime.proto import provider_pb2

        if not hasattr(provider_pb2, "ProviderHandshakeRequest"):
            return False
        request = provider_pb2.ProviderHandshakeRequest(engine_address=self.engine_address)
        try:
            reply = self._call("Handshake", request)
        except HostError as exc:
            if exc.code == "UNIMPLEMENTED":
                return False
            raise
        self.accept_secrets, self.supports_preview = bool(reply.accept_secrets), True
        return True

    def check_config(
        self, olds: Mapping[str, Any], news: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        from pulumi.runtime.proto import provider_pb2

        urn = f"urn:pulumi:dev::project::pulumi:providers:{_PACKAGE}::default"
        request = provider_pb2.CheckRequest(urn=urn, olds=to_struct(olds), news=to_struct(news))
        reply = self._call("CheckConfig", request, urn)
        return decode(reply.inputs, keep_unknowns=True), [(f.property, f.reason) for f in reply.failures]

    def configure(self, config: Mapping[str, Any]) -> bool:
        """The default provider's setup from ``enos:*`` stack config (other namespaces are not its)."""
        from pulumi.runtime.proto import provider_pb2

        self.handshake()
        prefix = f"{_PACKAGE}:"
        news = {key[len(prefix) :]: value for key, value in config.items() if key.startswith(prefix)}
        news["version"] = self.get_plugin_version()
        checked, failures = self.check_config({}, news)
        if failures:
            raise ValueError(f"provider config: {failures}")
        variables = {
            f"{_PACKAGE}:config:{key}": str(value["value"] if is_secret(value) else value)
            for key, value in checked.items()
            if key != "version"
        }
        request = provider_pb2.ConfigureRequest(
            args=to_struct(checked), variables=variables, acceptSecrets=True, acceptResources=True
        )
        reply = self._call("Configure", request)
        if not self.supports_preview:  # no Handshake: the engine takes the protocol from Configure
            self.accept_secrets, self.supports_preview = (
                bool(reply.acceptSecrets),
                bool(reply.supportsPreview),
            )
        return self.accept_secrets

    def get_plugin_version(self) -> str:
        from google.protobuf import empty_pb2

        return str(self._call("GetPluginInfo", empty_pb2.Empty()).version)

    def get_schema(self) -> dict[str, Any]:
        from pulumi.runtime.proto import provider_pb2

        return dict(json.loads(self._call("GetSchema", provider_pb2.GetSchemaRequest()).schema))

    def check(
        self, urn: str, olds: Mapping[str, Any], news: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        checked, failures = super().check(urn, olds, news)
        self.checked[urn] = checked
        return checked, failures

    def diff(
        self,
        urn: str,
        id_: str,
        olds: Mapping[str, Any],
        news: Mapping[str, Any],
        old_inputs: Mapping[str, Any] | None = None,
        ignore_changes: list[str] | None = None,
    ) -> DiffReply:
        reply = super().diff(urn, id_, olds, news, old_inputs, ignore_changes)
        self.detailed_diffs[urn] = dict(self._last_detailed)
        return reply

    def _call(self, method: str, request: Any, urn: str = "") -> Any:
        reply = super()._call(method, request, urn)
        if method == "Diff":
            from pulumi.runtime.proto import provider_pb2

            names = provider_pb2.PropertyDiff.Kind.Name
            self._last_detailed = {
                key: (names(value.kind), bool(value.inputDiff)) for key, value in reply.detailedDiff.items()
            }
        return reply

    def preview_create(self, urn: str, props: Mapping[str, Any]) -> dict[str, Any]:
        from pulumi.runtime.proto import provider_pb2

        request = provider_pb2.CreateRequest(urn=urn, properties=to_struct(props), preview=True)
        return decode(self._call("Create", request, urn).properties, keep_unknowns=True)

    def preview_update(
        self,
        urn: str,
        id_: str,
        olds: Mapping[str, Any],
        news: Mapping[str, Any],
        old_inputs: Mapping[str, Any],
    ) -> dict[str, Any]:
        from pulumi.runtime.proto import provider_pb2

        request = provider_pb2.UpdateRequest(
            id=id_,
            urn=urn,
            olds=to_struct(olds),
            news=to_struct(news),
            old_inputs=to_struct(old_inputs),
            preview=True,
        )
        return decode(self._call("Update", request, urn).properties, keep_unknowns=True)


class PluginEngine(Engine):
    """:class:`Engine` over a :class:`PluginHost`: a preview also calls Create or Update with ``preview``
    set (the provider supports preview), so its outputs show what is known before the update."""

    host: PluginHost

    def __init__(self, host: PluginHost, **kwargs: Any) -> None:
        kwargs.setdefault("type_token", PLUGIN_TOKEN)
        super().__init__(host, **kwargs)

    def preview_outputs(
        self, name: str, inputs: Mapping[str, Any], **options: Any
    ) -> tuple[Step, dict[str, Any]]:
        step, shown = super().preview_outputs(name, inputs, **options)
        if not self.host.supports_preview or step.op not in ("create", "update", "replace"):
            return step, shown
        urn = self.urn(name)
        checked = self.host.checked[urn]
        if step.op == "update":
            old = self.state[name]
            outs = self.host.preview_update(urn, old.id, old.outputs, checked, old.inputs)
        else:
            outs = self.host.preview_create(urn, checked)
        return make_step(name, step.op, outs, replaces=step.replaces, changed=step.changed), outs
