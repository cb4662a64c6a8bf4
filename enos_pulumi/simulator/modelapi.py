"""Editing the simulator's model from Python: apps, pipelines, stage state, seeds (mixed into
:class:`.server.Simulator`, whose ``_store`` they edit)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .seeds import load_seed_file
from .store import Store

__all__ = ["ModelMethods"]


class ModelMethods:
    _store: Store

    def add_app(self, access_key: str, secret_key: str, orgs: Iterable[str] | None = None) -> None:
        """Register an application; ``orgs`` limits the organizations it may act on (None: any)."""
        self._store.add_app(access_key, secret_key, orgs)

    def add_pipeline(
        self,
        org_id: str,
        pipeline_id: str,
        status: str = "PAUSED",
        name: str | None = None,
        released: bool = True,
    ) -> None:
        """Add (or update) a pipeline; pipeline IDs are unique across organizations."""
        self._store.pipelines.add(org_id, pipeline_id, status, name, released)

    def pipeline_status(self, org_id: str, pipeline_id: str) -> str:
        """The status List Pipelines shows now (an operation still in progress has not changed it)."""
        pipeline = self._store.pipelines.get(org_id, pipeline_id)
        if pipeline is None:
            raise KeyError(f"no pipeline {pipeline_id} in org {org_id}")
        return pipeline.status

    def set_pipeline_status(self, org_id: str, pipeline_id: str, status: str) -> None:
        """Set a status at once (no transition is recorded; an operation in progress is dropped)."""
        self._store.pipelines.set_status(org_id, pipeline_id, status)

    def set_state(
        self,
        org_id: str,
        pipeline_id: str,
        stage: str,
        asset_id: str,
        point_id: str,
        value: Any = 0.0,
        time: int | None = None,
    ) -> None:
        """Give one (asset, point) pair state; ``time`` is Unix ms (default: the clock's now)."""
        self._store.set_pairs(org_id, pipeline_id, stage, [asset_id], [point_id], value, time)

    def set_pairs(
        self,
        org_id: str,
        pipeline_id: str,
        stage: str,
        asset_ids: Iterable[str],
        point_ids: Sequence[str],
        value: Any = 0.0,
        time: int | None = None,
    ) -> int:
        """Give every pair of ``asset_ids`` x ``point_ids`` state; returns the number of pairs."""
        return self._store.set_pairs(org_id, pipeline_id, stage, asset_ids, point_ids, value, time)

    def stage_pairs(self, org_id: str, pipeline_id: str, stage: str) -> set[tuple[str, str]]:
        """The (asset, point) pairs that currently have state in one stage."""
        return self._store.state.stage_pairs(org_id, pipeline_id, stage)

    def pair_count(self) -> int:
        """The number of pairs with state, over every org, pipeline and stage."""
        return self._store.state.pair_count()

    def seed(self, seed: Mapping[str, Any]) -> dict[str, int]:
        """Add apps, pipelines and state from a mapping; returns counts of apps, pipelines and pairs."""
        return self._store.seed(seed)

    def load_seed(self, path: str | Path) -> dict[str, int]:
        """Like :meth:`seed`, from a JSON (``.json``) or YAML file."""
        return self._store.seed(load_seed_file(path))
