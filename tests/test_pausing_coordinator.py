"""The pause coordinator's own rules, with a scripted client: which reset pauses, who waits, who resumes,
and that no reset ever goes on unpaused after the pause it waited for failed."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from enos_pulumi.enos.errors import EnosError, ServerError
from enos_pulumi.enos.model import Deadline, StageTarget
from enos_pulumi.pausing import PauseCoordinator, Resume

TARGET = StageTarget("o1", "p1", "FixedTimeWindowAggregator_1")
RESUME = Resume("standalone", 1000)


@dataclass
class FakeSettings:
    api_gateway: str = "https://gw.example.test"


@dataclass
class ScriptedClient:
    """Pipeline status RUNNING until paused; each pause waits for ``release`` then fails or succeeds."""

    pause_outcomes: list[BaseException | None]
    release: threading.Event = field(default_factory=threading.Event)
    status: str = "RUNNING"
    log: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    settings: FakeSettings = field(default_factory=FakeSettings)

    def operation_deadline(self) -> Deadline:
        return Deadline(time.monotonic() + 30, 30, "enos:operationTimeoutSeconds")

    def pipeline_status(self, org: str, pid: str, *, until: Any = None) -> str:
        return self.status

    def warn(self, target: str, text: str) -> None:
        self.warnings.append(text)

    def pause_pipeline(self, org: str, pid: str, *, wait: bool = True, until: Any = None) -> None:
        self.log.append("pause")
        self.release.wait(10)
        outcome = self.pause_outcomes.pop(0)
        if outcome is not None:
            raise outcome
        self.status = "PAUSED"

    def wait_for_status(self, org: str, pid: str, status: str, *, until: Any = None) -> None:
        assert self.status == status

    def start_pipeline(self, *args: Any, **kwargs: Any) -> str:
        self.log.append("start")
        self.status = "RUNNING"
        return "rid-start"


def run_in_thread(fn: Any) -> tuple[threading.Thread, list[Any]]:
    results: list[Any] = []

    def target() -> None:
        try:
            results.append(fn())
        except BaseException as exc:
            results.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, results


def test_a_follower_of_a_failed_pause_never_goes_on_even_if_another_pause_began() -> None:
    coordinator = PauseCoordinator()
    client = ScriptedClient([ServerError(operation="Operate Pipeline (pause)", message="down"), None])
    deleted: list[str] = []

    def reset(name: str) -> Any:
        return lambda: coordinator.run(client, TARGET, RESUME, lambda: deleted.append(name), lambda: None)  # type: ignore[arg-type]

    leader, leader_result = run_in_thread(reset("leader-1"))
    time.sleep(0.1)
    follower, follower_result = run_in_thread(reset("follower"))
    time.sleep(0.1)
    client.release.set()  # the first pause fails...
    leader.join(5)
    second, second_result = run_in_thread(reset("leader-2"))  # ...and a new leader starts pausing at once
    follower.join(5)
    second.join(5)
    assert isinstance(leader_result[0], ServerError)
    assert isinstance(follower_result[0], ServerError)
    assert "another reset of this pipeline tried to pause it" in str(follower_result[0])
    assert "follower" not in deleted  # it never deleted without a pause
    assert second_result[0] == (None, True) and deleted == ["leader-2"]
    assert client.log == ["pause", "pause", "start"]


def test_an_interrupted_leader_does_not_hand_its_interrupt_to_other_threads() -> None:
    coordinator = PauseCoordinator()
    client = ScriptedClient([KeyboardInterrupt()])

    def reset() -> Any:
        return coordinator.run(client, TARGET, RESUME, lambda: "deleted", lambda: None)  # type: ignore[arg-type]

    leader, leader_result = run_in_thread(reset)
    time.sleep(0.1)
    follower, follower_result = run_in_thread(reset)
    time.sleep(0.1)
    client.release.set()
    leader.join(5)
    follower.join(5)
    assert isinstance(leader_result[0], KeyboardInterrupt)
    assert isinstance(follower_result[0], EnosError)
    assert "was interrupted" in str(follower_result[0]) and "Nothing was deleted" in str(follower_result[0])


@pytest.mark.parametrize("status", ["PAUSED"])
def test_a_pipeline_paused_by_someone_else_is_reset_and_left_paused(status: str) -> None:
    coordinator = PauseCoordinator()
    client = ScriptedClient([], status=status)
    result = coordinator.run(client, TARGET, RESUME, lambda: "deleted", lambda: None)  # type: ignore[arg-type]
    assert result == ("deleted", False)
    assert client.log == []
