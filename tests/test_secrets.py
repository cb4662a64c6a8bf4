"""No secret leaks: a reset through the real provider host with a distinctive secret key, then a search
for the secret key, the access token the simulator issued, the request signatures and the token
``encryption`` values in everything a user or a stack's state gets to see.

The simulator logs no headers, so the secrets sent are observed by wrapping its request handler
(``Simulator._handle``) and the issued tokens are read from its store (``_store._tokens``).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dill
import pytest

from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import CheckFailedError, HostError, ProgramStack, is_secret, reveal, secret
from tests.support.fixtures_simulator import (
    SIM_ORG_ID,
    SIM_OTHER_PIPELINE,
    SIM_PAUSED_PIPELINE,
    SIM_RUNNING_PIPELINE,
    SIM_STAGE,
)
from tests.support.host_errors import assert_raised

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites

if TYPE_CHECKING:
    from tests.support.host_fixtures import HostedProvider, HostFactory

pytest_plugins = ["tests.support.host_fixtures"]

LEAK_ACCESS_KEY = "leak-test-access-key"
LEAK_SECRET_KEY = "Zq8x7Kp2Wm4Rt9Lb6Nc3Vd5Hs1"  # simulator-only test value, no word in it
WRONG_SECRET_KEY = "Wx1Yb3Jq5Tf7Gk9Pz2Mr4Ds6Ec8"  # simulator-only test value


@dataclass
class Observed:
    """Secret values that crossed the wire to the simulator."""

    signatures: list[str] = field(default_factory=list)
    tokens_sent: set[str] = field(default_factory=set)
    encryptions: set[str] = field(default_factory=set)

    def record(self, call: Any) -> None:
        headers = call.headers
        if headers.get("apim-signature"):
            self.signatures.append(headers["apim-signature"])
        if headers.get("apim-accesstoken"):
            self.tokens_sent.add(headers["apim-accesstoken"])
        if call.op in ("token", "refresh"):
            body = json.loads(call.body)
            self.encryptions.add(body["encryption"])


def observe(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Observed:
    observed = Observed()
    handle = sim._handle

    def spy(call: Any) -> Any:
        observed.record(call)
        return handle(call)

    monkeypatch.setattr(sim, "_handle", spy)
    return observed


def issued_tokens(sim: Simulator) -> set[str]:
    with sim._store.lock:
        return set(sim._store._tokens)


def leak_simulator(factory: Callable[..., Simulator]) -> Simulator:
    sim = factory()
    sim.add_app(LEAK_ACCESS_KEY, LEAK_SECRET_KEY, orgs=[SIM_ORG_ID])
    sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ["a1", "a2", "a3"], ["p1", "p2"])
    return sim


def decoded_provider(serialized: str) -> str:
    """The pickled provider as text: its bytes and the unpickled object's attributes."""
    data = base64.b64decode(serialized)
    return data.decode("latin-1") + repr(vars(dill.loads(data)))


def stderr_lines(h: HostedProvider, expected: int) -> str:
    """The host's stderr once ``expected`` progress lines arrived (a thread reads it)."""
    deadline = time.monotonic() + 5
    while h.host.stderr.count("enos: ") < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return h.host.stderr


def host_stdout(h: HostedProvider) -> str:
    """What the host wrote after its port line: ProviderHost collects stdout with stderr, as ``pulumi up``
    shows both."""
    return h.host.stderr


def fragments(secret: str, size: int) -> set[str]:
    """Every ``size``-character piece of ``secret``: a truncated or partial copy is a leak too."""
    if len(secret) <= size:
        return {secret}
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def assert_absent(keys: Iterable[str], wire: Iterable[str], texts: dict[str, str]) -> None:
    """No 8-character piece of a secret key, no 16-character piece of a token, signature or encryption."""
    pieces = {piece for key in keys for piece in fragments(key, 8)}
    pieces |= {piece for value in wire for piece in fragments(value, 16)}
    leaks = sorted((where, piece) for piece in pieces for where, text in texts.items() if piece in text)
    assert leaks == []


