"""The support-desk demo behind `agentroute demo`.

Real skill cards, a declarative graph, and either a scripted offline model (default) or any
LiteLLM model.

`build_registry()` is importable as the app of recorded demo runs, so `agentroute runs replay`
can rebuild the demo's router from the trace.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agentroute.models import ModelClient, ModelRequest
from agentroute.registry import Registry
from agentroute.runtime import AgentContext, AgentResult, Router
from agentroute.stores import TraceStore

__all__ = ["DEMO_APP", "DEMO_TASKS", "build_registry", "build_router", "offline_client"]

DEMO_APP = "agentroute._demo:build_registry"
"""Import path recorded with demo runs (the CLI's `--app` default for them)."""

DEMO_TASKS: tuple[str, ...] = (
    "I was charged twice for order #48213 and my package never arrived.",
    "How do I get a refund for a blender I returned last week?",
    "The app keeps crashing when I try to log in on my phone.",
    "I think my account was hacked — there are orders I didn't place and my 2FA was turned off.",
    "Where is my parcel? Tracking has said 'label created' for five days.",
    "Can you write me a poem about cats?",
    "Do you have gift cards?",
)
"""The customer messages the demo routes."""

_SYSTEM = (
    "You are a Northwind Goods support agent ({agent}). Answer the customer in a few sentences, "
    "following the procedures below exactly. If they do not cover the request, say what you "
    "will escalate and to whom.\n\n{skills}"
)


def build_registry(model: str | None = None) -> Registry:
    """The demo's registry: five agents, the bundled skill cards, two model tiers.

    Args:
        model: A LiteLLM model id for both tiers (prices from LiteLLM's map). `None` registers
            two offline models with fixed demo prices.
    """
    from agentroute._content import content_dir

    registry = Registry()
    if model is None:
        registry.model(
            "cheap",
            "demo/cheap",
            tier="cheap",
            input_price_per_mtok=0.15,
            output_price_per_mtok=0.60,
        )
        registry.model(
            "strong",
            "demo/strong",
            tier="strong",
            input_price_per_mtok=3.00,
            output_price_per_mtok=15.00,
        )
    else:
        registry.model("cheap", model, tier="cheap")
        registry.model("strong", model, tier="strong")
    registry.load_skills(content_dir("skills"))

    async def answer(ctx: AgentContext, task: str) -> str:
        system = _SYSTEM.format(agent=ctx.agent, skills=ctx.skills.as_prompt())
        return await ctx.complete(f"Customer: {task}", system=system, max_tokens=400)

    def agent(name: str, description: str, skills: Sequence[str]) -> None:
        async def fn(ctx: AgentContext, task: str) -> str:
            return await answer(ctx, task)

        fn.__name__ = fn.__qualname__ = name
        registry.agent(name=name, description=description, skills=skills, tier="cheap")(fn)

    agent(
        "billing",
        "Invoices, charges, duplicate charges, payment methods, subscriptions and refunds.",
        [
            "invoice-lookup",
            "duplicate-charge",
            "payment-methods",
            "subscription-changes",
            "refund-policy",
            "chargeback-handling",
            "tone-and-escalation",
        ],
    )
    agent(
        "shipping",
        "Order tracking, lost or late packages, returns, exchanges and international shipping.",
        [
            "order-tracking",
            "lost-package",
            "returns-and-exchanges",
            "international-shipping",
            "tone-and-escalation",
        ],
    )
    agent(
        "tech_support",
        "The Northwind app and website (login, crashes, errors) and smart-hub setup.",
        ["app-login-troubleshooting", "smart-device-setup", "tone-and-escalation"],
    )
    agent(
        "security",
        "Compromised accounts, two-factor authentication and phishing reports.",
        ["account-takeover-response", "two-factor-auth", "phishing-reports", "tone-and-escalation"],
    )
    agent(
        "general",
        "Anything about Northwind Goods that no specialist covers; hands off when unsure.",
        ["tone-and-escalation"],
    )

    @registry.agent(skills=[])
    def out_of_scope(ctx: AgentContext, task: str) -> str:
        """Politely declines requests that are not about Northwind Goods."""
        return (
            "I'm Northwind Goods' support assistant, so I can only help with orders, billing, "
            "shipping, your account and our devices. Is there anything about those I can do?"
        )

    @registry.agent(skills=[])
    async def triage(ctx: AgentContext, task: str) -> AgentResult:
        """Summarises the request and names the area (billing, shipping, technical, security)."""
        note = await ctx.complete(
            f"Classify this customer message into billing, shipping, technical, security or "
            f"general, then summarise it in one sentence.\n\nCustomer: {task}",
            max_tokens=80,
        )
        return AgentResult(output=note, final=False)

    return registry


def build_router(
    *,
    store: TraceStore | str,
    model: str | None = None,
    client: ModelClient | None = None,
    graph: str = "support-desk",
) -> Router:
    """The demo router, from `graphs/<graph>.yaml`, with the offline client unless `model`."""
    from agentroute._content import content_dir

    registry = build_registry(model)
    path = content_dir("graphs") / f"{graph}.yaml"
    if client is None and model is None:
        client = offline_client()
    return Router.from_graph(
        registry, path, store=store, client=client, out_of_scope="out_of_scope", app=DEMO_APP
    )


_WORD = re.compile(r"[a-z0-9']+")
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "to",
        "of",
        "in",
        "on",
        "for",
        "with",
        "my",
        "i",
        "me",
        "you",
        "your",
        "we",
        "our",
        "is",
        "are",
        "was",
        "were",
        "be",
        "it",
        "this",
        "that",
        "have",
        "has",
        "had",
        "do",
        "does",
        "did",
        "not",
        "no",
        "can",
        "could",
        "would",
        "should",
        "will",
        "at",
        "by",
        "from",
        "as",
        "please",
        "there",
        "their",
        "they",
        "them",
        "so",
        "just",
    ]
)


