"""The plugin's Check never quotes a secret input's value, through the plugin process: whatever is wrong
with it (a control character, an over-long value, a comma inside a list item, an unknown stage type, the
wrong type), no failure reason holds any part of it, raw or escaped, whole, windowed or cut.

(The dynamic provider is never told which inputs were secret and quotes them: see test_secrets.py.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from enos_pulumi.enos.stage_types import STAGE_TYPES
from enos_pulumi.testing import secret
from tests.support.plugin_fixtures import plugin_inputs

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites

if TYPE_CHECKING:
    from tests.support.plugin_fixtures import HostedPlugin

pytest_plugins = ["tests.support.plugin_fixtures"]

STAGE = "FixedTimeWindowAggregator_"  # public: every stage name that gets past the type check has one
LONG = "qzjx-" + "vk7Qw" * 60  # 305 characters
CONTROL = "qzjx-vk7\x01Qw-hush"


def _texts(value: Any) -> list[str]:
    """The value as text, and as Python would escape it (what a reason quoting it would hold)."""
    if isinstance(value, str):
        return [value, repr(value)[1:-1]]
    if isinstance(value, float):
        return [repr(value), str(int(value))] if value.is_integer() else [repr(value), str(value)]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in _texts(item)]
    return [str(value), str(value).lower()]  # True is written "true"


def _pieces(value: Any) -> set[str]:
    """Every 4-character piece of the value's texts, except pieces of a public stage type name."""
    pieces = {text[i : i + 4] for text in _texts(value) for i in range(max(len(text) - 3, 1))}
    return {piece for piece in pieces if not any(piece in name for name in STAGE_TYPES)}


CASES: list[tuple[str, Any]] = [
    ("pipelineId", CONTROL),
    ("pipelineId", LONG),
    ("pipelineId", ["qz,jx-vk7"]),
    ("pipelineId", 7341.0),
    ("stageInstanceName", STAGE + CONTROL),
    ("stageInstanceName", STAGE + LONG),
    ("stageInstanceName", "Qzjxvk7Window_1"),  # no known operator type
    ("stageInstanceName", "FixedTimeWindowAgregator_qzjx"),  # a near miss: no "did you mean" either
    ("stageInstanceName", ["qz,jx-vk7"]),
    ("assetIds", ["a1", CONTROL]),
    ("assetIds", "a1," + CONTROL),
    ("assetIds", ["a1", LONG]),
    ("assetIds", ["a1", "qz\\jx,vk7-Qw"]),  # a comma (and a backslash) inside a list item
    ("assetIds", ["a1", 7341.0]),
    ("pointIds", ["p1", CONTROL]),
    ("pointIds", "p1," + LONG),
    ("pointIds", ["qzjx,vk7Qw"]),
    ("pointIds", 7341.5),
    ("orgId", CONTROL),
    ("orgId", LONG),
    ("orgId", ["qz,jx-vk7"]),
    ("orgId", 7341.0),
    ("trigger", float("inf")),
    ("trigger", ["qz,jx-vk7"]),
    ("trigger", True),
    ("resumeExecutionMode", "qzjx-vk7-mode"),  # a pause input: its check quotes, the plugin does not
    ("resumeExecutionMode", LONG),
    ("resumePolicy", LONG),
]


@pytest.mark.parametrize(("name", "value"), CASES)
def test_no_failure_reason_quotes_a_secret_input(plugin: HostedPlugin, name: str, value: Any) -> None:
    overrides = {name: secret(value)}
    if name == "resumeExecutionMode":
        overrides["pausePipeline"] = True
    _, failures = plugin.host.check(plugin.engine.urn("secret-check"), {}, plugin_inputs(**overrides))
    assert [prop for prop, _ in failures] == [name], failures  # it is refused, and for this input
    ((_, reason),) = failures
    leaked = sorted(piece for piece in _pieces(value) if piece in reason)
    assert not leaked, (reason, leaked)
    assert "did you mean" not in reason


def test_the_same_values_not_secret_are_quoted(plugin: HostedPlugin) -> None:
    """The check itself is unchanged for a value that is not secret: the reason quotes it."""
    _, failures = plugin.host.check(
        plugin.engine.urn("plain-check"), {}, plugin_inputs(pipelineId=CONTROL, assetIds=["qz,jx"])
    )
    reasons = dict(failures)
    assert "'\\x01'" in reasons["pipelineId"] and "qzjx-vk7" in reasons["pipelineId"]
    assert "'qz,jx'" in reasons["assetIds"]
    _, failures = plugin.host.check(
        plugin.engine.urn("plain-stage"), {}, plugin_inputs(stageInstanceName="FixedTimeWindowAgregator_1")
    )
    assert "did you mean FixedTimeWindowAggregator?" in failures[0][1]
