"""Replay: exact replays spend nothing and match; counterfactual replays diff and never invent."""

from __future__ import annotations

import pytest

import agentroute as ar
from agentroute import RecordedModelClient, replay
from agentroute.errors import ConfigurationError, ModelUnavailable, RunNotFound
from agentroute.testing import ForbiddenModelClient, ScriptedModelClient

FAST = ar.RetryPolicy(max_attempts=3, initial_backoff_s=0, jitter=False)


def _registry() -> ar.Registry:
    reg = ar.Registry()
    reg.model(
        "cheap",
        "x/cheap",
        tier="cheap",
        input_price_per_mtok=1.0,
        output_price_per_mtok=2.0,
        retry=FAST,
    )
    reg.model(
        "strong",
        "x/strong",
        tier="strong",
        input_price_per_mtok=5.0,
        output_price_per_mtok=10.0,
        retry=FAST,
    )

    @reg.agent
    async def billing(ctx: ar.AgentContext, task: str) -> str:
        """Charges and refunds."""
        first = await ctx.complete(f"billing: {task}")
        return await ctx.complete(f"polish: {first}")

    @reg.agent
    async def shipping(ctx: ar.AgentContext, task: str) -> str:
        """Parcels."""
        return await ctx.complete(f"shipping: {task}")

    return reg


def _router(reg: ar.Registry, client: ar.ModelClient, **kw: object) -> ar.Router:
    return ar.Router(
        reg,
        agent=ar.Rules(
            [ar.Rule("refund", ar.Keywords("refund"), ("billing",))], default=("shipping",)
        ),
        model=ar.Static("cheap"),
        store=kw.pop("store", "memory://"),  # type: ignore[arg-type]
        client=client,
        **kw,  # type: ignore[arg-type]
    )


async def test_exact_replay_makes_zero_model_calls_and_matches() -> None:
    """Replaying with the same router serves every output from the trace: no provider call."""
    reg = _registry()
    live = ScriptedModelClient(default="Refund approved.")
    router = _router(reg, live)
    result = await router.run("I want a refund")
    assert live.calls == 2

    forbidden = ForbiddenModelClient()
    same = _router(reg, forbidden, store=router.store)
    report = await replay(result.run_id, same)
    assert forbidden.calls == 0
    assert report.mode == "exact"
    assert report.identical, report.divergences
    assert report.model_calls_served == 2
    assert report.replayed_answer == result.answer
    # The replay was kept out of the original store by default.
    assert [s.run_id for s in router.store.list_runs()] == [result.run_id]


async def test_exact_replay_rebuilds_recorded_router_from_registry() -> None:
    """Without a router, replay rebuilds the recorded one from the catalog and the registry."""
    reg = _registry()
    router = _router(reg, ScriptedModelClient(default="ok"))
    result = await router.run("where is my parcel?")
    report = await replay(result.run_id, registry=reg, store=router.store)
    assert report.mode == "exact"
    assert report.identical


async def test_replay_reproduces_recorded_failures_and_retries() -> None:
    """Recorded failed attempts are replayed as failures, so retries happen as they did."""
    reg = _registry()
    outcomes = iter([ModelUnavailable("503", model="cheap"), "fine"])

    class Flaky:
        async def complete(self, request: ar.Message) -> object:  # type: ignore[override]
            nxt = next(outcomes, "fine")
            if isinstance(nxt, Exception):
                raise nxt
            return await ScriptedModelClient(default=nxt).complete(request)  # type: ignore[arg-type]

    router = _router(reg, Flaky())  # type: ignore[arg-type]
    result = await router.run("parcel late")
    calls = router.trace(result.run_id).model_calls
    assert [c.error_type for c in calls] == ["ModelUnavailable", None]

    report = await replay(result.run_id, _router(reg, ForbiddenModelClient(), store=router.store))
    assert report.identical
    assert report.model_calls_served == 2


async def test_counterfactual_diff_marks_unobserved_outputs() -> None:
    """Another router's different choice is diffed step by step; its output is unobserved."""
    reg = _registry()
    router = _router(reg, ScriptedModelClient(default="Refund approved."))
    result = await router.run("I want a refund")

    other = ar.Router(
        reg,
        agent=ar.Static("shipping"),
        model=ar.Static("cheap"),
        store=router.store,
        client=ForbiddenModelClient(),
    )
    report = await replay(result.run_id, other)
    assert report.mode == "counterfactual"
    assert not report.identical
    agent_line = next(d for d in report.diffs if d.slot == "agent")
    assert (agent_line.recorded, agent_line.replayed, agent_line.status) == (
        ["billing"],
        ["shipping"],
        "changed",
    )
    shipping_out = next(d for d in report.diffs if d.slot == "output" and d.branch == "shipping")
    assert shipping_out.status == "unobserved"
    assert report.unobserved
    assert "shipping" in report.unobserved[0]
    billing_out = next(d for d in report.diffs if d.slot == "output" and d.branch == "billing")
    assert billing_out.status == "only_recorded"


