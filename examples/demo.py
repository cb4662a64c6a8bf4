"""`make demo`: the example program's lifecycle against the local EnOS simulator.

With the `pulumi` CLI on PATH, real `pulumi up` runs on a local file backend. Without it,
`enos_pulumi.testing.ProgramStack` runs the example program under Pulumi's mock runtime and drives
Pulumi's real provider host (`python -m pulumi.dynamic`, a fresh one per `pulumi up`, as the CLI starts
it) in the engine's call order. Either way it shows: the first up resets N pairs in K requests (and the
Get Stage State read of `verify=True`); a second up changes nothing; a changed ID list resets again;
a running pipeline is refused with a clear message, then reset hands-free with pausePipeline; a `pulumi
up` killed mid-reset and the recovery (examples/demo_recovery.py); the program's outputs after each up.
Its last step drives the provider plugin `pulumi-resource-enos` (examples/demo_plugin.py). Any surprise
exits non-zero.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import demo_recovery  # examples/demo_recovery.py: step 6
import yaml
from demo_plugin import run_plugin_step

from enos_pulumi.simulator import Simulator

HERE = Path(__file__).resolve().parent
PROGRAM = HERE / "pipeline-release"
PROJECT = "enos-pipeline-release"
SEED = Path(__file__).resolve().parent.parent / "enos_pulumi" / "simulator" / "demo_seed.yaml"
ORG, ACCESS_KEY, SECRET_KEY = "o-demo", "demo-access-key", "demo-secret-key"  # simulator-only values
PAUSED, RUNNING, STAGE = "pl-demo-paused", "pl-demo-running", "FixedTimeWindowAggregator_1"
POINTS = ["INV.GenActivePW", "INV.Temp"]


class Surprise(Exception):
    """Something the demo did not expect: it exits non-zero."""


def say(text: str) -> None:
    print(text, flush=True)


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Surprise(what)


def deletes(sim: Simulator) -> list[dict[str, Any]]:
    return [r for r in sim.requests if r.get("operation") == "delete"]


class HostRunner:
    """No CLI: the program runs under Pulumi's mock runtime and each `pulumi up` starts a fresh provider host,
    as the CLI starts its plugin anew for every command (so every up fetches its own token)."""

    name = "Pulumi's provider host, a fresh one per `pulumi up` (no pulumi CLI on PATH)"

    def __init__(self, sim: Simulator) -> None:
        from enos_pulumi.testing import ProgramStack

        self.stack = ProgramStack(
            PROGRAM,
            stack="demo",
            config={"enos:apiGateway": sim.base_url, "enos:accessKey": ACCESS_KEY},
            secret_config={"enos:secretKey": SECRET_KEY},  # `pulumi config set --secret`
        )

    def up(self, config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self.stack.config.update(config)
        try:
            result = self.stack.up()
        finally:
            echo(self.stack.last_host_output)  # what `pulumi up` shows from the provider
        return result.ops["window-agg-reset"], result.outputs

    def close(self) -> None:
        pass


def echo(host_output: str) -> None:
    for line in host_output.splitlines():
        say(f"    | {line}")


class CliRunner:
    """The real `pulumi` CLI on a local file backend in a scratch directory."""

    name = "the pulumi CLI (local file backend)"

    def __init__(self, sim: Simulator) -> None:
        self.cli = shutil.which("pulumi") or "pulumi"
        self.workdir = Path(tempfile.mkdtemp(prefix="enos-demo-"))
        shutil.copytree(PROGRAM, self.workdir / "program")
        self.program = self.workdir / "program"
        # Use this repository's virtualenv rather than creating one per run.
        venv = Path(sys.prefix)
        project = (self.program / "Pulumi.yaml").read_text()
        (self.program / "Pulumi.yaml").write_text(project.replace("virtualenv: venv", f"virtualenv: {venv}"))
        (self.workdir / "state").mkdir()
        self.env = {
            **os.environ,
            "PULUMI_BACKEND_URL": f"file://{self.workdir / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": "enos-demo",  # encrypts the demo stack's secrets, local only
            "PULUMI_SKIP_UPDATE_CHECK": "1",
        }
        self.pulumi("stack", "init", "demo")
        self.pulumi("config", "set", "enos:apiGateway", sim.base_url)
        self.pulumi("config", "set", "enos:accessKey", ACCESS_KEY)
        self.pulumi("config", "set", "--secret", "enos:secretKey", SECRET_KEY)

    def pulumi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(  # noqa: S603 - the user's pulumi CLI with our own arguments
            [self.cli, *args, "--non-interactive"],
            cwd=self.program,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise Surprise(f"pulumi {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def up(self, config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        # Plain values go straight into the stack file (lists included), next to the encryption salt and
        # the secret that `pulumi config set --secret` wrote there.
        stack_file = self.program / "Pulumi.demo.yaml"
        document = yaml.safe_load(stack_file.read_text()) or {}
        document.setdefault("config", {}).update(config)
        stack_file.write_text(yaml.safe_dump(document, sort_keys=True))
        result = self.pulumi("up", "--yes", "--skip-preview", "--json", check=False)
        for line in (result.stderr or "").splitlines():
            say(f"    | {line}")
        if result.returncode != 0:
            raise RuntimeError(result.stdout + result.stderr)
        summary = json.loads(result.stdout or "{}").get("changeSummary", {})
        outputs = json.loads(self.pulumi("stack", "output", "--json").stdout or "{}")
        for op in ("replace", "create", "update"):
            if summary.get(op):
                return op, outputs
        return "same", outputs

    def close(self) -> None:
        self.pulumi("stack", "rm", "--yes", "--force", check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)


def show_outputs(outputs: dict[str, Any], sent: list[dict[str, Any]]) -> None:
    """The program's exports, as `pulumi stack output` shows them."""
    say("   program outputs (pulumi.export):")
    for key in sorted(outputs):
        say(f"      {key}: {outputs[key]}")
    if sent:
        ids = {r.get("request_id") for r in sent}
        expect(set(outputs.get("request_ids") or []) == ids, "request_ids should be this reset's requestIds")


