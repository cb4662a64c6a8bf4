"""Running a tiling of asset x point batches: in parallel (bounded), splitting what EnOS finds too big."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from .calls import Caller, is_split_error
from .errors import EnosError, OperationTimeoutError
from .ids import Batch, plan_tiling
from .model import Deadline, StageTarget
from .request import DEFAULT_MAX_VALUES, Request

__all__ = ["BatchedOperation", "run_batches"]

#: (requestId or None, what the handler made of the envelope), one per successful request.
Result = tuple[str | None, Any]


def _default_max_values(_batch: Batch) -> int:
    return DEFAULT_MAX_VALUES


@dataclass(frozen=True)
class BatchedOperation:
    """An operation on every asset x point pair of a stage: one POST to ``path?action=...`` per batch,
    with ``body(batch)``; ``handle(envelope, batch)`` judges each success envelope (it may raise)."""

    operation: str
    path: str
    action: str
    target: StageTarget
    assets: Sequence[str]
    points: Sequence[str]
    body: Callable[[Batch], bytes]
    handle: Callable[[dict[str, Any], Batch], Any]
    #: How many JSON values the answer to a batch may hold.
    max_values: Callable[[Batch], int] = _default_max_values


def run_batches(caller: Caller, operation: BatchedOperation, until: Deadline) -> list[Result]:
    """Send every batch of the tiling; results in request order.

    A 61105 (too many points) or HTTP 413 (body too large) answer to a batch splits it in two and sends
    both halves. Each request retries within its own budget; none starts after ``until`` (the
    operation's total bound). On the first failure no new batch starts; the ones in flight finish, and
    the error says how many had succeeded.
    """
    if not operation.assets or not operation.points:
        raise ValueError("asset and point sets must be non-empty")
    settings = caller.settings
    tiling = plan_tiling(len(operation.assets), len(operation.points), settings.max_pairs_per_request)
    run = _Run(caller, operation, until, list(tiling.batches()))
    workers = min(settings.parallel_requests, run.total)
    return run.in_turn() if workers <= 1 else run.in_parallel(workers)


class _Run:
    """One run of a tiling: its batches, the bound they share, and how many have succeeded."""

    def __init__(self, caller: Caller, operation: BatchedOperation, until: Deadline, batches: list[Batch]):
        self._caller = caller
        self._op = operation
        self._until = until
        self._batches = batches
        self.total = len(batches)
        self._succeeded = _Counter()
        target = operation.target
        self._query = {"action": operation.action, "orgId": target.org_id}
        self._context = {
            "org_id": target.org_id,
            "pipeline_id": target.pipeline_id,
            "stage_instance_name": target.stage_instance_name,
        }

    def in_turn(self) -> list[Result]:
        results: list[Result] = []
        for i, batch in enumerate(self._batches):
            try:
                results += self._send(batch, i + 1)
            except EnosError as exc:
                _note_progress(exc, i, self.total)
                raise
        return results

    def in_parallel(self, workers: int) -> list[Result]:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="enos-batch") as pool:
            futures = [pool.submit(self._send, batch, i + 1) for i, batch in enumerate(self._batches)]
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                future.cancel()  # only those not started yet; leaving the block waits for the rest
        finished = [f for f in futures if not f.cancelled()]
        failed = [f for f in finished if f.exception() is not None]
        if failed:
            error = failed[0].exception()
            assert error is not None
            if isinstance(error, EnosError):
                _note_progress(error, len(finished) - len(failed), self.total)
            raise error
        return [item for f in futures for item in f.result()]

    def _send(self, batch: Batch, number: int) -> list[Result]:
        """Batch ``number``, and the halves of it EnOS finds too big, in request order."""
        done: list[Result] = []
        pending = [batch]
        while pending:
            part = pending.pop()
            self._check_bound()
            try:
                done.append(self._call(part, number, split_part=part is not batch))
            except EnosError as exc:
                if not is_split_error(exc, self._op.operation) or part.pairs <= 1:
                    raise
                first, second = part.split()
                pending += [second, first]  # first half next, keeping request order
        self._succeeded.add()
        return done

    def _call(self, part: Batch, number: int, *, split_part: bool) -> Result:
        # The request is built here, not in the loop: its body (megabytes, maybe) is gone when it returns.
        accept = functools.partial(_handle, self._op, part)
        envelope, handled = self._caller.call(self._request(part, number, split_part), accept=accept)
        rid = envelope.get("requestId")
        return (rid if isinstance(rid, str) and rid else None, handled)

    def _check_bound(self) -> None:
        if self._caller.retry.clock() >= self._until.at:
            raise OperationTimeoutError(
                self._op.operation,
                str(self._op.target),
                self._until.seconds,
                self._until.setting,
                f"{self._succeeded.value} of {self.total} requests had succeeded; running pulumi up again "
                f"retries the whole reset",
            )

    def _request(self, part: Batch, number: int, split_part: bool) -> Request:
        op = self._op
        return Request(
            "POST",
            op.path,
            self._query,
            op.body(part),
            op.operation,
            str(op.target),
            context=self._context,
            until=self._until,
            max_values=op.max_values(part),
            event={
                "batch": number,
                "batches": self.total,
                "assets": part.asset_count,
                "points": part.point_count,
            },
            splittable=part.pairs > 1,
            split_part=split_part,
        )


def _handle(operation: BatchedOperation, part: Batch, envelope: dict[str, Any]) -> Any:
    return operation.handle(envelope, part)


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
