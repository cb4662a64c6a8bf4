"""The simulator's in-memory model: apps and their tokens, pipelines (:mod:`.pipelines`), stage state
(:mod:`.stagestate`) and the faults in force (:mod:`.faults`); seeding and forgetting it all.

Apps, tokens, pipelines and state share one lock, so that a handler can check a pipeline and act on its
state in one step. Times come from ``clock`` (seconds, like ``time.time``).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import LOG_LIMIT
from .faults import ActiveFaults
from .pipelines import Pipelines
from .seeds import SeedError, parse_seed
from .stagestate import StageState

__all__ = ["App", "Store"]


@dataclass
class App:
    access_key: str
    secret_key: str = field(repr=False)
    orgs: frozenset[str] | None = None  # None: the app may act on any organization

    def may_access(self, org_id: str) -> bool:
        return self.orgs is None or org_id in self.orgs


@dataclass
class _TokenRecord:
    app_key: str
    expires_at: float


class Store:
    """Thread-safe model behind the simulator; ``history_limit`` bounds the transitions kept."""

    def __init__(self, clock: Callable[[], float], history_limit: int = LOG_LIMIT) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.apps: dict[str, App] = {}
        self.pipelines = Pipelines(clock, self.lock, history_limit)
        self.state = StageState(self.lock)
        self.faults = ActiveFaults()
        self.tokens_issued = 0
        self.connections_opened = 0
        self._tokens: dict[str, _TokenRecord] = {}
        self._used_encryptions: set[str] = set()

    # -- apps and tokens -------------------------------------------------------------------------------

    def add_app(self, access_key: str, secret_key: str, orgs: Iterable[str] | None = None) -> None:
        if not access_key or not secret_key:
            raise ValueError("an app needs a non-empty access key and secret key")
        with self.lock:
            self.apps[access_key] = App(access_key, secret_key, None if orgs is None else frozenset(orgs))

    def use_encryption(self, encryption: str) -> bool:
        """Record a token request's ``encryption``; False if it was seen before (a replay)."""
        with self.lock:
            if encryption in self._used_encryptions:
                return False
            self._used_encryptions.add(encryption)
            return True

    def issue_token(self, app_key: str, lifetime_s: float) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            self._tokens[token] = _TokenRecord(app_key, self.clock() + lifetime_s)
            self.tokens_issued += 1
        return token

    def token_app(self, token: str) -> tuple[App | None, bool]:
        """The app a token was issued to (None if unknown) and whether the token is still live."""
        with self.lock:
            record = self._tokens.get(token)
            if record is None:
                return None, False
            return self.apps.get(record.app_key), self.clock() < record.expires_at

    def revoke_token(self, token: str) -> None:
        with self.lock:
            record = self._tokens.get(token)
            if record is not None:
                record.expires_at = float("-inf")

    def expire_tokens(self) -> int:
        """Expire every live token now (they stay known, so callers get 1203 rather than 'unknown')."""
        with self.lock:
            now = self.clock()
            live = [r for r in self._tokens.values() if r.expires_at > now]
            for record in live:
                record.expires_at = float("-inf")
            return len(live)

    def identity(self, access_key: str | None) -> tuple[App | None, str | None]:
        """App ``access_key`` (default: the first app) and its first organization, else the first
        pipeline's; KeyError for an unknown ``access_key``."""
        with self.lock:
            app = (
                self.apps.get(access_key) if access_key is not None else next(iter(self.apps.values()), None)
            )
            if access_key is not None and app is None:
                raise KeyError(f"no app {access_key!r}")
            orgs = sorted(app.orgs) if app is not None and app.orgs else []
            first_pipeline = next(iter(self.pipelines.by_id.values()), None)
        return app, orgs[0] if orgs else first_pipeline.org_id if first_pipeline else None

    def count_connection(self) -> None:
        with self.lock:
            self.connections_opened += 1

    # -- stage state -----------------------------------------------------------------------------------

    def set_pairs(
        self,
        org_id: str,
        pipeline_id: str,
        stage: str,
        assets: Iterable[str],
        points: Sequence[str],
        value: Any = 0.0,
        time_ms: int | None = None,
    ) -> int:
        """Give every (asset, point) of ``assets`` x ``points`` of an existing pipeline the same state
        (``time_ms`` defaults to the clock's now); returns the pair count."""
        if time_ms is None:
            time_ms = int(self.clock() * 1000)
        with self.lock:
            if self.pipelines.get(org_id, pipeline_id) is None:
                raise ValueError(f"unknown pipeline {pipeline_id} in org {org_id}; add it first")
            return self.state.set_pairs(org_id, pipeline_id, stage, assets, points, value, time_ms)

    # -- the whole -------------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Apps (access keys only), pipelines with status and pair counts per stage, faults, counters."""
        with self.lock:
            self.pipelines.settle_all()
            pipelines = [
                {
                    **p.to_json(),
                    "orgId": p.org_id,
                    "released": p.released,
                    "stages": self.state.stage_counts(p.org_id, p.pipeline_id),
                    "pending": None
                    if p.pending is None
                    else {"action": p.pending.action, "to": p.pending.target},
                }
                for p in self.pipelines.by_id.values()
            ]
            return {
                "apps": sorted(self.apps),
                "pipelines": pipelines,
                "faults": [f.to_dict() for f in self.faults.copies()],
                "tokens_issued": self.tokens_issued,
                "connections_opened": self.connections_opened,
            }

    def clear(self) -> None:
        """Forget everything but the connection count (the token count too)."""
        with self.lock:
            self.apps.clear()
            self.pipelines.by_id.clear()
            self.pipelines.transitions.clear()
            self.state.clear()
            self.faults.clear()
            self._tokens.clear()
            self._used_encryptions.clear()
            self.tokens_issued = 0

    def seed(self, seed: Mapping[str, Any]) -> dict[str, int]:
        """Add apps, pipelines and state from a seed mapping (see :data:`.seeds.SEED_FORMAT`).

        Validates everything before changing anything, so a bad seed leaves the store as it was.
        """
        parsed = parse_seed(seed)
        pairs = 0
        with self.lock:
            for org_id, pipeline_id, *_ in parsed.pipelines:
                existing = self.pipelines.by_id.get(pipeline_id)
                if existing is not None and existing.org_id != org_id:
                    raise SeedError(f"pipeline {pipeline_id} already belongs to org {existing.org_id}")
            for access_key, secret_key, orgs in parsed.apps:
                self.add_app(access_key, secret_key, orgs)
            for org_id, pipeline_id, status, name, released, blocks in parsed.pipelines:
                self.pipelines.add(org_id, pipeline_id, status, name, released)
                for stage, assets, points, value, time_ms in blocks:
                    pairs += self.set_pairs(org_id, pipeline_id, stage, assets, points, value, time_ms)
        return {"apps": len(parsed.apps), "pipelines": len(parsed.pipelines), "pairs": pairs}
