"""Fixtures of the runtime tests: routers over the support-desk registry, never a real model."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

import agentroute as ar
from agentroute.testing import ScriptedModelClient

MakeRouter = Callable[..., ar.Router]


@pytest.fixture
def make_router(registry: ar.Registry, client: ScriptedModelClient) -> MakeRouter:
    """`make_router(agent=..., **router_kwargs)`: a memory-store router with the scripted client."""

    def make(agent: Any, *, reg: ar.Registry | None = None, **kwargs: Any) -> ar.Router:
        kwargs.setdefault("store", "memory://")
        kwargs.setdefault("client", client)
        return ar.Router(reg if reg is not None else registry, agent=agent, **kwargs)

    return make


def kinds(records: Any) -> list[str]:
    """The `kind` of each record, in order."""
    return [r.kind for r in records]


def assert_chained(records: Any) -> None:
    """Sequence numbers count 0, 1, 2, ...; each prev_hash is the previous record's hash."""
    from agentroute.stores import GENESIS_HASH

    records = list(records)
    assert [r.seq for r in records] == list(range(len(records)))
    assert records[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(records):
        assert after.prev_hash == before.hash
    for rec in records:
        assert rec.hash == rec.compute_hash()
