"""Budget ledgers in every store backend: the same contract in memory, SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentroute.errors import ConfigurationError
from agentroute.stores import InMemoryTraceStore, SqlTraceStore, TraceStore

NANO = 1_000_000_000


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TraceStore]:
    """One store per backend."""
    if request.param == "memory":
        yield InMemoryTraceStore()
        return
    if request.param == "sqlite":
        s = SqlTraceStore(f"sqlite:///{tmp_path / 'ledger.db'}")
        yield s
        s.close()
        return
    s = SqlTraceStore(request.getfixturevalue("pg_url"))
    yield s
    s.close()


def _reserve(
    store: TraceStore, amount: float, *, strong: bool = False, ttl: float = 60.0
) -> int | None:
    rid, _ = store.budget_reserve(
        "k",
        amount_nano=round(amount * NANO),
        strong=strong,
        limit_usd=1.0,
        strong_limit=2,
        run_id="r",
        ttl_s=ttl,
    )
    return rid


def test_reserve_settle_release_and_refusal(store: TraceStore) -> None:
    """Reservations count until settled or released; one that would pass the limit is refused."""
    a = _reserve(store, 0.6)
    assert a is not None
    assert _reserve(store, 0.5) is None
    status = store.budget_settle("k", a, actual_nano=round(0.4 * NANO), strong=False)
    assert status.spent_usd == pytest.approx(0.4)
    assert status.reserved_usd == 0
    b = _reserve(store, 0.6)
    assert b is not None
    assert _reserve(store, 0.01) is None, "exactly at the limit: nothing more fits"
    store.budget_release("k", b)
    assert store.budget_status("k").open_reservations == 0
    store.budget_reset("k")
    assert store.budget_status("k").spent_usd == 0


def test_a_reservation_from_before_a_reset_never_settles_a_newer_one(store: TraceStore) -> None:
    """Ids are never reused: settling a reservation a reset removed leaves newer ones held.

    Before, SQLite gave the next reservation the id of the deleted one, so run A's settle
    (after the key's reset) deleted run B's reservation and let C overspend the key.
    """
    a = _reserve(store, 0.6)
    store.budget_reset("k")
    b = _reserve(store, 0.9)
    assert a is not None
    assert b is not None
    assert b != a
    store.budget_settle("k", a, actual_nano=0, strong=False)
    assert store.budget_status("k").reserved_usd == pytest.approx(0.9)
    assert _reserve(store, 0.9) is None, "B still holds 0.9 of the 1.0"


def test_strong_call_limit(store: TraceStore) -> None:
    """`strong_limit=2`: two strong reservations (settled or in flight) block a third."""
    first = _reserve(store, 0.01, strong=True)
    assert first is not None
    store.budget_settle("k", first, actual_nano=1, strong=True)
    assert _reserve(store, 0.01, strong=True) is not None
    assert _reserve(store, 0.01, strong=True) is None
    assert _reserve(store, 0.01, strong=False) is not None, "cheap calls still fit"
    assert store.budget_status("k").strong_used == 1


def test_expired_reservations_are_dropped(store: TraceStore) -> None:
    """A reservation past its TTL (a crashed process) no longer holds budget."""
    assert _reserve(store, 0.9, ttl=0.05) is not None
    time.sleep(0.1)
    assert _reserve(store, 0.9) is not None
    assert store.budget_status("k").open_reservations == 1


def test_threads_never_overspend(store: TraceStore) -> None:
    """8 threads racing for 1 cent slices of a $1 key: exactly 100 reservations succeed."""
    won: list[int] = []
    lock = threading.Lock()

    def grab() -> None:
        while True:
            rid = _reserve(store, 0.01)
            if rid is None:
                return
            store.budget_settle("k", rid, actual_nano=round(0.01 * NANO), strong=False)
            with lock:
                won.append(rid)

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 100
    assert round(store.budget_status("k").spent_usd * NANO) == NANO


def test_stores_without_ledgers_refuse_clearly() -> None:
    """The ABC's default methods raise a ConfigurationError naming the fix."""

    class Bare(InMemoryTraceStore):
        keeps_budgets = False

    with pytest.raises(ConfigurationError, match="keeps no shared budget ledgers"):
        TraceStore.budget_status(Bare(), "k")