def offline_client() -> ModelClient:
    """A scripted model that answers from the skill cards in its prompt, deterministically.

    It picks the skill section whose text shares the most words with the customer's message
    and quotes its most relevant lines — a stand-in for an LLM that follows its instructions,
    with realistic token usage, so routing, budgets and traces behave as with a real model.
    """
    from agentroute.testing import ScriptedModelClient

    return ScriptedModelClient(
        [(r"^Classify this customer message", _triage_reply)], default=_grounded_reply
    )


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 2}


def _triage_reply(request: ModelRequest) -> str:
    text = request.messages[-1].content.lower()
    areas = {
        "security": ("hacked", "phishing", "2fa", "password"),
        "billing": ("charge", "refund", "invoice", "payment"),
        "shipping": ("package", "parcel", "delivery", "return", "tracking"),
        "technical": ("app", "login", "crash", "hub"),
    }
    area = next((a for a, keys in areas.items() if any(k in text for k in keys)), "general")
    return f"Area: {area}. The customer needs help with a {area} issue."


def _grounded_reply(request: ModelRequest) -> str:
    system = next((m.content for m in request.messages if m.role == "system"), "")
    question = request.messages[-1].content
    asked = _words(question)
    sections = [m.group(1) for m in re.finditer(r'<skill id="[^"]*">\n(.*?)</skill>', system, re.S)]
    if not sections:
        return "Thanks for reaching out. I'm escalating this to a specialist who will reply today."

    def fit(section: str) -> float:
        head = "\n".join(section.splitlines()[:2])  # name and description weigh most
        return 3 * len(asked & _words(head)) + len(asked & _words(section)) / 10

    best = max(sections, key=fit)
    title = best.splitlines()[0].strip()
    lines = [
        ln.strip(" -*#|")
        for ln in best.splitlines()[2:]
        if len(ln.strip()) > 40 and not ln.lstrip().startswith(("|", "#"))
    ]
    ranked = sorted(lines, key=lambda ln: -len(asked & _words(ln)))[:2]
    steps = " ".join(ln.rstrip(".") + "." for ln in ranked)
    return f"Following our {title} procedure: {steps}"
