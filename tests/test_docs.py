"""The docs' runnable examples run: a reference whose example fails is worse than none."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
# The blocks that say they run: the ones under a heading that says "example".
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def runnable_blocks(name: str) -> list[str]:
    text = (DOCS / name).read_text()
    section = text.split("## A complete example", 1)[1].split("\n## ", 1)[0]
    return _BLOCK.findall(section)


@pytest.mark.parametrize("block", runnable_blocks("api.md"))
def test_api_reference_example_runs(block: str) -> None:
    namespace: dict[str, object] = {"__name__": "docs_example"}
    exec(compile(block, "docs/api.md", "exec"), namespace)
    assert namespace["report"] is not None
