"""Quickstart: a support desk routed offline, with a scripted model and an in-memory trace."""

import agentroute as ar
from agentroute.testing import ScriptedModelClient

registry = ar.Registry()

# Models are addressed by LiteLLM id. Prices are USD per million tokens; leave them out to take
# them from LiteLLM's bundled cost map.
registry.model(
    "cheap",
    "openai/gpt-4o-mini",
    tier="cheap",
    input_price_per_mtok=0.15,
    output_price_per_mtok=0.60,
)
registry.model(
    "strong",
    "anthropic/claude-sonnet-4-5",
    tier="strong",
    input_price_per_mtok=3.00,
    output_price_per_mtok=15.00,
)

# A skill defined in code; `registry.load_skills("skills/")` loads SKILL.md files instead.
registry.skill(
    "refund-policy",
    description="When refunds are paid, how long they take, and to which payment method.",
    body="Refunds go back to the original payment method within 5-10 business days.",
)


@registry.agent(skills=["refund-policy"])
async def billing(ctx: ar.AgentContext, task: str) -> str:
    """Answers questions about invoices, charges and refunds."""
    return await ctx.complete(
        f"You are the billing desk.\n\nCustomer: {task}", system=ctx.skills.as_prompt()
    )


@registry.agent(skills=[])
def shipping(ctx: ar.AgentContext, task: str) -> str:
    """Tracks parcels and handles lost or late deliveries."""
    # A sync agent runs in a worker thread; it calls the model with complete_sync.
    return ctx.complete_sync(f"You are the shipping desk.\n\nCustomer: {task}")


@registry.agent(skills=[])
def general(ctx: ar.AgentContext, task: str) -> str:
    """Anything about the shop that no specialist covers."""
    return "Thanks for writing! A colleague will get back to you today."


money = ar.Keywords("refund", "charged", "invoice")
parcel = ar.Keywords("package", "parcel", "tracking")

router = ar.Router(
    registry,
    # Who acts: the first rule whose signal fires wins; `money & parcel` fans out to both.
    agent=ar.Rules(
        [
            ar.Rule("both", money & parcel, ("billing", "shipping")),
            ar.Rule("billing", money, ("billing",)),
            ar.Rule("shipping", parcel, ("shipping",)),
            ar.Rule("off-topic", ar.Keywords("poem", "joke"), out_of_scope=True),
        ],
        default=("general",),
    ),
    # On which model: long messages go to the strong model.
    model=ar.Rules([ar.Rule("long", ar.Length(min_chars=280), ("strong",))], default=("cheap",)),
    store="memory://",
    # Offline: a scripted model instead of LiteLLM. Rules are (regex, reply) pairs.
    client=ScriptedModelClient(
        [
            (r"billing desk", "You were charged twice; the duplicate is refunded in 5-10 days."),
            (r"shipping desk", "Your parcel is late; I have opened a trace with the courier."),
        ],
    ),
)

result = router.run_sync(
    "I was charged twice for order 48213 and my package never arrived.",
    budget=ar.Budget(usd=0.05),
)
print(result.status, result.agents, f"${result.cost_usd:.6f}")
print(result.answer)

# Every decision is in the trace: candidates with scores, the choice, the reason, the evidence.
trace = router.trace(result.run_id)
for d in trace.decisions:
    print(f"step {d.step} {d.slot:<7} {d.branch or '-':<9} {d.chosen} ({d.reason})")

# The trace is hash-chained: verify() detects any edit.
print("chain ok:", router.store.verify(result.run_id).ok)

# Out of scope: no agent fits, the run ends cleanly with a polite message.
print(router.run_sync("Write me a poem about cats").status)
