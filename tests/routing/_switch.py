"""Shared set-up of the model-slot (`BudgetSwitch`) tests: a tiered registry and its router."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import agentroute as ar
from agentroute.routing import Static
from agentroute.routing._budget_switch import BudgetSwitch
from agentroute.stores import InMemoryTraceStore, TraceStore
from agentroute.testing import ScriptedModelClient

PRICES = {"cheap": (0.1, 0.4), "mid": (0.5, 2.0), "strong": (2.5, 10.0)}
"""Input and output USD per million tokens of each tier's model."""


def switch_registry(
    tiers: Sequence[str] = ("cheap", "strong"), models: Mapping[str, str] | None = None
) -> ar.Registry:
    """One model per tier (LiteLLM id `m/<tier>` unless `models` names it) and a `solver`."""
    reg = ar.Registry()
    for tier in tiers:
        inp, out = PRICES[tier]
        model = (models or {}).get(tier, f"m/{tier}")
        reg.model(tier, model, tier=tier, input_price_per_mtok=inp, output_price_per_mtok=out)

    @reg.agent()
    async def solver(ctx: ar.AgentContext, task: str) -> str:
        """Answers."""
        return await ctx.complete(task)

    return reg


def switch_router(
    switch: BudgetSwitch, reg: ar.Registry | None = None, store: TraceStore | None = None
) -> ar.Router:
    """A router whose model slot is `switch`, over `solver` and a scripted client."""
    return ar.Router(
        reg or switch_registry(),
        agent=Static("solver"),
        model=switch,
        store=store if store is not None else InMemoryTraceStore(),
        client=ScriptedModelClient(default="ok"),
    )


def model_decision(router: ar.Router, run_id: str) -> Any:
    """The run's (first) model-slot decision."""
    return next(d for d in router.trace(run_id).decisions if d.slot == "model")