@pytest.mark.parametrize("secret_from", ["stack config", "environment"])
def test_no_secret_in_inputs_outputs_provider_progress_or_errors(
    simulator_factory: Callable[..., Simulator],
    host_factory: HostFactory,
    monkeypatch: pytest.MonkeyPatch,
    secret_from: str,
) -> None:
    sim = leak_simulator(simulator_factory)
    observed = observe(sim, monkeypatch)
    if secret_from == "stack config":
        h = host_factory(sim, access_key=LEAK_ACCESS_KEY, secret_key=LEAK_SECRET_KEY)
    else:
        h = host_factory(
            sim, access_key=LEAK_ACCESS_KEY, secret_key=None, env={"ENOS_SECRET_KEY": LEAK_SECRET_KEY}
        )
    engine = h.engine
    texts: dict[str, str] = {}

    checked, failures = h.host.check(engine.urn("leak"), {}, h.inputs(verify=True))
    assert failures == []
    texts["check inputs"] = repr(checked)
    created = engine.up("leak", h.inputs(verify=True))
    assert created.op == "create"
    updated = engine.up("leak", h.inputs(verify=True, asset_ids=["a1", "a2", "a3"], trigger="t2"))
    assert updated.op == "update"
    texts["outputs"] = repr(created.outputs) + repr(updated.outputs)
    texts["refreshed outputs"] = repr(engine.refresh("leak").outputs)
    assert engine.preview("leak", h.inputs(asset_ids=["a9"])).op == "update"
    texts["decoded __provider"] = decoded_provider(updated.outputs["__provider"])

    with pytest.raises(HostError) as access_error:  # 61106: another org's pipeline
        engine.up("other-org", h.inputs(pipeline_id=SIM_OTHER_PIPELINE, require_paused=False))
    assert "61106" in access_error.value.details
    texts["61106 failure"] = access_error.value.details + str(access_error.value)
    with pytest.raises(HostError) as running_error:
        engine.up("running", h.inputs(pipeline_id=SIM_RUNNING_PIPELINE))
    assert "is RUNNING" in running_error.value.details
    texts["not-paused failure"] = running_error.value.details
    texts["state"] = repr(engine.state)
    requests = len(sim.requests)  # each printed one progress line, ok or failed
    texts["host stderr"] = stderr_lines(h, requests)
    texts["host stdout"] = host_stdout(h)

    tokens = issued_tokens(sim)
    # What there is to leak was really observed: one token, signed calls, one token request.
    assert len(tokens) == 1 and observed.tokens_sent == tokens
    ops = [e["operation"] for e in sim.requests]
    signed = sum(op in ("list", "delete", "get") for op in ops)
    assert signed >= 7 and len(observed.signatures) == signed  # each signed request was seen
    assert len(observed.encryptions) == 1
    # The search space is real: progress was printed (naming the access key, which is not secret).
    assert texts["host stderr"].count("enos: ") == requests
    assert LEAK_ACCESS_KEY in texts["host stderr"]
    assert_absent([LEAK_SECRET_KEY], [*tokens, *observed.signatures, *observed.encryptions], texts)


def test_no_secret_in_an_authentication_failure(
    simulator_factory: Callable[..., Simulator], host_factory: HostFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = leak_simulator(simulator_factory)
    observed = observe(sim, monkeypatch)
    h = host_factory(sim, access_key=LEAK_ACCESS_KEY, secret_key=WRONG_SECRET_KEY)
    with pytest.raises(HostError) as info:
        h.engine.up("wrong-secret", h.inputs())
    details = info.value.details
    assert_raised(details, "AuthenticationError")
    assert "1003" in details  # the token service refused the encryption
    assert "enos:secretKey" in details and "ENOS_SECRET_KEY" in details  # says what to check
    assert [e["operation"] for e in sim.requests] == ["token"]
    assert issued_tokens(sim) == set()
    assert len(observed.encryptions) == 1
    texts = {
        "failure": details + str(info.value),
        "host stderr": stderr_lines(h, 1),  # the call that needed the token failed
        "host stdout": host_stdout(h),
    }
    assert_absent([WRONG_SECRET_KEY, LEAK_SECRET_KEY], observed.encryptions, texts)


# -- secret inputs, as the engine handles them ---------------------------------------------------------


def test_secret_ids_and_trigger_reach_the_provider_plain_and_outputs_are_marked_by_name(
    simulator_factory: Callable[..., Simulator], host_factory: HostFactory
) -> None:
    """What a program registers for ``asset_ids=pulumi.Output.secret([...])``, ``trigger=Output.secret(..)``
    and a secret pipeline_id: the engine strips the markers before every call and marks an output secret
    iff the input of the same name was."""
    sim = leak_simulator(simulator_factory)
    h = host_factory(sim)
    inputs = h.inputs(
        asset_ids=secret(["a2", "a1", "a2"]), trigger=secret("r1"), pipeline_id=secret(SIM_PAUSED_PIPELINE)
    )
    step = h.engine.up("secret-ids", inputs)
    assert step.op == "create"
    assert [(e["operation"], e["asset_count"], e["point_count"]) for e in sim.requests][-1] == (
        "delete",
        2,
        2,
    )
    assert sim.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE) == {("a3", "p1"), ("a3", "p2")}
    assert step.secret_outputs == {"trigger", "pipeline_id"}
    stored = h.engine.state["secret-ids"]
    assert is_secret(stored.inputs["asset_ids"]) and reveal(stored.inputs["asset_ids"]) == ["a1", "a2"]
    assert is_secret(stored.inputs["trigger"]) and is_secret(stored.outputs["trigger"])
    # Derived outputs the provider cannot know were secret stay plaintext (docs/resource.md says so).
    assert not is_secret(stored.outputs["ids_hash"]) and not is_secret(stored.outputs["asset_count"])

    sim.clear_log()
    assert h.engine.up("secret-ids", inputs).op == "same"
    refreshed = h.engine.refresh("secret-ids")
    assert (refreshed.op, refreshed.secret_outputs) == ("same", {"trigger", "pipeline_id"})
    assert sim.requests == []
    assert h.engine.up("secret-ids", {**inputs, "trigger": secret("r2")}).op == "update"
    assert is_secret(h.engine.state["secret-ids"].outputs["trigger"])


