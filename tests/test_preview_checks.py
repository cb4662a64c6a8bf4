"""What ``pulumi preview`` refuses, through the real provider host, before any reset could pause a pipeline:
a stage instance name of no known operator type (a typo), control characters and absurd lengths in the
target and IDs, a mistyped ``enos:*`` key, a gateway URL or any other setting ``pulumi up`` would refuse.
A missing secret is no problem at preview (pull-request jobs have none), nor an ``enos:caBundle`` path this
machine lacks. Not one request reaches EnOS."""

from __future__ import annotations

from typing import Any

import pytest

from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import CheckFailedError, HostError
from tests.support.fixtures_simulator import SIM_ORG_ID, SIM_RUNNING_PIPELINE
from tests.support.host_errors import assert_raised
from tests.support.host_fixtures import HostedProvider, HostFactory

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites

pytest_plugins = ["tests.support.host_fixtures"]

PAUSE = {"pause_pipeline": True, "resume_execution_mode": "standalone"}


def preview_failures(h: HostedProvider, **overrides: Any) -> list[tuple[str, str]]:
    with pytest.raises(CheckFailedError) as info:
        h.engine.preview("checked", h.inputs(**overrides))
    return info.value.failures


def test_a_mistyped_stage_is_refused_at_preview_with_the_near_operator_type(
    provider_host: HostedProvider, clean_module_simulator: None, module_simulator: Simulator
) -> None:
    failures = preview_failures(
        provider_host,
        pipeline_id=SIM_RUNNING_PIPELINE,
        stage_instance_name="FixedTimeWindowAgregator_1",
        **PAUSE,
    )
    ((name, reason),) = failures
    assert name == "stage_instance_name"
    assert "did you mean FixedTimeWindowAggregator?" in reason
    assert "require_known_stage_type=False" in reason
    assert module_simulator.requests == []  # no pause, no request at all


def test_a_stage_type_this_version_does_not_know_passes_with_the_opt_out(
    provider_host: HostedProvider, clean_module_simulator: None, module_simulator: Simulator
) -> None:
    # EnOS may add operator types: the opt-out lets one through. A RUNNING pipeline is still not paused
    # for a stage EnOS refuses: the reset asks Get Stage State first (it needs no pause), which says 61107.
    h = provider_host
    inputs = h.inputs(
        pipeline_id=SIM_RUNNING_PIPELINE,
        stage_instance_name="NewAggregator_1",
        require_known_stage_type=False,
        **PAUSE,
    )
    assert h.engine.preview("opt-out", inputs).op == "create"
    with pytest.raises(HostError) as info:
        h.engine.up("opt-out", inputs)
    assert_raised(info.value.details, "UnsupportedStageError")
    assert "61107" in info.value.details and "Nothing was paused" in info.value.details
    assert [e["operation"] for e in module_simulator.requests if e["operation"] != "token"] == ["get"]
    assert module_simulator.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"


@pytest.mark.parametrize(
    ("overrides", "name", "reason"),
    [
        ({"pipeline_id": "pl\x00running"}, "pipeline_id", "control character '\\x00'"),
        ({"pipeline_id": "pl-running\nrm -rf"}, "pipeline_id", "control character '\\n'"),
        ({"stage_instance_name": "FixedTimeWindowAggregator_\x851"}, "stage_instance_name", "'\\x85'"),
        ({"org_id": "o" * 257}, "org_id", "257 characters long; at most 256"),
        (
            {"stage_instance_name": "FixedTimeWindowAggregator_" + "1" * 300},
            "stage_instance_name",
            "at most 256",
        ),
        ({"asset_ids": ["a1", "a\x9b2"]}, "asset_ids", "control character '\\x9b'"),
        ({"point_ids": ["p" * 300]}, "point_ids", "an ID is 300 characters long"),
        ({"point_ids": "p1,p\u20282"}, "point_ids", "control character"),
    ],
)
def test_control_characters_and_absurd_lengths_are_refused_at_preview(
    provider_host: HostedProvider,
    clean_module_simulator: None,
    module_simulator: Simulator,
    overrides: dict[str, Any],
    name: str,
    reason: str,
) -> None:
    ((failed, text),) = preview_failures(provider_host, **overrides)
    assert failed == name and reason in text, text
    assert module_simulator.requests == []


