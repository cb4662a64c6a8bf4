"""What the provider host answers: a failed call as :class:`HostError`, a Diff as :class:`DiffReply`."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DiffReply", "HostError"]


class HostError(Exception):
    """A gRPC call to the host failed; ``details`` is what the user would read (the provider's traceback
    with recent pulumi SDKs, ``Exception calling application: <text>`` with older ones such as 3.139)."""

    def __init__(self, method: str, details: str, code: str = "UNKNOWN") -> None:
        super().__init__(f"{method} failed in the provider host:\n{details}")
        self.method = method
        self.details = details
        self.code = code
        #: The provider's exception class name (e.g. ``"PipelineNotPausedError"``) when the host sent its
        #: traceback (pulumi >= 3.146), else None; ``error_message`` is its text either way.
        #: ``"CallTimeout"`` when the kit's own ``call_timeout`` cut the call.
        self.error_type, self.error_message = _raised(details)


def _raised(details: str) -> tuple[str | None, str]:
    prefix = "Exception calling application: "
    if details.startswith(prefix):
        return None, details[len(prefix) :].strip()
    lines = [line for line in details.strip().splitlines() if line.strip()]
    if "Traceback" not in details or not lines:
        return None, details.strip()
    # The exception's line follows the last frame's source lines; a message may span several lines.
    last_frame = max((i for i, line in enumerate(lines) if line.startswith("  ")), default=-1)
    raised = "\n".join(lines[last_frame + 1 :]) or lines[-1]
    name, sep, message = raised.partition(": ")
    if not sep or " " in name:
        return None, raised
    return name.rsplit(".", 1)[-1], message


@dataclass(frozen=True)
class DiffReply:
    """The host's ``DiffResponse``: ``changes`` is DIFF_UNKNOWN=0, DIFF_NONE=1 or DIFF_SOME=2."""

    changes: int
    replaces: list[str] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    #: A provider's detailed diff (property path -> ``PropertyDiff.Kind``), when it sent one.
    detailed_diff: dict[str, int] = field(default_factory=dict)
