"""Drive the client or the provider through the hostile peer and check the invariants of every run.

The invariants: a run ends within its bound; it ends as a success or as an ``EnosError`` naming
the operation, never another exception; and no secret (the secret key, a token, a signature, a token
``encryption``, a URL password) appears in anything a user can read: the exception's text, repr and whole
traceback (chained causes included: the Pulumi host shows them), its pickle, the progress lines, stderr,
logging and warnings, ``repr(client)`` and ``repr(settings)``. Beyond the issue: no thread the run started
outlives it by more than a second.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import pickle
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from enos_pulumi.enos import auth
from enos_pulumi.enos.client import SESSIONS, EnosClient, RequestEvent, StageTarget
from enos_pulumi.enos.errors import EnosError
from enos_pulumi.enos.settings import Settings
from tests.support.hostile_peer import PIPELINE

__all__ = [
    "ACCESS_KEY",
    "ASSETS",
    "OPERATIONS",
    "ORG",
    "POINTS",
    "SECRET_KEY",
    "STAGE",
    "TARGET",
    "Run",
    "assert_holds",
    "bound",
    "call_for",
    "drive",
    "fresh_caches",
    "make_settings",
    "provider_env",
    "provider_props",
    "violations",
]

SECRET_KEY = "Hx9Qv2Lm7Zt4Wp8Rk3Nb6Yc1"  # a test value with no word in it, so any echo is found
ACCESS_KEY = "hostile-access-key"
ORG = "o-hostile"
STAGE = "LastRecordAppender_01"
TARGET = StageTarget(ORG, PIPELINE, STAGE)
ASSETS = ("a1", "a2")
POINTS = ("p1", "p2")

ATTEMPT_TIMEOUT = 1.0
RETRY_DEADLINE = 1.0
CONNECT_TIMEOUT = 1.0
RESET_TIMEOUT = 3.0
#: A bound, not a speed target: generous for a shared 2-core machine.
SLACK = 1.5

#: The operation each endpoint serves, as error texts and progress lines must name it.
OPERATIONS = {
    "token": "Get access token",
    "delete": "Delete Stage State",
    "get": "Get Stage State",
    "list": "List Pipelines",
}


def fresh_caches() -> None:
    """No token or pooled connection from another run may serve this one."""
    auth.TOKENS.clear()
    SESSIONS.clear()


def make_settings(gateway: str, **overrides: Any) -> Settings:
    """Small bounds: attempt 1 s, retry deadline 1 s, connect 1 s, reset 3 s.

    ``attempt_timeout``, ``reset_timeout`` and ``max_answer_bytes`` are the contract's new fields; they
    are passed only where ``Settings`` has them, so that on a client without them every other invariant
    still runs (``test_settings_carry_the_new_bounds`` pins that they exist).
    """
    values: dict[str, Any] = {
        "api_gateway": gateway,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": ATTEMPT_TIMEOUT,
        "retry_deadline": RETRY_DEADLINE,
        "attempt_timeout": ATTEMPT_TIMEOUT,
        "reset_timeout": RESET_TIMEOUT,
    }
    values.update(overrides)
    known = {f.name for f in dataclasses.fields(Settings)}
    return Settings(**{key: value for key, value in values.items() if key in known})


def _setting(settings: Settings, name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def bound(settings: Settings, *, whole_reset: bool = False) -> float:
    """How long a run may take: its retry budget plus two attempts (a token fetch and the call), plus
    slack. One request's budget is its retry deadline; a whole reset's (many requests) is reset_timeout."""
    reset = _setting(settings, "reset_timeout", RESET_TIMEOUT)
    budget = reset if whole_reset else min(settings.retry_deadline, reset)
    return budget + 2 * _setting(settings, "attempt_timeout", ATTEMPT_TIMEOUT) + SLACK


def call_for(endpoint: str, client: EnosClient) -> Callable[[], Any]:
    """The client operation whose requests reach ``endpoint`` (the token endpoint: any; a delete)."""
    if endpoint == "get":
        return lambda: client.get_stage_state(TARGET, ASSETS, POINTS)
    if endpoint == "list":
        return lambda: client.pipeline_status(ORG, PIPELINE)
    return lambda: client.delete_stage_state(TARGET, ASSETS, POINTS)


def provider_env(gateway: str, **extra: str) -> dict[str, str]:
    env = {
        "ENOS_API_GATEWAY": gateway,
        "ENOS_ACCESS_KEY": ACCESS_KEY,
        "ENOS_SECRET_KEY": SECRET_KEY,
        "ENOS_ATTEMPT_TIMEOUT_SECONDS": str(ATTEMPT_TIMEOUT),
        "ENOS_RETRY_DEADLINE_SECONDS": str(RETRY_DEADLINE),
        "ENOS_RESET_TIMEOUT_SECONDS": str(RESET_TIMEOUT),
        "ENOS_CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT),
        "ENOS_READ_TIMEOUT_SECONDS": str(ATTEMPT_TIMEOUT),
    }
    env.update(extra)
    return env


def provider_props(**overrides: Any) -> dict[str, Any]:
    """Checked inputs, as the host hands them to create."""
    props: dict[str, Any] = {
        "org_id": ORG,
        "pipeline_id": PIPELINE,
        "stage_instance_name": STAGE,
        "asset_ids": list(ASSETS),
        "point_ids": list(POINTS),
        "require_paused": True,
        "verify": False,
        "trigger": None,
    }
    props.update(overrides)
    return props


@dataclass
class Run:
    """What one run produced: its value or error, how long it took, and every text a user could read."""

    value: Any = None
    error: BaseException | None = None
    elapsed: float = 0.0
    events: list[RequestEvent] = field(default_factory=list)
    stderr: str = ""
    log: str = ""
    #: Threads the run started that were still alive a second after it returned.
    leftover_threads: list[str] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return [event.describe() for event in self.events]

    def outcome(self) -> str:
        if self.error is None:
            return f"success {self.value!r:.200}"
        return f"{type(self.error).__name__}: {str(self.error)[:600]}"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.records.append(self.format(record))
        except Exception as exc:  # a record that cannot even be formatted is recorded as such
            self.records.append(f"<unformattable log record: {exc!r}>")


@contextlib.contextmanager
def _captured() -> Iterator[tuple[io.StringIO, _Collect, list[warnings.WarningMessage]]]:
    root = logging.getLogger()
    handler = _Collect()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    stderr = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(stderr):
            warnings.simplefilter("always")
            yield stderr, handler, caught
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


# The process-wide watchdog (one thread for every attempt, idle-exits after a minute) is by design.
_LONG_LIVED = ("hostile-", "enos-watchdog")


def _leftovers(before: set[threading.Thread], grace: float = 1.0) -> list[str]:
    """Threads started since ``before`` (the peer's and the watchdog aside) still alive after ``grace``
    seconds."""
    until = time.monotonic() + grace
    while True:
        extra = [
            t.name
            for t in threading.enumerate()
            if t not in before and t.is_alive() and not t.name.startswith(_LONG_LIVED)
        ]
        if not extra or time.monotonic() > until:
            return extra
        time.sleep(0.02)


def drive(call: Callable[[], Any], events: list[RequestEvent] | None = None) -> Run:
    """Run ``call`` once, timing it and capturing stderr, logging and warnings."""
    run = Run(events=events if events is not None else [])
    before = set(threading.enumerate())
    with _captured() as (stderr, handler, caught):
        started = time.monotonic()
        try:
            run.value = call()
        except Exception as exc:  # any type: the invariants judge it
            run.error = exc
        run.elapsed = time.monotonic() - started
    run.stderr = stderr.getvalue()
    run.log = "\n".join([*handler.records, *(str(w.message) for w in caught)])
    # A thread left reading a socket after its attempt "timed out" is a leak that grows with every retry.
    run.leftover_threads = _leftovers(before)
    return run


def _texts(run: Run, extra: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    texts: dict[str, str] = dict(extra)
    problems: list[str] = []
    exc = run.error
    if exc is not None:
        texts["str(exc)"] = str(exc)
        texts["repr(exc)"] = repr(exc)
        texts["traceback"] = "".join(traceback.format_exception(exc))
        try:
            texts["pickle(exc)"] = pickle.dumps(exc).decode("latin-1")
        except Exception as pickling:
            problems.append(f"pickle.dumps(exc) raised {type(pickling).__name__}: {pickling}")
    try:
        texts["progress"] = "\n".join(run.lines)
    except Exception as describing:
        problems.append(f"RequestEvent.describe() raised {type(describing).__name__}: {describing}")
    texts["stderr"] = run.stderr
    texts["log"] = run.log
    return texts, problems


def violations(
    run: Run,
    *,
    secrets: Iterable[str],
    operations: Iterable[str],
    limit: float,
    expect: str = "any",
    extra_texts: Mapping[str, str] | None = None,
) -> list[str]:
    """Every invariant this run breaks, as readable lines (empty when it holds).

    ``operations``: the error must name one of them. ``expect``: "ok", "error" or "any".
    """
    found: list[str] = []
    if run.elapsed > limit:
        found.append(f"took {run.elapsed:.1f} s, bound {limit:.1f} s")
    if run.leftover_threads:
        found.append(f"threads outlived the run: {', '.join(run.leftover_threads)}")
    exc = run.error
    names = list(operations)
    if exc is not None:
        if not isinstance(exc, EnosError):
            found.append(f"escaped as {type(exc).__module__}.{type(exc).__name__}, not an EnosError")
        elif not any(name in str(exc) for name in names):
            found.append(f"error does not name the operation ({' or '.join(names)})")
        if expect == "ok":
            found.append("failed where a success was expected")
    elif expect == "error":
        found.append("succeeded where an error was expected")
    texts, problems = _texts(run, extra_texts or {})
    found += problems
    for secret in {SECRET_KEY, *secrets}:
        # A prefix too: a cut line can carry part of a secret.
        needles = {secret, secret[:12]} if len(secret) >= 12 else {secret}
        for where, text in texts.items():
            if any(needle in text for needle in needles):
                found.append(f"a secret ({_kind(secret)}) appears in {where}")
    return found


def _kind(secret: str) -> str:
    if secret == SECRET_KEY:
        return "the secret key"
    if len(secret) == 64 and all(c in "0123456789abcdef" for c in secret):
        return "a signature or token encryption"
    return "a token or password"


def assert_holds(run: Run, found: list[str]) -> None:
    assert not found, "; ".join(dict.fromkeys(found)) + f" [outcome: {run.outcome()}]"
