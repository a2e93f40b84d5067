"""The one retry loop behind every learned-state book (pheromone tables, kNN memories)."""

from __future__ import annotations

import pytest

from agentroute.errors import StateConflict
from agentroute.routing._state_book import StateBook
from agentroute.stores import InMemoryTraceStore


def test_a_lost_race_is_retried_on_the_newer_version_and_counted() -> None:
    """Each attempt re-reads: the write that lost a race lands on the version that beat it."""
    store = InMemoryTraceStore()
    book = StateBook(store, "k")
    store.put_state("k", {"n": 1}, expected_version=None)
    seen: list[int] = []

    def attempt() -> int:
        latest = store.get_state("k")
        assert latest is not None
        seen.append(latest.version)
        if len(seen) == 1:  # another writer commits between our read and our write
            store.put_state("k", {"n": 2}, expected_version=latest.version)
        rec = store.put_state("k", {"n": 3}, expected_version=latest.version)
        return rec.version

    assert book.retrying(attempt, "writing") == 3
    assert seen == [1, 2]
    assert book.conflicts == 1


def test_giving_up_names_the_key_and_the_number_of_races() -> None:
    """After `max_retries` + 1 lost races in a row the conflict is raised, not swallowed."""
    book = StateBook(InMemoryTraceStore(), "ant-colony/x", max_retries=2)

    def always_loses() -> None:
        raise StateConflict("lost")

    with pytest.raises(StateConflict, match=r"gave up writing 'ant-colony/x' after 3 lost races"):
        book.retrying(always_loses, "writing")
    assert book.conflicts == 3
