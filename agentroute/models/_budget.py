"""Hard budgets: reserve before a call, settle after, never exceed.

Two ledgers share one interface:

- `BudgetLedger` keeps one run's spend in process memory (a `Budget` without a `key`);
- `SharedBudgetLedger` charges a budget *key* kept in the trace store (`Budget(key="tenant-42")`):
  every reservation is an atomic row operation in the store, so parallel branches, concurrent
  runs and separate processes that share the key never pass its limit together.

Both count USD and, optionally, calls to strong-tier models. A reservation is the call's
worst-case cost (estimated input plus the full output cap); settling replaces it with the actual
cost. Reservations of a process that died expire after `Budget.reservation_ttl_s`.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentroute._log import get_logger
from agentroute.errors import BudgetExceeded, ConfigurationError, StoreUnavailable
from agentroute.models._protocol import ModelRequest
from agentroute.registry import ModelSpec

__all__ = [
    "Budget",
    "BudgetLedger",
    "BudgetSnapshot",
    "LedgerStore",
    "Reservation",
    "SharedBudgetLedger",
    "estimate_cost_usd",
    "estimate_input_tokens",
    "from_nano",
    "ledger_for_run",
    "open_ledger",
    "to_nano",
]

log = get_logger(__name__)

_T = TypeVar("_T")

NANO = 1_000_000_000
"""Ledgers count money in integer nano-dollars, so sums are exact across any number of rows."""


def to_nano(usd: float, *, up: bool = False) -> int:
    """USD → integer nano-dollars (`up=True` rounds up: reservations never under-reserve)."""
    scaled = usd * NANO
    return math.ceil(scaled - 1e-6) if up else round(scaled)


def from_nano(nano: int) -> float:
    """Integer nano-dollars → USD."""
    return nano / NANO


class Budget(BaseModel):
    """A hard limit on model spend: per run, or shared by every run that names the same `key`.

    ```python
    Budget(usd=0.05)                                   # this run only
    Budget(usd=20.0, strong_calls=100, key="tenant-42")  # shared, also across processes
    ```
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    usd: float | None = Field(default=None, gt=0)
    """Most USD that may be spent on model calls; `None` = unlimited. Must be positive."""
    strong_calls: int | None = Field(default=None, ge=0)
    """Most calls to models of a `strong_tiers` tier; `None` = unlimited, 0 = never."""
    key: str | None = Field(default=None, min_length=1, max_length=200)
    """Share the budget with every run naming this key, through the router's trace store
    (in-memory store: this process; SQL store: every process on the database)."""
    strong_tiers: tuple[str, ...] = ("strong",)
    """Model tiers whose calls count against `strong_calls`."""
    reservation_ttl_s: float = Field(default=900.0, gt=0)
    """Floor on how long a reservation is held; a call's own timeout and retries extend it. A
    reservation never settled (its process died) stops counting after this."""

    @field_validator("usd")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            msg = "Budget(usd=...) must be a finite positive number of dollars"
            raise ValueError(msg)
        return value

    def counts_as_strong(self, tier: str | None) -> bool:
        """Whether a call on a model of `tier` counts against `strong_calls`."""
        return tier is not None and tier in self.strong_tiers


