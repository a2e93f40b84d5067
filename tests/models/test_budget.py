"""`BudgetLedger`: reserve before a call, settle after, never exceed the limit."""

from __future__ import annotations

import asyncio
import random

import pytest

from agentroute.errors import BudgetExceeded
from agentroute.models import Budget, BudgetLedger, estimate_cost_usd

from .conftest import make_request, make_spec


def test_reserve_settle_release_arithmetic() -> None:
    """Reservations count against the limit until settled (at actual cost) or released."""
    ledger = BudgetLedger(Budget(usd=1.0))
    first = ledger.reserve(0.3)
    second = ledger.reserve(0.2)
    assert ledger.reserved_usd == pytest.approx(0.5)
    assert ledger.remaining_usd == pytest.approx(0.5)
    ledger.settle(first, 0.1)
    assert ledger.spent_usd == pytest.approx(0.1)
    assert ledger.reserved_usd == pytest.approx(0.2)
    ledger.release(second)
    assert ledger.reserved_usd == 0
    assert ledger.remaining_usd == pytest.approx(0.9)


def test_reservation_that_would_pass_the_limit_is_refused() -> None:
    """`BudgetExceeded` carries the limit, the spend, the reservations and the request."""
    ledger = BudgetLedger(Budget(usd=1.0))
    ledger.settle(ledger.reserve(0.5), 0.5)
    ledger.reserve(0.25)
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve(0.3, what="a call to model 'strong'")
    error = info.value
    assert (error.limit_usd, error.spent_usd, error.reserved_usd, error.requested_usd) == (
        1.0,
        0.5,
        0.25,
        0.3,
    )
    assert "a call to model 'strong' needs up to $0.300000" in str(error)
    assert "has $0.250000 left" in str(error)
    assert ledger.reserved_usd == pytest.approx(0.25), "a refused reservation holds nothing"


def test_exact_fit_is_allowed() -> None:
    """A reservation that brings the total exactly to the limit is accepted."""
    ledger = BudgetLedger(Budget(usd=1.0))
    ledger.reserve(0.5)
    ledger.reserve(0.5)
    assert ledger.remaining_usd == 0


def test_unlimited_ledger_never_refuses() -> None:
    """Without a budget every reservation succeeds and nothing remains to report."""
    ledger = BudgetLedger()
    ledger.settle(ledger.reserve(1e9), 1e9)
    assert ledger.remaining_usd is None
    assert ledger.spent_usd == 1e9


def test_estimate_covers_the_full_output_cap() -> None:
    """The estimate charges the whole output cap plus an over-estimate of the input."""
    spec = make_spec(input_price_per_mtok=1.0, output_price_per_mtok=2.0, max_output_tokens=100)
    request = make_request(spec, text="x" * 300)
    assert estimate_cost_usd(spec, request) >= spec.cost_usd(75, 100)


async def test_concurrent_reservations_never_exceed_the_limit() -> None:
    """200 concurrent tasks reserving against one ledger never spend more than the limit."""
    limit = 1.00
    ledger = BudgetLedger(Budget(usd=limit))
    rng = random.Random(7)
    refused = 0

    async def one(estimate: float, actual: float, pause: float) -> None:
        nonlocal refused
        try:
            reservation = ledger.reserve(estimate)
        except BudgetExceeded:
            refused += 1
            return
        await asyncio.sleep(pause)
        ledger.settle(reservation, actual)

    jobs = []
    for _ in range(200):
        estimate = round(rng.uniform(0.01, 0.05), 4)
        jobs.append(one(estimate, estimate * rng.uniform(0.3, 1.0), rng.uniform(0, 0.005)))
    await asyncio.gather(*jobs)
    assert round(ledger.spent_usd, 2) <= limit
    assert ledger.reserved_usd == 0
    assert refused > 0, "the budget was actually contended"