def run(make_runner: Callable[[Simulator], HostRunner | CliRunner]) -> None:
    # Pause and start take a moment, as on EnOS: List Pipelines shows the old status meanwhile.
    sim = Simulator(pause_seconds=1.0, start_seconds=1.0).start()
    try:
        sim.load_seed(SEED)
        before = sim.stage_pairs(ORG, PAUSED, STAGE)
        runner = make_runner(sim)
        say(f"EnOS simulator at {sim.base_url}; lifecycle through {runner.name}.")
        config: dict[str, Any] = {
            "enos:orgId": ORG,
            f"{PROJECT}:pipelineId": PAUSED,
            f"{PROJECT}:release": "2026-11",
            f"{PROJECT}:assetIds": ["inv01", "inv02"],
            f"{PROJECT}:pointIds": POINTS,
        }
        try:
            say("\n1. First `pulumi up`: the reset runs.")
            op, outputs = runner.up(config)
            sent = deletes(sim)
            expect(op == "create", f"first up should create the reset, got {op}")
            expect(all(r["status"] == 200 for r in sent) and sent, "first up sent no successful delete")
            gone = before - sim.stage_pairs(ORG, PAUSED, STAGE)
            expected = {(a, p) for a in ("inv01", "inv02") for p in POINTS}
            expect(gone == expected, f"expected exactly {sorted(expected)} reset, got {sorted(gone)}")
            reads = [r for r in sim.requests if r.get("operation") == "get"]
            expect(len(reads) == 1, f"verify=True should read the state back once, got {len(reads)} reads")
            say(
                f"   -> reset {len(gone)} asset/point pairs in {len(sent)} request(s); other state untouched."
            )
            say(
                "   -> the Get Stage State line is the program's verify=True: after deleting, the\n"
                "      provider read those pairs back and found no state left (any left fails the up)."
            )
            show_outputs(outputs, sent)
            tokens = sim.tokens_issued

            say("\n2. Second `pulumi up` with the same program: nothing to do.")
            sim.clear_log()
            op, outputs = runner.up(config)
            expect(op == "same", f"second up should change nothing, got {op}")
            expect(not sim.requests, f"second up made {len(sim.requests)} call(s) to EnOS")
            say("   -> no change, no call to EnOS at all; the outputs are those of the first reset:")
            show_outputs(outputs, [])

            say(
                "\n3. The asset list changes (inv03 added, order shuffled, a duplicate): "
                "the reset runs again."
            )
            sim.clear_log()
            config[f"{PROJECT}:assetIds"] = ["inv03", "inv01", "inv02", "inv01"]
            op, outputs = runner.up(config)
            sent = deletes(sim)
            expect(op == "update", f"a changed ID list should update the reset, got {op}")
            expect(bool(sent), "the changed ID list sent no delete")
            pairs = sum(int(r.get("asset_count") or 0) * int(r.get("point_count") or 0) for r in sent)
            expect(pairs == 3 * len(POINTS), f"expected {3 * len(POINTS)} pairs reset again, got {pairs}")
            say(f"   -> reset {pairs} pairs in {len(sent)} request(s).")
            expect(sim.tokens_issued == tokens + 1, "this up's new provider should fetch its own token")
            say("   -> a new provider process for this `pulumi up`, so a token of its own (as with the CLI).")
            show_outputs(outputs, sent)

            say("\n4. The reset is pointed at a RUNNING pipeline: refused before anything is deleted.")
            sim.clear_log()
            config[f"{PROJECT}:pipelineId"] = RUNNING
            running_before = sim.stage_pairs(ORG, RUNNING, STAGE)
            try:
                runner.up(config)
            except Exception as exc:  # the demo shows whatever the user would see
                text = str(exc)
                expect(
                    "PipelineNotPausedError" in text or "is RUNNING" in text, f"unexpected failure: {text}"
                )
                message = next((ln for ln in text.splitlines() if "refused" in ln), text.splitlines()[-1])
                say(f"   -> pulumi up fails with: {message.strip()}")
            else:
                raise Surprise("a reset of a RUNNING pipeline was not refused")
            expect(not deletes(sim), "a delete was sent to a running pipeline")
            expect(sim.stage_pairs(ORG, RUNNING, STAGE) == running_before, "running pipeline state changed")
            say("   -> 0 delete calls; the running pipeline's state is untouched.")

            say(
                "\n5. The same RUNNING pipeline, hands-free: pausePipeline: true (pause_pipeline=True)"
                "\n   pauses it, resets, and starts it again."
            )
            sim.clear_log()
            config[f"{PROJECT}:pausePipeline"] = True
            config[f"{PROJECT}:resumeExecutionMode"] = "standalone"
            op, outputs = runner.up(config)
            sent = deletes(sim)
            expect(op in ("replace", "create"), f"the new target should replace the reset, got {op}")
            actions = [t["action"] for t in sim.transitions if t["pipeline_id"] == RUNNING]
            expect(actions == ["pause", "start"], f"expected one pause and one start, got {actions}")
            expect(
                bool(sent) and all(r["pipeline_status"] == "PAUSED" for r in sent), "a delete ran unpaused"
            )
            expect(sim.pipeline_status(ORG, RUNNING) == "RUNNING", "the pipeline should be RUNNING again")
            left = sim.stage_pairs(ORG, RUNNING, STAGE) & {
                (a, p) for a in ("inv01", "inv02", "inv03") for p in POINTS
            }
            expect(not left, f"state left on the running pipeline: {sorted(left)}")
            expect(outputs.get("paused_by_reset") is True, "paused_by_reset should be true")
            pairs = sum(int(r["asset_count"]) * int(r["point_count"]) for r in sent)
            status = sim.pipeline_status(ORG, RUNNING)
            say(f"   -> paused, reset {pairs} pairs while PAUSED, started again: {RUNNING} is {status}.")
            show_outputs(outputs, sent)

            say(
                "\n6. A `pulumi up` killed mid-reset, as a cancelled CI job kills it (a stack of its own,"
                "\n   through the testing kit):"
            )
            demo_recovery.run_step(
                PROGRAM,
                sim,
                {
                    **config,
                    "enos:apiGateway": sim.base_url,
                    "enos:accessKey": ACCESS_KEY,
                    "enos:secretKey": SECRET_KEY,
                },
                say,
                echo,
                expect,
            )
        finally:
            runner.close()
    finally:
        sim.stop()


def main() -> int:
    use_cli = shutil.which("pulumi") is not None and os.environ.get("ENOS_DEMO_NO_CLI") != "1"
    try:
        run(CliRunner if use_cli else HostRunner)
        run_plugin_step(say, expect)
        say("\nDemo finished: every step behaved as designed.")
    except Surprise as exc:
        say(f"\nDEMO FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