class Reservation(BaseModel):
    """Spend set aside for one call in flight."""

    model_config = ConfigDict(frozen=True)

    id: int
    amount_usd: float
    strong: bool = False
    """The call counts against `Budget.strong_calls`."""


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    """A ledger's state at one moment (for a shared key: the key's totals over every run)."""

    limit_usd: float | None
    spent_usd: float
    reserved_usd: float
    strong_limit: int | None = None
    strong_used: int = 0
    strong_reserved: int = 0
    key: str | None = None

    @property
    def remaining_usd(self) -> float | None:
        """USD left after spend and reservations; `None` when unlimited."""
        if self.limit_usd is None:
            return None
        return max(0.0, self.limit_usd - self.spent_usd - self.reserved_usd)

    @property
    def strong_remaining(self) -> int | None:
        """Strong calls left after use and reservations; `None` when unlimited."""
        if self.strong_limit is None:
            return None
        return max(0, self.strong_limit - self.strong_used - self.strong_reserved)

    def affords(self, amount_usd: float, *, strong: bool = False) -> bool:
        """Whether a call of `amount_usd` (strong or not) fits what is left."""
        if strong and self.strong_remaining is not None and self.strong_remaining < 1:
            return False
        left = self.remaining_usd
        return left is None or to_nano(amount_usd, up=True) <= to_nano(left)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for decision evidence."""
        out = asdict(self)
        out["remaining_usd"] = self.remaining_usd
        out["strong_remaining"] = self.strong_remaining
        return out


def estimate_input_tokens(request: ModelRequest) -> int:
    """Upper-leaning estimate of a request's input tokens without a tokenizer.

    English averages about four characters per token; three per token plus a per-message
    overhead over-estimates for almost all text, which is the safe side for a reservation.
    """
    return math.ceil(request.prompt_chars() / 3) + 4 * len(request.messages) + 3


def estimate_cost_usd(spec: ModelSpec, request: ModelRequest) -> float:
    """The most a call is expected to cost: estimated input plus the full output cap."""
    return spec.cost_usd(estimate_input_tokens(request), request.output_cap)


def _refusal(
    what: str,
    amount_usd: float,
    strong: bool,
    snap: BudgetSnapshot,
) -> BudgetExceeded:
    where = f"budget key {snap.key!r}" if snap.key else "the run's budget"
    if strong and snap.strong_remaining is not None and snap.strong_remaining < 1:
        msg = (
            f"{what} is a strong-tier call but {where} allows {snap.strong_limit} strong calls "
            f"and {snap.strong_used} are used, {snap.strong_reserved} in flight; raise "
            "Budget(strong_calls=...) or route the step to a cheaper tier"
        )
    else:
        limit = snap.limit_usd or 0.0
        msg = (
            f"{what} needs up to ${amount_usd:.6f} but {where} of ${limit:.6f} has "
            f"${limit - snap.spent_usd - snap.reserved_usd:.6f} left; raise Budget(usd=...), "
            "lower max_output_tokens, or use a cheaper model"
        )
    return BudgetExceeded(
        msg,
        limit_usd=snap.limit_usd if snap.limit_usd is not None else math.inf,
        spent_usd=snap.spent_usd,
        reserved_usd=snap.reserved_usd,
        requested_usd=amount_usd,
    )


_BY_RUN: weakref.WeakValueDictionary[str, BudgetLedger] = weakref.WeakValueDictionary()


def ledger_for_run(run_id: str) -> BudgetLedger | None:
    """The ledger of a run in progress in this process (strategies read its snapshot)."""
    return _BY_RUN.get(run_id)


class BudgetLedger:
    """Tracks one run's spend in memory. Thread-safe; shared by every branch of the run.

    Every call reserves its estimated cost first; the reservation fails with `BudgetExceeded`
    when settled spend plus reservations in flight plus the estimate would pass the limit (or a
    strong-tier call would pass `Budget.strong_calls`). After the call the reservation is settled
    with the actual cost (or released when the call failed).
    """

    blocking = False
    """Whether reserve/settle touch a database (callers in an event loop use a thread)."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.budget = budget or Budget()
        self.limit_usd: float | None = self.budget.usd
        self._lock = threading.Lock()
        self._spent = 0
        self._strong_used = 0
        self._open: dict[int, tuple[int, bool]] = {}
        self._ids = itertools.count(1)

    @property
    def key(self) -> str | None:
        """The shared budget key (`None`: this run only)."""
        return None

    @property
    def spent_usd(self) -> float:
        """What this run has spent (settled)."""
        return from_nano(self._spent)

    @property
    def reserved_usd(self) -> float:
        """Spend reserved by this run's calls in flight."""
        with self._lock:
            return from_nano(sum(a for a, _ in self._open.values()))

    @property
    def remaining_usd(self) -> float | None:
        """What is left after spend and reservations; `None` when unlimited."""
        return self.snapshot().remaining_usd

    @property
    def strong_used(self) -> int:
        """Strong-tier calls this run has made."""
        return self._strong_used

    def snapshot(self) -> BudgetSnapshot:
        """The ledger's state now."""
        with self._lock:
            return BudgetSnapshot(
                limit_usd=self.limit_usd,
                spent_usd=from_nano(self._spent),
                reserved_usd=from_nano(sum(a for a, _ in self._open.values())),
                strong_limit=self.budget.strong_calls,
                strong_used=self._strong_used,
                strong_reserved=sum(1 for _, s in self._open.values() if s),
            )

    def reserve(
        self,
        amount_usd: float,
        *,
        what: str = "call",
        tier: str | None = None,
        ttl_s: float | None = None,
    ) -> Reservation:
        """Set aside `amount_usd` (and one strong call when `tier` is a strong tier), or refuse.

        Args:
            amount_usd: The call's worst-case cost.
            what: Names the call in the refusal message.
            tier: The model's tier (decides whether the call counts as strong).
            ttl_s: Unused here (in-memory reservations die with the process).

        Raises:
            BudgetExceeded: The reservation would pass a limit.
        """
        del ttl_s
        strong = self.budget.counts_as_strong(tier)
        amount = to_nano(amount_usd, up=True)
        with self._lock:
            reserved = sum(a for a, _ in self._open.values())
            strong_open = sum(1 for _, s in self._open.values() if s)
            over_usd = self.limit_usd is not None and (
                self._spent + reserved + amount > to_nano(self.limit_usd)
            )
            limit_strong = self.budget.strong_calls
            over_strong = (
                strong
                and limit_strong is not None
                and self._strong_used + strong_open >= limit_strong
            )
            if over_usd or over_strong:
                snap = BudgetSnapshot(
                    self.limit_usd,
                    from_nano(self._spent),
                    from_nano(reserved),
                    limit_strong,
                    self._strong_used,
                    strong_open,
                )
                raise _refusal(what, amount_usd, strong, snap)
            rid = next(self._ids)
            self._open[rid] = (amount, strong)
            return Reservation(id=rid, amount_usd=amount_usd, strong=strong)

    def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Replace a reservation with the call's actual cost."""
        with self._lock:
            self._open.pop(reservation.id, None)
            self._spent += to_nano(actual_usd)
            self._strong_used += int(reservation.strong)

    def release(self, reservation: Reservation) -> None:
        """Drop a reservation whose call cost nothing (it failed before being charged)."""
        with self._lock:
            self._open.pop(reservation.id, None)


