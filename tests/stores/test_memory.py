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
