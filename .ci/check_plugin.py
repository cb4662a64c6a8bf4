"""The installed wheel's `pulumi-resource-enos` (run by .ci/dist-check with the test venv's python): it
answers GetSchema and a create, update and delete against the local simulator, as the engine calls it."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import PluginEngine, PluginHost, secret


def main() -> int:
    command = Path(sys.executable).with_name("pulumi-resource-enos")
    if not command.exists():
        sys.exit(f"check_plugin: the wheel did not install {command}")
    sim = Simulator()
    sim.add_app("ak", "sk-dist-check", orgs=["o1"])
    sim.add_pipeline("o1", "pl1", status="PAUSED")
    sim.start()
    try:
        with tempfile.TemporaryDirectory() as cwd, PluginHost(cwd=cwd, command=[str(command)]) as host:
            schema = host.get_schema()
            assert "enos:index:StageStateReset" in schema["resources"], sorted(schema["resources"])
            host.configure(
                {
                    "enos:apiGateway": sim.base_url,
                    "enos:accessKey": "ak",
                    "enos:secretKey": secret("sk-dist-check"),
                }
            )
            engine = PluginEngine(host)
            inputs = {"orgId": "o1", "pipelineId": "pl1", "stageInstanceName": "LatestRecordMerger_1"}
            ops = [
                engine.up("reset", {**inputs, "assetIds": ["a1"], "pointIds": ["p1"]}).op,
                engine.up("reset", {**inputs, "assetIds": ["a1", "a2"], "pointIds": ["p1"]}).op,
                engine.destroy("reset").op,
            ]
            assert ops == ["create", "update", "delete"], ops
            deletes = [r for r in sim.requests if r["operation"] == "delete"]
            assert len(deletes) == 2 and all(r["status"] == 200 for r in deletes), deletes
            assert "sk-dist-check" not in host.stderr
    finally:
        sim.stop()
    print(f"check_plugin: {command} answered GetSchema and create/update/delete ({schema['version']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
