"""Fixtures of the routing tests: routing contexts built by hand (no runtime needed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import agentroute as ar
from agentroute.routing import RoutingContext

MakeCtx = Callable[..., RoutingContext]


@pytest.fixture
def make_ctx(registry: ar.Registry) -> MakeCtx:
    """Build a `RoutingContext` for the support-desk registry; keywords override any field."""

    def make(task: str = "hello", **fields: Any) -> RoutingContext:
        slot = fields.pop("slot", "agent")
        default_candidates = {
            "agent": tuple(registry.agents),
            "skills": tuple(registry.skills),
            "model": tuple(registry.models),
        }[slot]
        values: dict[str, Any] = {
            "run_id": "run-1",
            "step": 0,
            "slot": slot,
            "task": task,
            "registry": registry,
            "candidates": default_candidates,
        }
        values.update(fields)
        return RoutingContext(**values)

    return make
