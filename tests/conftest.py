"""Fixtures shared by the whole suite. Real model calls are impossible in every test.

Two guards are always on:

- `LITELLM_LOCAL_MODEL_COST_MAP=True`, so that importing LiteLLM never downloads its cost map;
- `LiteLLMClient.complete` is replaced by a function that fails the test, so a router built
  without an explicit client cannot reach a provider.

Tests that exercise `LiteLLMClient` itself request the `litellm` fixture (tests/models) or
`offline_litellm` (below); they keep the real method, with `litellm.acompletion` blocked unless
the test replaces it with a fake.

PostgreSQL tests request `pg_url`: a URL on the server at `AGENTROUTE_TEST_PG` (default
`postgresql://postgres@127.0.0.1:5432/test`) whose search path is a fresh schema, dropped after
the test, so parallel runs never collide. An unreachable server fails those tests unless
`AGENTROUTE_SKIP_PG=1` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest

import agentroute as ar
from agentroute.testing import ScriptedModelClient

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

SKILLS_DIR = Path(__file__).resolve().parent.parent / "skills"
"""The 16 first-party skill cards."""

CHEAP_PRICES = {"input_price_per_mtok": 0.15, "output_price_per_mtok": 0.60}
STRONG_PRICES = {"input_price_per_mtok": 2.50, "output_price_per_mtok": 10.00}

PG_URL = os.environ.get("AGENTROUTE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
"""The PostgreSQL test server (SQLAlchemy or libpq form)."""


def libpq_url(url: str) -> str:
    """`url` as psycopg (libpq) accepts it: no SQLAlchemy driver suffix."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1).replace(
        "postgres://", "postgresql://", 1
    )


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The test server's URL; fails (or skips with AGENTROUTE_SKIP_PG=1) when unreachable."""
    import psycopg

    try:
        with psycopg.connect(libpq_url(PG_URL), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL at {PG_URL} is unreachable ({exc}); set AGENTROUTE_SKIP_PG=1 to skip"
        if os.environ.get("AGENTROUTE_SKIP_PG") == "1":
            pytest.skip(message)
        pytest.fail(message)
    return PG_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A store URL whose tables live in a fresh schema, dropped after the test."""
    import psycopg

    schema = f"agentroute_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_url(pg_server), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in pg_server else "?"
    yield f"{pg_server}{separator}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(libpq_url(pg_server), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


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
