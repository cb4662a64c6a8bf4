"""Step 6 of `make demo`: a `pulumi up` killed while its reset holds a RUNNING pipeline paused.

Run on a stack of its own through the testing kit's `ProgramStack`, which kills the provider host as the
Pulumi CLI does when a CI job is cancelled (SIGKILL to the host's process group). First the guardian
starts the pipeline again and the next `up` runs the reset again; then the guardian cannot reach EnOS
(as when it dies with the whole container), the next `up` warns that the pipeline was already PAUSED,
and `resumePolicy: always` has that `up` start it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import Interrupted, ProgramStack


def _wait(condition: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    until = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > until:
            raise RuntimeError(f"gave up waiting for {what}")
        time.sleep(0.05)


def _interrupted_up(stack: ProgramStack, sim: Simulator, pipeline: str, cut_off: bool = False) -> int:
    """`pulumi up`, killed once the pipeline is PAUSED for the reset (``cut_off``: EnOS unreachable
    from then on); the guardian's pid."""
    interrupt = threading.Event()
    paused = len([t for t in sim.transitions if t["action"] == "pause"])

    def kill_when_paused() -> None:
        _wait(lambda: len([t for t in sim.transitions if t["action"] == "pause"]) > paused, "the pause")
        if cut_off:
            sim.fail_with_status(503)
        interrupt.set()

    threading.Thread(target=kill_when_paused, daemon=True).start()
    try:
        stack.up(interrupt=interrupt)
    except Interrupted:
        pass
    else:
        raise RuntimeError("the up was not interrupted")
    pids = re.findall(rf"enos: Guard pipeline {pipeline} \| started \| pid (\d+)", stack.last_host_output)
    if not pids:
        raise RuntimeError("no guardian was started:\n" + stack.last_host_output)
    return int(pids[-1])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def run_step(
    program: Path,
    sim: Simulator,
    config: dict[str, Any],
    say: Callable[[str], None],
    echo: Callable[[str], None],
    expect: Callable[[bool, str], None],
) -> None:
    pipeline, org = config["enos-pipeline-release:pipelineId"], config["enos:orgId"]
    sim.pause_seconds = sim.start_seconds = 0.3
    sim.clear_log()
    # Short bounds, so that a guardian that cannot reach EnOS gives up within seconds.
    bounds = {"enos:retryDeadlineSeconds": "1", "enos:operationTimeoutSeconds": "5"}
    stack = ProgramStack(program, stack="demo-interrupted", config={**config, **bounds})

    say("   a) Killed as the pipeline reaches PAUSED for the reset:")
    pid = _interrupted_up(stack, sim, pipeline)
    say(f"   -> the provider is gone; its guardian (pid {pid}) sees it and starts the pipeline again.")
    _wait(lambda: not _alive(pid), "the guardian")
    actions = [t["action"] for t in sim.transitions if t["pipeline_id"] == pipeline]
    expect(actions == ["pause", "start"], f"the guardian should have started it, got {actions}")
    expect(sim.pipeline_status(org, pipeline) == "RUNNING", "the pipeline should be RUNNING again")
    say(f"   -> {pipeline} is RUNNING. The next `pulumi up` re-runs the pending create:")
    result = stack.up()
    echo("\n".join(line for line in stack.last_host_output.splitlines() if "WARNING" in line or "  " in line))
    expect("an earlier reset of it was interrupted" in stack.last_host_output, "no guardian report shown")
    expect(result.outputs.get("paused_by_reset") is True, "the reset should have paused it again")
    say(f"   -> reset done, {pipeline} is {sim.pipeline_status(org, pipeline)}.")

    say("\n   b) Killed again, and this time the guardian cannot reach EnOS (as if it had died with the")
    say("      whole container):")
    stack.config["enos-pipeline-release:release"] = "2026-12"
    pid = _interrupted_up(stack, sim, pipeline, cut_off=True)
    _wait(lambda: not _alive(pid), "the guardian to give up")
    sim.clear_faults()
    expect(sim.pipeline_status(org, pipeline) == "PAUSED", "nothing should have restored it")
    say(f"   -> {pipeline} is left PAUSED. Recovery: resumePolicy: always, and `pulumi up` again:")
    stack.config["enos-pipeline-release:resumePolicy"] = "always"
    result = stack.up()
    echo("\n".join(line for line in stack.last_host_output.splitlines() if "WARNING" in line or "  " in line))
    expect("was already PAUSED" in stack.last_host_output, "the next up should warn it was PAUSED")
    expect(sim.pipeline_status(org, pipeline) == "RUNNING", "resumePolicy always should have started it")
    say(f"   -> the reset ran again and started it: {pipeline} is RUNNING.")
