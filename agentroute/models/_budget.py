"""Per-run budgets: reserve before a call, settle after, never exceed."""

from __future__ import annotations

import itertools
import math
import threading

from pydantic import BaseModel, ConfigDict, Field

from agentroute.errors import BudgetExceeded
from agentroute.models._protocol import ModelRequest
from agentroute.registry import ModelSpec

__all__ = [
    "Budget",
    "BudgetLedger",
    "Reservation",
    "estimate_cost_usd",
    "estimate_input_tokens",
    "open_ledger",
]


class Budget(BaseModel):
    """A hard limit on what one run may spend."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    usd: float | None = Field(default=None, gt=0)
    """Most USD the run may spend on model calls; `None` = unlimited."""


class Reservation(BaseModel):
    """Spend set aside for one call in flight."""

    model_config = ConfigDict(frozen=True)

    id: int
    amount_usd: float


def estimate_input_tokens(request: ModelRequest) -> int:
    """Upper-leaning estimate of a request's input tokens without a tokenizer.

    English averages about four characters per token; three per token plus a per-message
    overhead over-estimates for almost all text, which is the safe side for a reservation.
    """
    return math.ceil(request.prompt_chars() / 3) + 4 * len(request.messages) + 3


def estimate_cost_usd(spec: ModelSpec, request: ModelRequest) -> float:
    """The most a call is expected to cost: estimated input plus the full output cap."""
    return spec.cost_usd(estimate_input_tokens(request), request.output_cap)


class BudgetLedger:
    """Tracks one run's spend. Thread-safe; shared by every branch of the run.

    Every call reserves its estimated cost first; the reservation fails with `BudgetExceeded`
    when settled spend plus reservations in flight plus the estimate would pass the limit. After
    the call the reservation is settled with the actual cost (or released when the call failed).
    """

    def __init__(self, budget: Budget | None = None) -> None:
        self.limit_usd: float | None = budget.usd if budget else None
        self._lock = threading.Lock()
        self._spent = 0.0
        self._open: dict[int, float] = {}
        self._ids = itertools.count(1)

    @property
    def spent_usd(self) -> float:
        """Settled spend."""
        return self._spent

    @property
    def reserved_usd(self) -> float:
        """Spend reserved by calls in flight."""
        with self._lock:
            return sum(self._open.values())

    @property
    def remaining_usd(self) -> float | None:
        """What is left after spend and reservations; `None` when unlimited."""
        if self.limit_usd is None:
            return None
        with self._lock:
            return max(0.0, self.limit_usd - self._spent - sum(self._open.values()))

    def reserve(self, amount_usd: float, *, what: str = "call") -> Reservation:
        """Set aside `amount_usd`, or refuse.

        Raises:
            BudgetExceeded: The reservation would pass the limit.
        """
        with self._lock:
            reserved = sum(self._open.values())
            if self.limit_usd is not None and self._spent + reserved + amount_usd > self.limit_usd:
                msg = (
                    f"{what} needs up to ${amount_usd:.6f} but the run's budget of "
                    f"${self.limit_usd:.6f} has ${self.limit_usd - self._spent - reserved:.6f} "
                    "left; raise Budget(usd=...), lower max_output_tokens, or use a cheaper model"
                )
                raise BudgetExceeded(
                    msg,
                    limit_usd=self.limit_usd,
                    spent_usd=self._spent,
                    reserved_usd=reserved,
                    requested_usd=amount_usd,
                )
            rid = next(self._ids)
            self._open[rid] = amount_usd
            return Reservation(id=rid, amount_usd=amount_usd)

    def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Replace a reservation with the call's actual cost."""
        with self._lock:
            self._open.pop(reservation.id, None)
            self._spent += actual_usd

    def release(self, reservation: Reservation) -> None:
        """Drop a reservation whose call cost nothing (it failed before being charged)."""
        with self._lock:
            self._open.pop(reservation.id, None)


def open_ledger(budget: Budget | None, store: object = None) -> BudgetLedger:
    """The ledger a run charges its calls to.

    Args:
        budget: The run's budget (`None` = unlimited).
        store: The run's trace store (where ledgers shared between runs will live).
    """
    del store
    return BudgetLedger(budget)
