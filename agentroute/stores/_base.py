"""The `TraceStore` contract every backend fulfils, and the read models it returns."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from agentroute.errors import ConfigurationError, RunNotFinished, RunNotFound
from agentroute.stores._records import (
    GENESIS_HASH,
    AgentOutputRecord,
    DecisionRecord,
    FeedbackRecord,
    ModelCallRecord,
    RunEndRecord,
    RunRecord,
    RunStatus,
    StateRecord,
    TraceRecord,
)

__all__ = ["BudgetKeyStatus", "RunSummary", "RunTrace", "TraceStore", "VerifyReport"]


class RunSummary(BaseModel):
    """One line of `list_runs`."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    created_at: float
    task: str
    status: RunStatus | None
    """`None` while the run has no end record (running, or its process died)."""
    cost_usd: float = 0.0
    steps: int = 0
    answer: str | None = None


class RunTrace(BaseModel):
    """Every record of one run, in chain order."""

    model_config = ConfigDict(frozen=True)

    run: RunRecord
    records: tuple[TraceRecord, ...]
    """All records including `run`, sorted by `seq`."""

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.run.run_id

    @property
    def decisions(self) -> list[DecisionRecord]:
        """Decision records in order."""
        return [r for r in self.records if isinstance(r, DecisionRecord)]

    @property
    def model_calls(self) -> list[ModelCallRecord]:
        """Model-call records in order."""
        return [r for r in self.records if isinstance(r, ModelCallRecord)]

    @property
    def outputs(self) -> list[AgentOutputRecord]:
        """Agent-output records in order."""
        return [r for r in self.records if isinstance(r, AgentOutputRecord)]

    @property
    def feedback(self) -> list[FeedbackRecord]:
        """Feedback records in order."""
        return [r for r in self.records if isinstance(r, FeedbackRecord)]

    @property
    def end(self) -> RunEndRecord | None:
        """The run's end record, if it ended."""
        for r in reversed(self.records):
            if isinstance(r, RunEndRecord):
                return r
        return None


