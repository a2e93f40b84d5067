"""Multi-step runs: a triage path, a loop that is detected, a step limit that is reached."""

import agentroute as ar
from agentroute.registry import LimitsSpec
from agentroute.testing import ScriptedModelClient

registry = ar.Registry()
registry.model("cheap", "openai/gpt-4o-mini", input_price_per_mtok=0.15, output_price_per_mtok=0.6)


@registry.agent
async def triage(ctx: ar.AgentContext, task: str) -> ar.AgentResult:
    """Names the area of the request (billing or general)."""
    note = await ctx.complete(f"Classify this message: {task}")
    return ar.AgentResult(output=note, final=False)  # not final: route again


@registry.agent
def billing(ctx: ar.AgentContext, task: str) -> str:
    """Answers billing questions."""
    return f"Billing here. Triage said: {ctx.previous!r}"


@registry.agent
def general(ctx: ar.AgentContext, task: str) -> str:
    """Answers anything else."""
    return "General desk here."


@registry.agent
def ponder(ctx: ar.AgentContext, task: str) -> ar.AgentResult:
    """Never finishes: always asks to be routed again, with the same answer."""
    return ar.AgentResult(output="Let me think about it.", final=False)


path = ar.FirstMatch(
    [
        # Step 0: nothing before us, so triage first.
        ar.Rules([ar.Rule("triage-first", ~ar.Regex(r"\S", on="previous"), ("triage",))]),
        # Step 1: route on the triage note.
        ar.Rules(
            [ar.Rule("billing", ar.Keywords("billing", on="previous"), ("billing",))],
            default=("general",),
        ),
    ]
)
client = ScriptedModelClient([(r"Classify", "Area: billing.")])

router = ar.Router(registry, agent=path, store="memory://", client=client)
result = router.run_sync("I was charged twice")
print(result.status, result.agents)
print(result.answer)

looping = ar.Router(registry, agent=ar.Static("ponder"), store="memory://", client=client)
result = looping.run_sync("What is the meaning of life?")
print(result.status, "-", result.reason)

limited = ar.Router(
    registry,
    agent=ar.Static("general", then="route"),
    store="memory://",
    client=client,
    limits=LimitsSpec(max_steps=2),
)
result = limited.run_sync("Hello")
print(result.status, "-", result.reason)
