"""Load the support-desk layout from YAML; Python provides the agent functions."""

import agentroute as ar
from agentroute.testing import ScriptedModelClient

registry = ar.Registry()
registry.model("cheap", "openai/gpt-4o-mini", tier="cheap")
registry.model("strong", "anthropic/claude-sonnet-4-5", tier="strong")
registry.load_skills("skills/")

DESKS = {  # agent name: (description, skill ids)
    "billing": (
        "Invoices, charges, payment methods, subscriptions and refunds.",
        ["invoice-lookup", "duplicate-charge", "refund-policy", "payment-methods"],
    ),
    "shipping": (
        "Order tracking, lost or late packages, returns and exchanges.",
        ["order-tracking", "lost-package", "returns-and-exchanges"],
    ),
    "tech_support": (
        "The app and website (login, crashes, errors) and smart-hub setup.",
        ["app-login-troubleshooting", "smart-device-setup"],
    ),
    "security": (
        "Compromised accounts, two-factor authentication and phishing reports.",
        ["account-takeover-response", "two-factor-auth", "phishing-reports"],
    ),
    "general": ("Anything that no specialist covers.", ["tone-and-escalation"]),
}


async def desk(ctx: ar.AgentContext, task: str) -> str:
    """Answer with the desk's skills as the system prompt."""
    return await ctx.complete(f"Customer: {task}", system=ctx.skills.as_prompt())


for name, (description, skills) in DESKS.items():
    registry.agent(desk, name=name, description=description, skills=skills, tier="cheap")

spec = registry.load_graph("graphs/support-desk.yaml")  # checks the agents it names exist
router = ar.Router.from_graph(
    registry, spec, store="memory://", client=ScriptedModelClient(default="On it.")
)
print(router, spec.budget_usd, spec.limits.max_steps)
for task in ("My account was hacked!", "Can you write a poem?", "Where is my parcel?"):
    result = router.run_sync(task)
    model = [d.chosen for d in router.trace(result.run_id).decisions if d.slot == "model"]
    print(f"{result.status:<13} {result.agents} {model}")
