"""The operator types whose stage state the API reads and deletes, told apart by the stage instance
name's prefix (EnOS answers 61107 for any other operator), and a suggestion for a mistyped one."""

from __future__ import annotations

import difflib
import re

__all__ = ["STAGE_TYPES", "stage_type_of", "suggest_stage_type"]

STAGE_TYPES = (
    "LastRecordAppender",
    "LastChangedRecordAppender",
    "LatestRecordMerger",
    "RecordCapturer",
    "LatePointTagger",
    "FixedTimeWindowAggregator",
    "SlidingTimeWindowAggregator",
)

_HEAD = re.compile(r"[A-Za-z]+")


def stage_type_of(stage_instance_name: str) -> str | None:
    """The known operator type the name starts with, or None."""
    return next((t for t in STAGE_TYPES if stage_instance_name.startswith(t)), None)


def suggest_stage_type(stage_instance_name: str) -> str | None:
    """The known operator type nearest to the name's leading word (a typo, another case), or None."""
    head = _HEAD.match(stage_instance_name)
    if head is None:
        return None
    by_lower = {t.lower(): t for t in STAGE_TYPES}
    close = difflib.get_close_matches(head.group().lower(), list(by_lower), n=1, cutoff=0.75)
    return by_lower[close[0]] if close else None
