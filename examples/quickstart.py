"""Quickstart: register agents and models, route with rules, run offline, inspect the trace.

Run: python examples/quickstart.py
"""

from __future__ import annotations

import agentroute as ar
from agentroute.testing import ScriptedModelClient

registry = ar.Registry()
registry.model(
    "cheap",
    "openai/gpt-4o-mini",
    tier="cheap",
    input_price_per_mtok=0.15,
    output_price_per_mtok=0.6,
)
registry.model(
    "strong",
    "anthropic/claude-sonnet-4-5",
    tier="strong",
    input_price_per_mtok=3.0,
    output_price_per_mtok=15.0,
)
registry.skill(
    "refund-policy",
    description="When and how to refund an order.",
    body="Refunds are allowed within 30 days of delivery. Card refunds take 5-10 business days.",
)


@registry.agent(skills=["refund-policy"])
async def billing(ctx: ar.AgentContext, task: str) -> str:
    """Answers questions about invoices, charges and refunds."""
    return await ctx.complete(f"Customer: {task}", system=ctx.skills.as_prompt())


@registry.agent
def shipping(ctx: ar.AgentContext, task: str) -> str:
    """Tracks parcels and handles late or lost deliveries."""
    return ctx.complete_sync(f"Parcel question: {task}")  # sync agents run in a worker thread


router = ar.Router(
    registry,
    agent=ar.Rules(
        [
            ar.Rule(
                "both", ar.Keywords("charged") & ar.Keywords("arrived"), ("billing", "shipping")
            ),
            ar.Rule("refunds", ar.Keywords("refund", "charged", "invoice"), ("billing",)),
        ],
        default=("shipping",),
    ),
    model=ar.Rules([ar.Rule("long", ar.Length(min_chars=200), ("strong",))], default=("cheap",)),
    store="memory://",
    # Offline: a scripted model. Drop `client=` to call real providers through LiteLLM.
    client=ScriptedModelClient(
        [(r"^Customer:", "Refunds take 5-10 business days.")], default="Your parcel is on its way."
    ),
)

if __name__ == "__main__":
    result = router.run_sync(
        "I was charged twice and my package never arrived", budget=ar.Budget(usd=0.05)
    )
    print(result.status, result.agents, f"${result.cost_usd:.6f}")
    print(result.answer)
    for decision in router.trace(result.run_id).decisions:
        print(
            f"  {decision.slot:<8} {decision.branch:<9} -> {decision.chosen}  ({decision.reason})"
        )
    print("verified:", router.store.verify(result.run_id).ok)
