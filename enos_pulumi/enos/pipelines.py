"""Pipeline operations: List Pipelines (paged), a pipeline's status, and Operate Pipeline."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from .answers import clean
from .calls import Caller
from .errors import UnexpectedAnswerError
from .model import Deadline
from .request import DEFAULT_MAX_VALUES, Request

__all__ = ["PIPELINES_PATH", "PIPELINE_PAGE_SIZE", "PIPELINE_PATH", "list_pipelines", "operate", "status_of"]

PIPELINES_PATH = "/streaming/v2.0/streaming/pipelines"
PIPELINE_PATH = "/streaming/v2.0/streaming/pipeline/"
PIPELINE_PAGE_SIZE = 100
LIST = "List Pipelines"
#: A gateway that pages forever (a growing count, pages of new IDs) still ends.
MAX_PAGES = 1_000
MAX_PIPELINES = 100_000


def _page(envelope: dict[str, Any], org_id: str, page: int) -> tuple[list[dict[str, Any]], int | None]:
    """The pipelines of one page, each checked, and the total ``count`` if the answer gives one."""

    def refuse(what: str) -> UnexpectedAnswerError:
        rid = envelope.get("requestId")
        return UnexpectedAnswerError(
            operation=LIST,
            message=f"page {page}: {what}",
            code=0,
            request_id=rid if isinstance(rid, str) else None,
            http_status=200,
            target=f"org {org_id}",
            context={"org_id": org_id},
        )

    data = envelope.get("data")
    if not isinstance(data, dict):
        raise refuse(f"data is {type(data).__name__}; expected an object with count and pipelines")
    pipelines = data.get("pipelines")
    if pipelines is None:
        pipelines = []
    if not isinstance(pipelines, list):
        raise refuse(f"pipelines is {type(pipelines).__name__}; expected a list")
    for index, entry in enumerate(pipelines):
        if not isinstance(entry, dict) or not isinstance(entry.get("pipelineId"), str):
            raise refuse(f"entry {index} has no string pipelineId")
        if not isinstance(entry.get("status"), (str, type(None))):
            raise refuse(f"entry {index} ({entry['pipelineId'][:80]}) has a status that is not a string")
    count = data.get("count")
    valid_count = count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None
    return pipelines, valid_count


def list_pipelines(
    caller: Caller, org_id: str, until: Deadline, page_size: int = PIPELINE_PAGE_SIZE
) -> Iterator[dict[str, Any]]:
    """Every released pipeline of the organization, page by page (lazily).

    Paging goes on until ``count`` pipelines were seen or a page comes back empty, whatever the page
    size the gateway really used (some cap it below ours); a gateway that ignores ``pageNo`` and repeats
    a page is stopped by the repetition.
    """
    seen: set[str] = set()
    for page in range(1, MAX_PAGES + 2):
        if page > MAX_PAGES:
            raise UnexpectedAnswerError(
                operation=LIST,
                message=f"still more pipelines after {MAX_PAGES:,} pages; refusing to page on",
                code=0,
                target=f"org {org_id}",
                context={"org_id": org_id},
            )
        request = Request(
            "GET",
            PIPELINES_PATH,
            {"orgId": org_id, "pageNo": str(page), "pageSize": str(page_size), "ifReleased": "true"},
            None,
            LIST,
            f"org {org_id}",
            context={"org_id": org_id},
            until=until,
            # A page of entries (more than asked for, if the gateway ignores pageSize), each of some fields.
            max_values=256 * page_size + DEFAULT_MAX_VALUES,
        )
        envelope, _ = caller.call(request)
        pipelines, count = _page(envelope, org_id, page)
        fresh = [p for p in pipelines if p["pipelineId"] not in seen]
        if not fresh:
            return  # an empty page, or a server that ignores pageNo and would be paged forever
        seen.update(p["pipelineId"] for p in fresh)
        if len(seen) > MAX_PIPELINES:
            raise UnexpectedAnswerError(
                operation=LIST,
                message=f"more than {MAX_PIPELINES:,} pipelines listed; refusing to page on",
                code=0,
                target=f"org {org_id}",
                context={"org_id": org_id},
            )
        yield from fresh
        if count is not None and len(seen) >= count:
            return


def status_of(caller: Caller, org_id: str, pipeline_id: str, until: Deadline) -> str | None:
    """The pipeline's status (PUBLISHED, RUNNING, PAUSED, STOPPED...), or None if it is not listed."""
    for pipeline in list_pipelines(caller, org_id, until):
        if pipeline["pipelineId"] == pipeline_id:
            status = pipeline.get("status")
            if status is None:
                return "UNKNOWN"
            # Shown in errors: an odd value is cleaned, never trusted as text.
            return clean(str(status), caller.redactor(), 40).upper() or "UNKNOWN"
    return None


def _json_body(body: Mapping[str, Any] | None) -> bytes:
    try:
        text = json.dumps(dict(body or {}), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as exc:  # NaN or Infinity: not JSON, so no gateway would read it
        raise ValueError(f"the Operate Pipeline body holds a value JSON cannot carry: {exc}") from None
    return text.encode()


def operate(
    caller: Caller,
    org_id: str,
    pipeline_id: str,
    action: str,
    body: Mapping[str, Any] | None,
    until: Deadline | None = None,
    failed_attempts: list[BaseException] | None = None,
) -> dict[str, Any]:
    """Operate Pipeline (pause, start, stop...); ``start`` needs ``executionMode`` and ``kafkaRate``."""
    request = Request(
        "POST",
        PIPELINE_PATH + quote(pipeline_id, safe=""),
        {"action": action, "orgId": org_id},
        _json_body(body),
        f"Operate Pipeline ({action})",
        f"pipeline {pipeline_id}",
        context={"org_id": org_id, "pipeline_id": pipeline_id},
        until=until,
    )
    envelope, _ = caller.call(request, failed_attempts=failed_attempts)
    return envelope