@runtime_checkable
class LedgerStore(Protocol):
    """What a trace store offers to keep shared budget keys (see `TraceStore.budget_*`)."""

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
    ) -> tuple[int | None, Any]:
        """Reserve atomically; `(reservation id or None when refused, status before)`."""
        ...

    def budget_settle(
        self, key: str, reservation_id: int, *, actual_nano: int, strong: bool
    ) -> Any:
        """Replace a reservation with the actual cost."""
        ...

    def budget_release(self, key: str, reservation_id: int) -> Any:
        """Drop a reservation."""
        ...

    def budget_status(self, key: str) -> Any:
        """The key's totals."""
        ...


class SharedBudgetLedger(BudgetLedger):
    """A run's view of a budget key kept in the trace store.

    Reservations are atomic in the store (`SELECT ... FOR UPDATE` on the key's row in
    PostgreSQL, `BEGIN IMMEDIATE` in SQLite, a lock in memory), so the key's limit holds across
    every run and process sharing it. `spent_usd` and `reserved_usd` are this run's own share
    (they become the run's `cost_usd`); `snapshot()` gives the key's totals.

    Args:
        budget: A budget with a `key`.
        store: The trace store holding the key.
        run_id: The run charging the key (recorded on each reservation).
    """

    blocking = True

    def __init__(self, budget: Budget, store: LedgerStore, run_id: str = "") -> None:
        if budget.key is None:
            msg = "SharedBudgetLedger needs Budget(key=...)"
            raise ConfigurationError(msg)
        super().__init__(budget)
        self._store = store
        self._key: str = budget.key
        self.run_id = run_id

    @property
    def key(self) -> str | None:
        """The shared budget key."""
        return self._key

    def snapshot(self) -> BudgetSnapshot:
        """The key's totals now, over every run sharing it."""
        status = self._retry(lambda: self._store.budget_status(self._key))
        return _snapshot(self._key, status, self.budget)

    def reserve(
        self,
        amount_usd: float,
        *,
        what: str = "call",
        tier: str | None = None,
        ttl_s: float | None = None,
    ) -> Reservation:
        """Reserve atomically in the store, or refuse.

        Raises:
            BudgetExceeded: The key's limit would be passed.
            StoreUnavailable: The store could not be reached after a few tries.
        """
        strong = self.budget.counts_as_strong(tier)
        amount = to_nano(amount_usd, up=True)
        ttl = max(self.budget.reservation_ttl_s, ttl_s or 0.0)
        rid, status = self._retry(
            lambda: self._store.budget_reserve(
                self._key,
                amount_nano=amount,
                strong=strong,
                limit_usd=self.limit_usd,
                strong_limit=self.budget.strong_calls,
                run_id=self.run_id,
                ttl_s=ttl,
            )
        )
        if rid is None:
            raise _refusal(what, amount_usd, strong, _snapshot(self._key, status, self.budget))
        with self._lock:
            self._open[rid] = (amount, strong)
        return Reservation(id=rid, amount_usd=amount_usd, strong=strong)

    def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Charge the actual cost to the key and drop the reservation."""
        actual = to_nano(actual_usd)
        self._retry(
            lambda: self._store.budget_settle(
                self._key, reservation.id, actual_nano=actual, strong=reservation.strong
            )
        )
        if actual > to_nano(reservation.amount_usd, up=True):
            log.warning(
                "budget_actual_above_reservation",
                key=self._key,
                reserved_usd=reservation.amount_usd,
                actual_usd=actual_usd,
            )
        super().settle(reservation, actual_usd)

    def release(self, reservation: Reservation) -> None:
        """Drop a reservation in the store."""
        self._retry(lambda: self._store.budget_release(self._key, reservation.id))
        super().release(reservation)

    @staticmethod
    def _retry(fn: Callable[[], _T]) -> _T:
        for attempt in range(5):
            try:
                return fn()
            except StoreUnavailable:
                if attempt == 4:
                    raise
                time.sleep(0.05 * 2**attempt)
        raise AssertionError  # pragma: no cover - the loop returns or raises


def _snapshot(key: str, status: Any, budget: Budget) -> BudgetSnapshot:
    return BudgetSnapshot(
        limit_usd=budget.usd,
        spent_usd=float(status.spent_usd),
        reserved_usd=float(status.reserved_usd),
        strong_limit=budget.strong_calls,
        strong_used=int(status.strong_used),
        strong_reserved=int(status.strong_reserved),
        key=key,
    )


def open_ledger(budget: Budget | None, store: object = None, *, run_id: str = "") -> BudgetLedger:
    """The ledger a run charges its calls to.

    Args:
        budget: The run's budget (`None` = unlimited). With a `key`, the ledger is shared
            through `store`.
        store: The run's trace store (where shared budget keys live).
        run_id: The run's id: strategies find the ledger with `ledger_for_run(run_id)`.

    Raises:
        ConfigurationError: `budget.key` is set but the store keeps no budget ledgers.
    """
    ledger: BudgetLedger
    if budget is not None and budget.key is not None:
        if not isinstance(store, LedgerStore) or not getattr(store, "keeps_budgets", False):
            msg = (
                f"Budget(key={budget.key!r}) is shared through the trace store, but "
                f"{type(store).__name__} keeps no budget ledgers; use InMemoryTraceStore or "
                "SqlTraceStore (sqlite:/// or postgresql://), or drop the key"
            )
            raise ConfigurationError(msg)
        ledger = SharedBudgetLedger(budget, store, run_id)
    else:
        ledger = BudgetLedger(budget)
    if run_id:
        _BY_RUN[run_id] = ledger
    return ledger
