"""A hard per-run budget: reserve before each call, settle after, never exceed."""

import agentroute as ar
from agentroute.testing import ScriptedModelClient

registry = ar.Registry()
registry.model(
    "cheap",
    "openai/gpt-4o-mini",
    input_price_per_mtok=0.15,
    output_price_per_mtok=0.60,
    max_output_tokens=500,
)


@registry.agent
async def writer(ctx: ar.AgentContext, task: str) -> str:
    """Writes a short draft, then a polished version: two model calls."""
    draft = await ctx.complete(task, max_tokens=100)
    return await ctx.complete(f"Polish this draft:\n\n{draft}")  # up to 500 output tokens


router = ar.Router(
    registry,
    agent=ar.Static("writer"),
    store="memory://",
    client=ScriptedModelClient(default="A short draft."),
)

for usd in (0.01, 0.0002):
    result = router.run_sync("Write a haiku about routing", budget=ar.Budget(usd=usd))
    print(f"budget ${usd}: {result.status}, spent ${result.cost_usd:.6f}")
print(result.reason)