async def test_counterfactual_with_another_model_is_unobserved() -> None:
    """Routing the same agent to a model the recording never called is not served."""
    reg = _registry()
    router = _router(reg, ScriptedModelClient(default="ok"))
    result = await router.run("I want a refund")
    other = _router(reg, ForbiddenModelClient(), store=router.store)
    other.model_strategy = ar.Static("strong")
    report = await replay(result.run_id, other)
    assert report.mode == "counterfactual"
    model_line = next(d for d in report.diffs if d.slot == "model")
    assert (model_line.recorded, model_line.replayed) == (["cheap"], ["strong"])
    assert any("strong" in u for u in report.unobserved)


async def test_replay_unknown_run_and_missing_router() -> None:
    """An unknown run id raises RunNotFound; no router and no registry is a configuration error."""
    reg = _registry()
    router = _router(reg, ScriptedModelClient())
    with pytest.raises(RunNotFound):
        await replay("nope", router)
    with pytest.raises(ConfigurationError):
        await replay("nope")


async def test_recorded_client_serves_in_order() -> None:
    """The recorded client serves attempts per (step, branch, call index) and counts them."""
    reg = _registry()
    router = _router(reg, ScriptedModelClient(default="x"))
    result = await router.run("refund please")
    trace = router.trace(result.run_id)
    client = RecordedModelClient(trace)
    first = trace.model_calls[0]
    request = ar.models.ModelRequest(  # type: ignore[attr-defined]
        model=reg.get_model("cheap"),
        messages=(ar.Message(role="user", content="whatever"),),
        metadata={"step": first.step, "branch": first.branch, "call_index": first.call_index},
    )
    response = await client.complete(request)
    assert response.text == first.response
    assert client.served == 1


async def test_rebuilt_router_keeps_out_of_scope_message_and_refine_single() -> None:
    """A rebuilt replay keeps the recorded `out_of_scope_message` and `refine_single`.

    A router that differs in them replays as counterfactual.
    """
    reg = _registry()

    @reg.agent
    async def broken(ctx: ar.AgentContext, task: str) -> str:
        """Always fails."""
        msg = "down"
        raise RuntimeError(msg)

    client = ScriptedModelClient(default="ok")
    refusing = ar.Router(
        reg,
        agent=ar.Rules([ar.Rule("refund", ar.Keywords("refund"), ("billing",))]),
        store="memory://",
        client=client,
        out_of_scope_message="Ask a human at desk 4.",
    )
    oos = await refusing.run("what is the weather")
    assert oos.answer == "Ask a human at desk 4."
    report = await replay(oos.run_id, registry=reg, store=refusing.store)
    assert report.mode == "exact"
    assert report.replayed_answer == "Ask a human at desk 4."
    plain = ar.Router(reg, agent=refusing.agent_strategy, store=refusing.store, client=client)
    assert (await replay(oos.run_id, plain)).mode == "counterfactual"

    merging = ar.Router(
        reg,
        agent=ar.Static("shipping", "broken"),
        store=refusing.store,
        client=client,
        refine_single=True,
    )
    merged = await merging.run("where is my parcel?")
    report = await replay(merged.run_id, registry=reg, store=merging.store)
    assert report.mode == "exact"
    assert report.identical, report.divergences
    assert report.replayed_answer == merged.answer
    assert "[broken] could not answer" in (report.replayed_answer or "")


class _Learner:
    """An agent strategy that counts the outcomes it learns from."""

    name = "learner"
    version = "1"

    def __init__(self) -> None:
        self.learned: list[str] = []

    async def route(self, ctx: ar.RoutingContext) -> ar.RouteDecision:
        return ar.RouteDecision.to("shipping")

    async def learn(self, outcome: ar.Outcome) -> None:
        self.learned.append(outcome.run_id)


async def test_replay_does_not_teach_learning_strategies() -> None:
    """A replay re-runs a recorded request: the live router's learners do not learn from it."""
    reg = _registry()
    learner = _Learner()
    router = ar.Router(
        reg, agent=learner, store="memory://", client=ScriptedModelClient(default="ok")
    )
    result = await router.run("where is my parcel?")
    assert learner.learned == [result.run_id]
    report = await replay(result.run_id, router)
    assert report.identical
    assert learner.learned == [result.run_id]
