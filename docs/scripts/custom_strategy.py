"""A custom model-slot strategy: the strong model while the budget allows, else the cheap one."""

from typing import ClassVar

import agentroute as ar
from agentroute.testing import ScriptedModelClient


class SaveWhenLow:
    """Choose `strong` unless less than `reserve_usd` of the run's budget is left."""

    name: ClassVar[str] = "save-when-low"
    version = "1"

    def __init__(self, reserve_usd: float = 0.01) -> None:
        self.reserve_usd = reserve_usd

    def params(self) -> dict[str, float]:
        """Parameters for the trace."""
        return {"reserve_usd": self.reserve_usd}

    async def route(self, ctx: ar.RoutingContext) -> ar.RouteDecision:
        """Decide the model slot from the budget left."""
        left = ctx.budget.remaining_usd
        low = left is not None and left < self.reserve_usd
        choice = "cheap" if low else "strong"
        return ar.RouteDecision.with_model(
            choice,
            reason=f"${left:.4f} left" if left is not None else "no budget limit",
            candidates=[
                ar.Candidate(name="strong", score=0.0 if low else 1.0),
                ar.Candidate(name="cheap", score=1.0 if low else 0.0),
            ],
            evidence={"remaining_usd": left, "reserve_usd": self.reserve_usd},
        )


registry = ar.Registry()
registry.model("cheap", "openai/gpt-4o-mini", input_price_per_mtok=0.15, output_price_per_mtok=0.6)
registry.model("strong", "openai/gpt-4o", input_price_per_mtok=2.5, output_price_per_mtok=10.0)


@registry.agent
async def assistant(ctx: ar.AgentContext, task: str) -> str:
    """Answers anything."""
    return await ctx.complete(task)


router = ar.Router(
    registry,
    agent=ar.Static("assistant"),
    model=SaveWhenLow(reserve_usd=0.02),
    store="memory://",
    client=ScriptedModelClient(default="Sure."),
)
for usd in (0.05, 0.015):
    result = router.run_sync("Hello!", budget=ar.Budget(usd=usd))
    model = next(d for d in router.trace(result.run_id).decisions if d.slot == "model")
    print(f"budget ${usd}: {model.chosen} because {model.reason}; evidence {model.evidence}")
