"""Running a tiling of asset x point batches: in parallel (bounded), splitting what EnOS finds too big."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from .calls import Caller, is_split_error
from .errors import EnosError, OperationTimeoutError
from .ids import Batch, plan_tiling
from .model import Deadline, StageTarget
from .request import DEFAULT_MAX_VALUES, Request

__all__ = ["run_batches"]

#: (requestId or None, what the handler made of the envelope), one per successful request.
Result = tuple[str | None, Any]


def run_batches(
    caller: Caller,
    *,
    path: str,
    action: str,
    operation: str,
    target: StageTarget,
    assets: Sequence[str],
    points: Sequence[str],
    body: Callable[[Batch], bytes],
    handle: Callable[[dict[str, Any], Batch], Any],
    until: Deadline,
    max_values: Callable[[Batch], int] | None = None,
) -> list[Result]:
    """Send every batch of the tiling; results in request order.

    A 61105 (too many points) or HTTP 413 (body too large) answer to a batch splits it in two and sends
    both halves. Each request retries within its own budget; none starts after ``until`` (the
    operation's total bound). On the first failure no new batch starts; the ones in flight finish, and
    the error says how many had succeeded.
    """
    settings = caller.settings
    if not assets or not points:
        raise ValueError("asset and point sets must be non-empty")
    tiling = plan_tiling(len(assets), len(points), settings.max_pairs_per_request)
    batches = list(tiling.batches())
    total = len(batches)
    query = {"action": action, "orgId": target.org_id}
    context = {
        "org_id": target.org_id,
        "pipeline_id": target.pipeline_id,
        "stage_instance_name": target.stage_instance_name,
    }
    succeeded = _Counter()

    def send(batch: Batch, number: int) -> list[Result]:
        # A loop, not recursion: a self-referencing closure would keep the ID lists alive until the
        # garbage collector runs, tens of MB for a big reset.
        done: list[Result] = []
        pending = [batch]
        while pending:
            part = pending.pop()
            if caller.retry.clock() >= until.at:
                raise OperationTimeoutError(
                    operation,
                    str(target),
                    until.seconds,
                    until.setting,
                    f"{succeeded.value} of {total} requests had succeeded; running pulumi up again "
                    f"retries the whole reset",
                )
            split_part = part is not batch
            try:
                request = Request(
                    "POST",
                    path,
                    query,
                    body(part),
                    operation,
                    str(target),
                    context=context,
                    until=until,
                    max_values=max_values(part) if max_values is not None else DEFAULT_MAX_VALUES,
                    event={
                        "batch": number,
                        "batches": total,
                        "assets": part.asset_count,
                        "points": part.point_count,
                    },
                    splittable=part.pairs > 1,
                    split_part=split_part,
                )
                envelope, handled = caller.call(request, accept=functools.partial(_handle, handle, part))
            except EnosError as exc:
                if not is_split_error(exc, operation) or part.pairs <= 1:
                    raise
                first, second = part.split()
                pending += [second, first]  # first half next, keeping request order
                continue
            rid = envelope.get("requestId")
            done.append((rid if isinstance(rid, str) and rid else None, handled))
        succeeded.add()
        return done

    workers = min(settings.parallel_requests, total)
    if workers <= 1:
        results: list[list[Result]] = []
        for i, batch in enumerate(batches):
            try:
                results.append(send(batch, i + 1))
            except EnosError as exc:
                _note_progress(exc, i, total)
                raise
        return [item for chunk in results for item in chunk]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="enos-batch") as pool:
        futures = [pool.submit(send, batch, i + 1) for i, batch in enumerate(batches)]
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            future.cancel()  # only those not started yet; leaving the block waits for the rest
    finished = [f for f in futures if not f.cancelled()]
    failed = [f for f in finished if f.exception() is not None]
    if failed:
        error = failed[0].exception()
        assert error is not None
        if isinstance(error, EnosError):
            _note_progress(error, len(finished) - len(failed), total)
        raise error
    return [item for f in futures for item in f.result()]


def _handle(handle: Callable[[dict[str, Any], Batch], Any], part: Batch, envelope: dict[str, Any]) -> Any:
    return handle(envelope, part)


class _Counter:
    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.value += 1


def _note_progress(exc: EnosError, succeeded: int, total: int) -> None:
    if total > 1 and not isinstance(exc, OperationTimeoutError):
        exc.append_to_message(
            f"[{succeeded} of {total} requests had succeeded; deleting again is harmless, "
            f"so running pulumi up again retries the whole reset]"
        )
