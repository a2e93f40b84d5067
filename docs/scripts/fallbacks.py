"""Retries and fallbacks are data on the model spec; every attempt is in the trace."""

import agentroute as ar
from agentroute.errors import ModelUnavailable
from agentroute.testing import ScriptedModelClient

registry = ar.Registry()
registry.model(
    "primary",
    "openai/gpt-4o-mini",
    input_price_per_mtok=0.15,
    output_price_per_mtok=0.60,
    retry=ar.RetryPolicy(max_attempts=2, initial_backoff_s=0.01),
    fallbacks=("backup",),
)
registry.model(
    "backup", "anthropic/claude-haiku-4-5", input_price_per_mtok=1.00, output_price_per_mtok=5.00
)


@registry.agent(model="primary")
async def assistant(ctx: ar.AgentContext, task: str) -> str:
    """Answers anything."""
    return await ctx.complete(task)


# The scripted provider is down for `primary` and fine for `backup`.
client = ScriptedModelClient(
    [(lambda request: request.model.name == "primary", ModelUnavailable("503", model="primary"))],
    default="Here you go.",
)
router = ar.Router(registry, agent=ar.Static("assistant"), store="memory://", client=client)
result = router.run_sync("Hello", budget=ar.Budget(usd=0.05))
print(result.status, repr(result.answer), f"${result.cost_usd:.6f}")
for call in router.trace(result.run_id).model_calls:
    print(
        f"attempt {call.attempt}: {call.model:<8} error={call.error_type} "
        f"reserved=${call.estimated_cost_usd:.6f} cost=${call.cost_usd:.6f}"
    )
