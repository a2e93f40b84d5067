"""`InMemoryTraceStore`: the store for tests and throwaway runs."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentroute.errors import RunNotFound, StateConflict
from agentroute.stores._base import BudgetKeyStatus, RunSummary, RunTrace, TraceStore
from agentroute.stores._records import (
    FeedbackRecord,
    RunEndRecord,
    RunRecord,
    StateRecord,
    TraceRecord,
)

__all__ = ["InMemoryTraceStore"]


@dataclass
class _BudgetKey:
    limit_usd: float | None = None
    strong_limit: int | None = None
    spent_nano: int = 0
    strong_used: int = 0
    # reservation id -> (nano-dollars, strong, expires_at)
    open: dict[int, tuple[int, bool, float]] = field(default_factory=dict)

    def drop_expired(self, now: float) -> None:
        for rid in [r for r, (_, _, exp) in self.open.items() if exp <= now]:
            del self.open[rid]

    def status(self, key: str) -> BudgetKeyStatus:
        return BudgetKeyStatus(
            key=key,
            limit_usd=self.limit_usd,
            strong_limit=self.strong_limit,
            spent_usd=self.spent_nano / 1e9,
            reserved_usd=sum(a for a, _, _ in self.open.values()) / 1e9,
            strong_used=self.strong_used,
            strong_reserved=sum(1 for _, s, _ in self.open.values() if s),
            open_reservations=len(self.open),
        )


class InMemoryTraceStore(TraceStore):
    """Keeps every record in process memory. Thread-safe; lost when the process ends.

    Shared budget keys live here too: every router using this store instance shares them.
    """

    url = "memory://"
    keeps_budgets = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, list[TraceRecord]] = {}
        self._state: dict[str, list[StateRecord]] = {}
        self._budgets: dict[str, _BudgetKey] = {}
        self._reservation_ids = itertools.count(1)

    def append(self, records: Sequence[TraceRecord]) -> None:
        """Append sealed records; they are visible at once."""
        with self._lock:
            for rec in records:
                self._runs.setdefault(rec.run_id, []).append(rec)

    def add_feedback(
        self,
        run_id: str,
        *,
        score: float | None = None,
        label: str | None = None,
        agent: str | None = None,
        comment: str | None = None,
        source: str = "user",
    ) -> FeedbackRecord:
        """Append feedback to a run's chain."""
        with self._lock:
            chain = self._chain(run_id)
            last = max(chain, key=lambda r: r.seq)
            rec = self._next_feedback(
                last,
                ended=any(isinstance(r, RunEndRecord) for r in chain),
                score=score,
                label=label,
                agent=agent,
                comment=comment,
                source=source,
            )
            chain.append(rec)
            return rec

    def list_runs(
        self, *, limit: int = 50, offset: int = 0, status: str | None = None
    ) -> list[RunSummary]:
        """List runs, newest first."""
        with self._lock:
            chains = [list(c) for c in self._runs.values()]
        summaries = [s for s in (_summarise(c) for c in chains) if s is not None]
        if status is not None:
            summaries = [s for s in summaries if s.status == status]
        summaries.sort(key=lambda s: s.created_at, reverse=True)
        return summaries[offset : offset + limit]

    def get_run(self, run_id: str) -> RunTrace:
        """Return every record of one run, in chain order."""
        with self._lock:
            records = sorted(self._chain(run_id), key=lambda r: r.seq)
        run = next((r for r in records if isinstance(r, RunRecord)), None)
        if run is None:
            raise RunNotFound(f"run {run_id!r} has no start record")
        return RunTrace(run=run, records=tuple(records))

    def run_ids(self) -> list[str]:
        """Every run id, oldest first."""
        with self._lock:
            firsts = [(c[0].created_at, rid) for rid, c in self._runs.items() if c]
        return [rid for _, rid in sorted(firsts)]

    def _raw_records(self, run_id: str) -> list[TraceRecord]:
        with self._lock:
            return list(self._chain(run_id))

    def _chain(self, run_id: str) -> list[TraceRecord]:
        try:
            return self._runs[run_id]
        except KeyError:
            msg = f"no run {run_id!r} in this store (list ids with `agentroute runs list`)"
            raise RunNotFound(msg) from None

    def get_state(self, key: str, version: int | None = None) -> StateRecord | None:
        """Return the latest (or a given) version of a learned state."""
        with self._lock:
            versions = self._state.get(key, [])
            if not versions:
                return None
            if version is None:
                return versions[-1]
            return next((v for v in versions if v.version == version), None)

    def put_state(
        self, key: str, value: dict[str, Any], *, expected_version: int | None, note: str = ""
    ) -> StateRecord:
        """Append the next version of a learned state (optimistic concurrency)."""
        with self._lock:
            versions = self._state.setdefault(key, [])
            current = versions[-1].version if versions else 0
            if (expected_version or 0) != current:
                msg = (
                    f"state {key!r} is at version {current}, not {expected_version}; "
                    "re-read it and apply your change again"
                )
                raise StateConflict(msg)
            rec = StateRecord(
                key=key, version=current + 1, value=value, created_at=time.time(), note=note
            )
            versions.append(rec)
            return rec

    def list_state(self, key: str) -> list[StateRecord]:
        """Every version of a learned state, oldest first."""
        with self._lock:
            return list(self._state.get(key, []))

    # -- shared budget ledgers ---------------------------------------------------------------

    def budget_reserve(
        self,
        key: str,
        *,
        amount_nano: int,
        strong: bool,
        limit_usd: float | None,
        strong_limit: int | None,
        run_id: str,
        ttl_s: float,
    ) -> tuple[int | None, BudgetKeyStatus]:
        """Reserve atomically under the store's lock (see `TraceStore.budget_reserve`)."""
        del run_id
        now = time.time()
        with self._lock:
            state = self._budgets.setdefault(key, _BudgetKey())
            state.limit_usd, state.strong_limit = limit_usd, strong_limit
            state.drop_expired(now)
            before = state.status(key)
            reserved = sum(a for a, _, _ in state.open.values())
            strong_open = sum(1 for _, s, _ in state.open.values() if s)
            if limit_usd is not None and state.spent_nano + reserved + amount_nano > round(
                limit_usd * 1e9
            ):
                return None, before
            if (
                strong
                and strong_limit is not None
                and state.strong_used + strong_open >= (strong_limit)
            ):
                return None, before
            rid = next(self._reservation_ids)
            state.open[rid] = (amount_nano, strong, now + ttl_s)
            return rid, before

    def budget_settle(
        self, key: str, reservation_id: int, *, actual_nano: int, strong: bool
    ) -> BudgetKeyStatus:
        """Charge the actual cost and drop the reservation."""
        with self._lock:
            state = self._budgets.setdefault(key, _BudgetKey())
            state.open.pop(reservation_id, None)
            state.spent_nano += actual_nano
            state.strong_used += int(strong)
            return state.status(key)

    def budget_release(self, key: str, reservation_id: int) -> BudgetKeyStatus:
        """Drop a reservation."""
        with self._lock:
            state = self._budgets.setdefault(key, _BudgetKey())
            state.open.pop(reservation_id, None)
            return state.status(key)

    def budget_status(self, key: str) -> BudgetKeyStatus:
        """The key's totals."""
        with self._lock:
            state = self._budgets.get(key)
            if state is None:
                return BudgetKeyStatus(key=key)
            state.drop_expired(time.time())
            return state.status(key)

    def budget_reset(self, key: str) -> None:
        """Forget the key."""
        with self._lock:
            self._budgets.pop(key, None)


def _summarise(chain: list[TraceRecord]) -> RunSummary | None:
    run = next((r for r in chain if isinstance(r, RunRecord)), None)
    if run is None:
        return None
    end = next((r for r in reversed(chain) if isinstance(r, RunEndRecord)), None)
    return RunSummary(
        run_id=run.run_id,
        created_at=run.created_at,
        task=run.task,
        status=end.status if end else None,
        cost_usd=end.cost_usd if end else 0.0,
        steps=end.steps if end else 0,
        answer=end.answer if end else None,
    )
