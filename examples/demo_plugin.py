"""`make demo`, last step: the provider plugin `pulumi-resource-enos`, which TypeScript, Go, C#, Java and
YAML programs use, driven like the engine drives it (no CLI needed) with examples/yaml-release's resource.

It answers GetSchema, is configured from `enos:*` stack config (secretKey a secret), then: a preview that
calls nothing, an up that pauses a RUNNING pipeline, resets and starts it again, an up that changes
nothing, a new release tag that resets again, a destroy that calls nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import PluginEngine, PluginHost, secret

HERE = Path(__file__).resolve().parent
SEED = HERE.parent / "enos_pulumi" / "simulator" / "demo_seed.yaml"
ORG, ACCESS_KEY, SECRET_KEY = "o-demo", "demo-access-key", "demo-secret-key"  # simulator-only values
RUNNING, STAGE = "pl-demo-running", "FixedTimeWindowAggregator_1"


def yaml_example_inputs(config: dict[str, str]) -> dict[str, Any]:
    """examples/yaml-release's StageStateReset properties, its `${config}` references filled in."""
    program = yaml.safe_load((HERE / "yaml-release" / "Pulumi.yaml").read_text())
    properties = program["resources"]["windowAggReset"]["properties"]
    return {
        key: config[value[2:-1]] if isinstance(value, str) and value.startswith("${") else value
        for key, value in properties.items()
    }


def run_plugin_step(say: Callable[[str], None], expect: Callable[[bool, str], None]) -> None:
    say(
        "\n7. The provider plugin pulumi-resource-enos, for TypeScript, Go, C#, Java and YAML programs,"
        "\n   with examples/yaml-release's resource (driven as the engine drives it)."
    )
    sim = Simulator(pause_seconds=1.0, start_seconds=1.0).start()
    try:
        sim.load_seed(SEED)
        with PluginHost(cwd=HERE / "yaml-release") as host:
            schema = host.get_schema()
            (token,) = schema["resources"]
            inputs = sorted(schema["resources"][token]["inputProperties"])
            say(f"   GetSchema: {schema['name']} {schema['version']}, resource {token}: {', '.join(inputs)}")
            host.configure(
                {
                    "enos:apiGateway": sim.base_url,
                    "enos:accessKey": ACCESS_KEY,
                    "enos:secretKey": secret(SECRET_KEY),
                }
            )
            engine = PluginEngine(host, project="enos-yaml-release")
            config = {"pipelineId": RUNNING, "release": "release-2026-11"}
            program = {"orgId": ORG, **yaml_example_inputs(config)}

            step = engine.preview("windowAggReset", program)
            expect(step.op == "create" and not sim.requests, "the preview should call nothing")
            say(
                "   preview: create, no call to EnOS; known outputs: "
                + ", ".join(sorted(_known(step.outputs)))
            )

            step = engine.up("windowAggReset", program)
            outputs = step.outputs or {}
            actions = [t["action"] for t in sim.transitions if t["pipeline_id"] == RUNNING]
            expect(actions == ["pause", "start"], f"expected one pause and one start, got {actions}")
            expect(sim.pipeline_status(ORG, RUNNING) == "RUNNING", "the pipeline should be RUNNING again")
            expect(outputs.get("pausedByReset") is True, "pausedByReset should be true")
            say(f"   up: {step.op}; paused, reset, started again; resetAt {outputs.get('resetAt')}")

            sim.clear_log()
            expect(
                engine.up("windowAggReset", program).op == "same" and not sim.requests, "up again: no change"
            )
            say("   up again: same, no call")
            step = engine.up("windowAggReset", {**program, "trigger": "release-2026-12"})
            expect(step.op == "update", f"a new release should reset again, got {step.op}")
            requests = int((step.outputs or {})["requestCount"])
            say(f"   new release tag: {step.op}, {requests} delete request(s)")
            sim.clear_log()
            expect(
                engine.destroy("windowAggReset").op == "delete" and not sim.requests, "destroy calls nothing"
            )
            say("   destroy: forgotten, no call")
            for line in host.stderr.splitlines():
                say(f"    | {line}")
            expect(SECRET_KEY not in host.stderr, "the secret key showed in the plugin's output")
            say("   -> the plugin behaved as designed.")
    finally:
        sim.stop()


def _known(outputs: dict[str, Any] | None) -> list[str]:
    return [key for key, value in (outputs or {}).items() if type(value).__name__ != "Unknown"]
