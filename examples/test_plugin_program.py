"""A program in another Pulumi language (YAML, TypeScript...) tested through the provider plugin
`pulumi-resource-enos`, without the Pulumi CLI and without EnOS (docs/testing.md)."""

import pytest

from enos_pulumi.testing import (
    PAUSED_PIPELINE,
    SIMULATOR_ACCESS_KEY,
    SIMULATOR_ORG_ID,
    SIMULATOR_SECRET_KEY,
    PluginEngine,
    PluginHost,
    secret,
)

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites


def test_a_release_resets_through_the_plugin(enos_simulator):
    with PluginHost() as host:  # pulumi-resource-enos of this environment, started as the CLI starts it
        host.configure(
            {
                "enos:apiGateway": enos_simulator.base_url,
                "enos:accessKey": SIMULATOR_ACCESS_KEY,
                "enos:secretKey": secret(SIMULATOR_SECRET_KEY),  # pulumi config set --secret
            }
        )
        engine = PluginEngine(host)
        inputs = {  # what the program registers: the schema's camelCase names
            "orgId": SIMULATOR_ORG_ID,
            "pipelineId": PAUSED_PIPELINE,
            "stageInstanceName": "FixedTimeWindowAggregator_1",
            "assetIds": ["inv01", "inv02"],
            "pointIds": ["INV.Temp"],
            "trigger": "release-2026-11",
        }
        assert engine.preview("reset", inputs).op == "create"
        assert engine.up("reset", inputs).outputs["requestCount"] == 1
        assert engine.up("reset", inputs).op == "same"  # re-running the release resets nothing
        assert engine.up("reset", {**inputs, "trigger": "release-2026-12"}).op == "update"
