"""Replay: exactly (recorded outputs, no tokens) and counterfactually (another router)."""

import asyncio

import agentroute as ar
from agentroute.testing import ScriptedModelClient

registry = ar.Registry()
registry.model("cheap", "openai/gpt-4o-mini", input_price_per_mtok=0.15, output_price_per_mtok=0.6)


async def answer(ctx: ar.AgentContext, task: str) -> str:
    """Answer as the desk this agent is registered as."""
    return await ctx.complete(f"You are the {ctx.agent} desk.\n\nCustomer: {task}")


for name in ("billing", "shipping", "general"):
    registry.agent(answer, name=name, description=f"The {name} desk.")

money, parcel = ar.Keywords("charged", "refund"), ar.Keywords("package", "parcel")
router = ar.Router(
    registry,
    agent=ar.Rules(
        [
            ar.Rule("both", money & parcel, ("billing", "shipping")),
            ar.Rule("billing", money, ("billing",)),
        ],
        default=("general",),
    ),
    store="memory://",
    client=ScriptedModelClient(
        [(r"billing desk", "Refund issued."), (r"shipping desk", "Parcel traced.")]
    ),
)
result = router.run_sync("I was charged twice and my package never arrived.")


async def main() -> None:
    """Replay the run three ways."""
    # Exact: the same router; every model output comes from the recording.
    report = await ar.replay(result.run_id, router)
    print(report.mode, report.identical, "served:", report.model_calls_served)

    # Counterfactual: what would a billing-only router have done?
    billing_only = ar.Router(registry, agent=ar.Static("billing"), store=router.store)
    report = await ar.replay(result.run_id, billing_only)
    print(report.mode, report.identical, repr(report.replayed_answer))
    for diff in report.diffs:
        print(f"  step {diff.step} {diff.slot:<7} {diff.branch or '-':<8} {diff.status}")

    # Counterfactual with an output that was never recorded: it is marked, not invented.
    general_only = ar.Router(registry, agent=ar.Static("general"), store=router.store)
    report = await ar.replay(result.run_id, general_only)
    print(report.mode, report.replayed_status, report.unobserved)


asyncio.run(main())
