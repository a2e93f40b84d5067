"""`InMemoryTraceStore` passes the store conformance suite."""

from __future__ import annotations

import pytest

from agentroute.stores import InMemoryTraceStore, TraceStore

from .conformance import TraceStoreConformance


class TestInMemoryTraceStore(TraceStoreConformance):
    @pytest.fixture
    def store(self) -> TraceStore:
        """A fresh in-memory store."""
        return InMemoryTraceStore()


def test_verify_reports_each_gap_once_and_duplicates() -> None:
    """`verify_chain` reports a deletion once (not every later record) and a duplicated seq."""
    from agentroute.stores import verify_chain
    from tests.stores.conformance import make_run

    records = make_run("r")
    assert len(records) >= 5
    dropped = [r for r in records if r.seq not in (1, 2)]
    report = verify_chain("r", dropped)
    assert report.problems == ["seq 1..2 missing (next is 3): records were deleted"]
    doubled = verify_chain("r", [*records, records[3]])
    assert any("appears more than once" in p for p in doubled.problems)
