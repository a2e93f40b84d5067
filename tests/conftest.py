"""Fixtures shared by the whole suite. Real model calls are impossible in every test.

Two guards are always on:

- `LITELLM_LOCAL_MODEL_COST_MAP=True`, so that importing LiteLLM never downloads its cost map;
- `LiteLLMClient.complete` is replaced by a function that fails the test, so a router built
  without an explicit client cannot reach a provider.

Tests that exercise `LiteLLMClient` itself request the `litellm` fixture (tests/models) or
`offline_litellm` (below); they keep the real method, with `litellm.acompletion` blocked unless
the test replaces it with a fake.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import agentroute as ar
from agentroute.testing import ScriptedModelClient

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

SKILLS_DIR = Path(__file__).resolve().parent.parent / "skills"
"""The 16 first-party skill cards."""

CHEAP_PRICES = {"input_price_per_mtok": 0.15, "output_price_per_mtok": 0.60}
STRONG_PRICES = {"input_price_per_mtok": 2.50, "output_price_per_mtok": 10.00}

# Tests that request one of these fixtures test LiteLLMClient itself, with LiteLLM mocked.
_CLIENT_TEST_FIXTURES = {"litellm", "offline_litellm"}


@pytest.fixture(autouse=True)
def _no_real_model_calls(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep LiteLLM offline, and make `LiteLLMClient.complete` fail the test when called."""
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    if _CLIENT_TEST_FIXTURES & set(request.fixturenames):
        return
    try:
        from agentroute.models import LiteLLMClient
    except ImportError:  # pragma: no cover - the models package is always there
        return

    async def forbidden(self: Any, request: Any) -> Any:
        name = getattr(getattr(request, "model", None), "name", "?")
        msg = (
            f"a real model call to {name!r} was attempted in a test; pass "
            "client=ScriptedModelClient(...) to the Router"
        )
        raise AssertionError(msg)

    monkeypatch.setattr(LiteLLMClient, "complete", forbidden)


@pytest.fixture
def offline_litellm(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """LiteLLM imported offline, with `acompletion` failing unless the test replaces it.

    `LiteLLMClient.complete` stays real; LiteLLM's own `mock_response` parameter still works
    (it answers before any network access).
    """
    import litellm

    real = litellm.acompletion

    async def guarded(**kwargs: Any) -> Any:
        if "mock_response" in kwargs:
            return await real(**kwargs)
        msg = f"litellm.acompletion reached the network path for {kwargs.get('model')!r}"
        raise AssertionError(msg)

    monkeypatch.setattr(litellm, "acompletion", guarded)
    return litellm


def build_support_registry() -> ar.Registry:
    """A small support desk: models cheap/strong, skills from `skills/`, four agents."""
    reg = ar.Registry()
    reg.model("cheap", "openai/gpt-4o-mini", tier="cheap", **CHEAP_PRICES)
    reg.model("strong", "openai/gpt-4o", tier="strong", **STRONG_PRICES)
    reg.load_skills(SKILLS_DIR)

    @reg.agent(skills=["refund-policy", "duplicate-charge", "invoice-lookup"], tier="cheap")
    async def billing(ctx: ar.AgentContext, task: str) -> str:
        """Invoices, charges, refunds and payment problems."""
        return await ctx.complete(f"{ctx.skills.as_prompt()}\n\nbilling: {task}")

    @reg.agent(skills=["order-tracking", "lost-package"], tier="cheap")
    def shipping(ctx: ar.AgentContext, task: str) -> str:
        """Order tracking, late and lost packages (a sync agent)."""
        return ctx.complete_sync(f"shipping: {task}")

    @reg.agent(skills=["account-takeover-response", "two-factor-auth"], tier="strong")
    async def security(ctx: ar.AgentContext, task: str) -> str:
        """Account security: hacked accounts, two-factor authentication, phishing."""
        return await ctx.complete(f"security: {task}")

    @reg.agent(skills=["tone-and-escalation"])
    async def general(ctx: ar.AgentContext, task: str) -> str:
        """Anything else a customer asks."""
        return await ctx.complete(f"general: {task}")

    return reg


@pytest.fixture
def skills_dir() -> Path:
    """The real `skills/` directory of the repository."""
    return SKILLS_DIR


@pytest.fixture
def registry() -> ar.Registry:
    """The support-desk registry (fresh per test)."""
    return build_support_registry()


@pytest.fixture
def client() -> ScriptedModelClient:
    """A scripted model client: canned answers per agent prefix, `OK` otherwise."""
    return ScriptedModelClient(
        [
            (r"billing:", "Your refund has been issued."),
            (r"shipping:", "Your package is on its way."),
            (r"security:", "Your account is locked for safety."),
            (r"general:", "Happy to help."),
        ],
        default="OK",
    )
