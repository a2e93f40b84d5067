"""Tests for a support desk: routing, answers, traces, failures and replay — all offline."""

import asyncio

import pytest

import agentroute as ar
from agentroute.errors import ModelRateLimited
from agentroute.testing import ForbiddenModelClient, ScriptedModelClient, capture_traces


def build_registry() -> ar.Registry:
    """Two agents and one model, built fresh for each test."""
    registry = ar.Registry()
    registry.model(
        "cheap",
        "openai/gpt-4o-mini",
        input_price_per_mtok=0.15,
        output_price_per_mtok=0.60,
        retry=ar.RetryPolicy(max_attempts=1),
    )

    @registry.agent
    async def billing(ctx: ar.AgentContext, task: str) -> str:
        """Answers questions about invoices, charges and refunds."""
        return await ctx.complete(f"Billing question: {task}")

    @registry.agent
    def general(ctx: ar.AgentContext, task: str) -> str:
        """Anything else."""
        return "A colleague will reply today."

    return registry


AGENT = ar.Rules(
    [ar.Rule("billing", ar.Keywords("refund", "charged"), ("billing",))], default=("general",)
)


@pytest.fixture(autouse=True)
def no_real_model_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """A router built without client= would use LiteLLMClient: make that fail the test."""

    async def forbidden(self: object, request: object) -> object:
        raise AssertionError("a real model call was attempted; pass client=ScriptedModelClient()")

    monkeypatch.setattr(ar.LiteLLMClient, "complete", forbidden)


def test_refunds_go_to_billing() -> None:
    """A refund question is routed to billing, whose answer comes from the model."""
    client = ScriptedModelClient([(r"refund", "Refunds take 5-10 business days.")])
    router = ar.Router(build_registry(), agent=AGENT, store="memory://", client=client)

    with capture_traces() as records:
        result = router.run_sync("Where is my refund?")

    assert result.status == "completed"
    assert result.agents == (("billing",),)
    assert result.answer == "Refunds take 5-10 business days."
    assert client.calls == 1
    decision = next(r for r in records if r.kind == "decision" and r.slot == "agent")
    assert decision.reason == "rule 'billing' fired"
    assert {c.name: c.score for c in decision.candidates} == {"billing": 1.0}


def test_the_rule_itself() -> None:
    """A strategy can be tested alone, with a hand-made RoutingContext."""
    ctx = ar.RoutingContext(
        run_id="t",
        step=0,
        slot="agent",
        task="I was charged twice",
        registry=build_registry(),
        candidates=("billing", "general"),
    )
    decision = asyncio.run(AGENT.route(ctx))
    assert decision.agents == ("billing",)


def test_rate_limit_fails_the_run_with_the_run_id() -> None:
    """When every agent of a step fails, the run raises, and the trace says why."""
    client = ScriptedModelClient([(r"refund", ModelRateLimited("429", model="cheap"))])
    router = ar.Router(build_registry(), agent=AGENT, store="memory://", client=client)

    with pytest.raises(ar.AgentError) as info:
        router.run_sync("Where is my refund?")

    end = router.trace(info.value.run_id).end
    assert end is not None
    assert end.status == "failed"
    assert end.error_type == "ModelRateLimited"


def test_replay_spends_nothing() -> None:
    """An exact replay serves every model output from the trace."""
    client = ScriptedModelClient(default="Done.")
    router = ar.Router(build_registry(), agent=AGENT, store="memory://", client=client)
    result = router.run_sync("I was charged twice")

    replayer = ar.Router(
        build_registry(), agent=AGENT, store=router.store, client=ForbiddenModelClient()
    )
    report = asyncio.run(ar.replay(result.run_id, replayer))

    assert report.mode == "exact"
    assert report.identical
    assert report.model_calls_served == 1