def test_a_mistyped_enos_key_is_refused_at_preview_naming_the_near_one(
    host_factory: HostFactory, module_simulator: Simulator
) -> None:
    h = host_factory(module_simulator, settings={"enos:apiGateWay": "https://apim.example.com"})
    ((name, reason),) = preview_failures(h)
    assert name == ""  # a problem of the resource's provider settings, not of one input
    assert (
        "stack config enos:apiGateWay is not an enos-pulumi setting: did you mean enos:apiGateway?" in reason
    )
    assert "pulumi config rm enos:apiGateWay" in reason


@pytest.mark.parametrize(
    ("where", "options", "reason"),
    [
        ("config", {"gateway": "http://apim.example.com"}, "stack config enos:apiGateway uses plain http://"),
        ("config", {"gateway": "https://user:pw@apim.example.com"}, "without credentials"),
        (
            "env",
            {"env": {"ENOS_API_GATEWAY": "http://apim.example.com"}},
            "ENOS_API_GATEWAY uses plain http://",
        ),
    ],
)
def test_a_gateway_up_would_refuse_is_refused_at_preview_without_any_secret(
    host_factory: HostFactory, module_simulator: Simulator, where: str, options: dict[str, Any], reason: str
) -> None:
    # A pull-request job: no access key, no secret key; only the gateway, and it is wrong.
    if where == "env":
        options["gateway"] = ""  # no enos:apiGateway in the stack config: the variable counts
    h = host_factory(module_simulator, access_key=None, secret_key=None, **options)
    ((name, text),) = preview_failures(h)
    assert name == "" and reason in text
    assert "pw" not in text


def test_a_preview_without_credentials_is_fine(
    host_factory: HostFactory, module_simulator: Simulator
) -> None:
    h = host_factory(module_simulator, access_key=None, secret_key=None)
    module_simulator.clear_log()
    assert h.engine.preview("no-secret", h.inputs()).op == "create"
    assert module_simulator.requests == []


@pytest.mark.parametrize(
    ("where", "options", "reason"),
    [
        (
            "config",
            {"settings": {"enos:operationTimeoutSeconds": "five"}},
            "stack config enos:operationTimeoutSeconds must be a number from 1 to 86400, got 'five'",
        ),
        (
            "config",
            {"settings": {"enos:authScheme": "oauth2"}},
            "stack config enos:authScheme must be one of apim-signature, bearer, got 'oauth2'",
        ),
        (
            "config",
            {"settings": {"enos:parallelRequests": "0"}},
            "stack config enos:parallelRequests must be a whole number from 1 to 32, got '0'",
        ),
        (
            "config",
            {"settings": {"enos:resetTimeoutSeconds": "0.5"}},
            "stack config enos:resetTimeoutSeconds must be a number from 1 to 86400, got '0.5'",
        ),
        (
            "env",
            {"env": {"ENOS_READ_TIMEOUT_SECONDS": "-1"}},
            "environment variable ENOS_READ_TIMEOUT_SECONDS must be a number from 0.1 to 600, got '-1'",
        ),
    ],
)
def test_a_setting_up_would_refuse_is_refused_at_preview_without_any_secret(
    host_factory: HostFactory, module_simulator: Simulator, where: str, options: dict[str, Any], reason: str
) -> None:
    h = host_factory(module_simulator, access_key=None, secret_key=None, **options)
    module_simulator.clear_log()
    ((name, text),) = preview_failures(h)
    assert name == "" and text == reason, text
    assert module_simulator.requests == []


def test_a_ca_bundle_this_machine_lacks_is_no_problem_at_preview(
    host_factory: HostFactory, module_simulator: Simulator
) -> None:
    # The path is the update machine's: a preview job elsewhere need not have the file.
    h = host_factory(
        module_simulator, access_key=None, secret_key=None, settings={"enos:caBundle": "/nonexistent/ca.pem"}
    )
    assert h.engine.preview("ca", h.inputs()).op == "create"