def test_the_wire_form_of_a_secret_is_not_what_the_host_takes(
    host_factory: HostFactory, simulator: Simulator
) -> None:
    """Why the driver strips secrets: the host declares acceptSecrets=False and cannot read the marker."""
    h = host_factory(simulator)
    _, failures = h.host.check(h.engine.urn("wire"), {}, h.inputs(asset_ids=secret(["a1"])))
    assert [prop for prop, _ in failures] == ["asset_ids"]


def test_a_check_failure_quotes_a_bad_secret_id_in_plaintext(
    host_factory: HostFactory, simulator: Simulator
) -> None:
    """Documented: the provider cannot know an input was secret, so a failure naming a bad ID shows it."""
    h = host_factory(simulator)
    with pytest.raises(CheckFailedError) as info:
        h.engine.up("bad-secret", h.inputs(asset_ids=secret(["ok", "bad,id"])))
    assert "'bad,id'" in str(info.value)


SECRET_PROGRAM = """
import pulumi
from enos_pulumi import StageStateReset

config = pulumi.Config()
reset = StageStateReset(
    "secret-reset",
    pipeline_id="pl-demo-paused",
    stage_instance_name="FixedTimeWindowAggregator_1",
    asset_ids=pulumi.Output.secret(["inv02", "inv01"]),
    point_ids=["INV.Temp"],
    trigger=pulumi.Output.secret(config.require("release")),
)
pulumi.export("trigger", reset.trigger)
pulumi.export("org_id", reset.org_id)
pulumi.export("ids_hash", reset.ids_hash)
"""


def test_a_program_with_secret_inputs_and_a_secret_org_id_deploys(
    enos_stack: Callable[..., ProgramStack], enos_simulator: Simulator, tmp_path: Path
) -> None:
    (tmp_path / "__main__.py").write_text(SECRET_PROGRAM)
    (tmp_path / "Pulumi.yaml").write_text("name: secret-program\nruntime: python\n")
    stack = enos_stack(tmp_path, config={"release": "r1"}, secret_config={"enos:orgId": "o-demo"})
    before = enos_simulator.stage_pairs("o-demo", "pl-demo-paused", "FixedTimeWindowAggregator_1")

    result = stack.up()

    assert result.ops == {"secret-reset": "create"}
    gone = before - enos_simulator.stage_pairs("o-demo", "pl-demo-paused", "FixedTimeWindowAggregator_1")
    assert gone == {("inv01", "INV.Temp"), ("inv02", "INV.Temp")}
    assert result.secret_outputs == {"trigger", "org_id"}  # org_id: from a --secret enos:orgId
    assert (result.outputs["trigger"], result.outputs["org_id"]) == ("r1", "o-demo")
    stored = stack.state["secret-reset"]
    assert all(is_secret(stored.inputs[key]) for key in ("asset_ids", "trigger", "org_id"))
    assert stack.up().ops == {"secret-reset": "same"}
