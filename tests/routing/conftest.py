"""Fixtures of the routing tests: routing contexts built by hand (no runtime needed), data."""

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


def difficulty_data(
    n: int = 120,
    *,
    every: int = 3,
    hard: str = "prove the theorem about primes",
    easy: str = "greet the user",
) -> tuple[list[str], list[float], list[float]]:
    """`n` prompts for difficulty scorers: every `every`-th is hard (cheap fails, strong passes).

    Returns texts (`hard` or `easy` plus the prompt's number), cheap and strong outcomes.
    """
    texts, cheap, strong = [], [], []
    for i in range(n):
        is_hard = i % every == 0
        texts.append(f"{hard if is_hard else easy} {i}")
        cheap.append(0.0 if is_hard else 1.0)
        strong.append(1.0)
    return texts, cheap, strong