class VerifyReport(BaseModel):
    """Result of checking one run's hash chain."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    ok: bool
    """True when every link holds."""
    records: int
    complete: bool
    """True when the run has an end record."""
    problems: list[str] = Field(default_factory=list)
    """What is wrong, one entry per broken link or gap."""


class BudgetKeyStatus(BaseModel):
    """The totals of one shared budget key (operational state, not part of any trace)."""

    model_config = ConfigDict(frozen=True)

    key: str
    limit_usd: float | None = None
    """The limit last asked for with this key."""
    strong_limit: int | None = None
    spent_usd: float = 0.0
    """Settled spend of every run charging the key."""
    reserved_usd: float = 0.0
    """Reservations in flight that have not expired."""
    strong_used: int = 0
    strong_reserved: int = 0
    open_reservations: int = 0


def verify_chain(run_id: str, records: Sequence[TraceRecord]) -> VerifyReport:
    """Check a run's records: sequence without gaps, each link's hash, each `prev_hash`."""
    problems: list[str] = []
    ordered = sorted(records, key=lambda r: r.seq)
    prev = GENESIS_HASH
    expected_seq = 0
    for rec in ordered:
        if rec.seq < expected_seq:
            problems.append(f"seq {rec.seq} appears more than once: a record was inserted")
        elif rec.seq > expected_seq:
            gap = (
                f"seq {expected_seq}"
                if rec.seq == expected_seq + 1
                else f"seq {expected_seq}..{rec.seq - 1}"
            )
            problems.append(f"{gap} missing (next is {rec.seq}): records were deleted")
            prev = rec.prev_hash  # resynchronise so one deletion is reported once
        if rec.prev_hash != prev:
            problems.append(
                f"seq {rec.seq} ({rec.kind}): prev_hash does not match seq {rec.seq - 1}"
            )
        if rec.compute_hash() != rec.hash:
            problems.append(f"seq {rec.seq} ({rec.kind}): content does not match its hash (edited)")
        prev = rec.hash
        expected_seq = rec.seq + 1
    if not ordered or not isinstance(ordered[0], RunRecord):
        problems.append("the run's start record (seq 0) is missing")
    complete = any(isinstance(r, RunEndRecord) for r in ordered)
    return VerifyReport(
        run_id=run_id, ok=not problems, records=len(ordered), complete=complete, problems=problems
    )


class TraceStore(ABC):
    """Where runs are recorded. Append-only; every backend passes the same conformance suite.

    `append` may buffer (the SQL store writes in batches on a background thread); `flush`
    blocks until everything appended before it is durable; `close` flushes. A store is a context
    manager.
    """

    url: str = ""
    """Where the store lives (with any password removed)."""

    # -- writing -----------------------------------------------------------------------------

    @abstractmethod
    def append(self, records: Sequence[TraceRecord]) -> None:
        """Append sealed records (their `hash` already set). May return before they are durable.

        Raises:
            StoreUnavailable: Earlier writes failed and the database is still unreachable; the
                records are kept and retried.
        """

    def flush(self, timeout: float | None = None) -> None:  # noqa: B027 - optional hook
        """Block until every record appended so far is durable.

        Raises:
            StoreUnavailable: The database could not be written within `timeout`.
        """

    def close(self) -> None:
        """Flush and release resources. Idempotent."""
        self.flush()

    @abstractmethod
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
        """Append feedback to a run's chain (after the run's own records).

        Raises:
            RunNotFound: No such run.
            RunNotFinished: The run has no end record yet (it is still running, or its
                process has not flushed it).
            ValueError: `score` is outside [0, 1], or neither score nor label is given.
        """

    # -- reading -----------------------------------------------------------------------------

    @abstractmethod
    def list_runs(
        self, *, limit: int = 50, offset: int = 0, status: str | None = None
    ) -> list[RunSummary]:
        """List runs, newest first."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunTrace:
        """Return every record of one run.

        Raises:
            RunNotFound: No such run (the message lists how to find ids).
        """

    def has_run(self, run_id: str) -> bool:
        """Whether the store holds any record of `run_id`."""
        try:
            return bool(self._raw_records(run_id))
        except RunNotFound:
            return False

    @abstractmethod
    def run_ids(self) -> list[str]:
        """Every run id in the store, oldest first."""

    def iter_runs(self) -> Iterator[RunTrace]:
        """Yield every run's trace, oldest first."""
        for run_id in self.run_ids():
            yield self.get_run(run_id)

    def verify(self, run_id: str) -> VerifyReport:
        """Check one run's hash chain.

        Raises:
            RunNotFound: No such run.
        """
        self.flush()
        records = self._raw_records(run_id)
        return verify_chain(run_id, records)

    @abstractmethod
    def _raw_records(self, run_id: str) -> list[TraceRecord]:
        """Every record of a run as stored, unsorted and unchecked (for `verify`)."""

    # -- learned state -----------------------------------------------------------------------

    @abstractmethod
    def get_state(self, key: str, version: int | None = None) -> StateRecord | None:
        """Return the latest (or a given) version of a learned state, or `None`."""

    @abstractmethod
    def put_state(
        self, key: str, value: dict[str, Any], *, expected_version: int | None, note: str = ""
    ) -> StateRecord:
        """Append the next version of a learned state.

        Args:
            key: The state's key.
            value: The new state.
            expected_version: The version the writer read (`None` or 0 when it read nothing).
                The write fails when another writer got there first.
            note: Why this version is written.

        Raises:
            StateConflict: The latest version is not `expected_version`; re-read and retry.
        """

    @abstractmethod
    def list_state(self, key: str) -> list[StateRecord]:
        """Every version of a learned state, oldest first."""

    # -- shared budget ledgers ---------------------------------------------------------------

    keeps_budgets: bool = False
    """Whether this store keeps shared budget keys (`Budget(key=...)`)."""

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
        """Atomically reserve `amount_nano` nano-dollars (and a strong call) on a budget key.

        Under the key's lock: expired reservations are dropped, then the reservation is
        accepted only when settled spend + open reservations + the amount stays within
        `limit_usd` (and strong calls used + in flight stay below `strong_limit`).

        Returns:
            The new reservation's id (`None` when refused) and the key's status before it.

        Raises:
            ConfigurationError: The store keeps no budget ledgers.
        """
        raise self._no_budgets()

    def budget_settle(
        self, key: str, reservation_id: int, *, actual_nano: int, strong: bool
    ) -> BudgetKeyStatus:
        """Charge a call's actual cost to the key and drop its reservation (even if expired).

        Raises:
            ConfigurationError: The store keeps no budget ledgers.
        """
        raise self._no_budgets()

    def budget_release(self, key: str, reservation_id: int) -> BudgetKeyStatus:
        """Drop a reservation whose call was never charged.

        Raises:
            ConfigurationError: The store keeps no budget ledgers.
        """
        raise self._no_budgets()

    def budget_status(self, key: str) -> BudgetKeyStatus:
        """The key's totals (zeros for a key never used).

        Raises:
            ConfigurationError: The store keeps no budget ledgers.
        """
        raise self._no_budgets()

    def budget_reset(self, key: str) -> None:
        """Forget a key's spend and reservations (e.g. at the start of a billing period).

        Raises:
            ConfigurationError: The store keeps no budget ledgers.
        """
        raise self._no_budgets()

    def _no_budgets(self) -> ConfigurationError:
        msg = (
            f"{type(self).__name__} keeps no shared budget ledgers; use InMemoryTraceStore or "
            "SqlTraceStore for Budget(key=...)"
        )
        return ConfigurationError(msg)

    # -- helpers -----------------------------------------------------------------------------

    def _next_feedback(
        self,
        last: TraceRecord,
        *,
        ended: bool,
        score: float | None,
        label: str | None,
        agent: str | None,
        comment: str | None,
        source: str,
    ) -> FeedbackRecord:
        if score is None and label is None:
            msg = "feedback needs a score (0..1) or a label"
            raise ValueError(msg)
        if score is not None and not 0.0 <= score <= 1.0:
            msg = f"feedback score must be within [0, 1], got {score}"
            raise ValueError(msg)
        if not ended:
            msg = (
                f"run {last.run_id!r} has not ended: it has no end record in this store yet "
                "(it is still running, or its process has not flushed it); give feedback once "
                "it has finished"
            )
            raise RunNotFinished(msg)
        rec = FeedbackRecord(
            run_id=last.run_id,
            seq=last.seq + 1,
            created_at=time.time(),
            prev_hash=last.hash,
            score=score,
            label=label,
            agent=agent,
            comment=comment,
            source=source,
        )
        return rec.sealed()  # type: ignore[no-any-return]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
