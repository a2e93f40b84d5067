"""Failures and clean stops.

Agent errors, timeouts, retries, routing errors, out of scope, budgets and model fallbacks.
Every failure is recorded and the chain stays valid.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import pytest

import agentroute as ar
from agentroute.errors import ModelUnavailable
from agentroute.registry import RetryPolicy
from agentroute.routing import RouteDecision, RoutingContext
from agentroute.testing import ScriptedModelClient, capture_traces

from .conftest import MakeRouter, assert_chained, kinds

NO_WAIT = RetryPolicy(max_attempts=3, initial_backoff_s=0, jitter=False)

# -- agents that fail ----------------------------------------------------------------------------


async def test_agent_that_raises_fails_the_run_with_a_record(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """An agent raising → AgentError with run_id; the output holds the error; run_end `failed`."""

    @registry.agent
    async def broken(ctx: ar.AgentContext, task: str) -> str:
        """Calls the model, then fails."""
        await ctx.complete("general: first")
        msg = "database is down"
        raise RuntimeError(msg)

    router = make_router(ar.Static("broken"))
    with capture_traces() as captured, pytest.raises(ar.AgentError) as info:
        await router.run("go")
    err = info.value
    assert err.run_id is not None
    assert err.agent == "broken"
    assert "RuntimeError: database is down" in str(err)
    trace = router.trace(err.run_id)
    assert kinds(trace.records) == ["run", "decision", "model_call", "agent_output", "run_end"]
    assert [r.hash for r in captured] == [r.hash for r in trace.records]
    output = trace.outputs[0]
    assert output.output is None
    assert output.error == "RuntimeError: database is down"
    assert output.error_type == "RuntimeError"
    assert trace.model_calls[0].response == "Happy to help."  # the earlier call is intact
    end = trace.end
    assert end is not None
    assert end.status == "failed"
    assert end.error == "RuntimeError: database is down"
    assert end.error_type == "RuntimeError"
    assert_chained(trace.records)
    assert router.store.verify(err.run_id).ok


async def test_agent_returning_a_wrong_type_fails_clearly(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """An agent returning neither str nor AgentResult fails with a message saying what to return."""

    @registry.agent
    async def sloppy(ctx: ar.AgentContext, task: str) -> Any:
        """Returns a dict."""
        return {"answer": 1}

    router = make_router(ar.Static("sloppy"))
    with pytest.raises(ar.AgentError, match="return a str or an AgentResult"):
        await router.run("go")


async def test_one_failing_branch_does_not_sink_the_other(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """One of two branches failing leaves the run completed with the survivor's answer."""

    @registry.agent
    async def flaky_branch(ctx: ar.AgentContext, task: str) -> str:
        """Always fails."""
        msg = "upstream timeout"
        raise ConnectionError(msg)

    router = make_router(ar.Static("flaky_branch", "general"))
    result = await router.run("help")
    assert result.status == "completed"
    assert result.answer == "Happy to help."
    trace = router.trace(result.run_id)
    by_agent = {o.agent: o for o in trace.outputs}
    assert by_agent["flaky_branch"].error == "ConnectionError: upstream timeout"
    assert by_agent["flaky_branch"].error_type == "ConnectionError"
    assert by_agent["general"].output == "Happy to help."
    assert router.store.verify(result.run_id).ok


async def test_refine_single_lists_the_failure(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """With refine_single=True the survivor's answer is refined, and the failure is named."""

    @registry.agent
    async def failing(ctx: ar.AgentContext, task: str) -> str:
        """Always fails."""
        raise ValueError("bad input")

    result = await make_router(ar.Static("failing", "general"), refine_single=True).run("help")
    assert (
        result.answer
        == "[general]\nHappy to help.\n\n[failing] could not answer (ValueError: bad input)"
    )


async def test_agent_timeout_is_an_agent_error(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """An agent exceeding timeout_s fails with AgentError naming the limit, recorded."""

    @registry.agent(timeout_s=0.05)
    async def sleepy(ctx: ar.AgentContext, task: str) -> str:
        """Takes far too long."""
        await asyncio.sleep(5)
        return "late"

    router = make_router(ar.Static("sleepy"))
    with pytest.raises(ar.AgentError, match=r"timeout_s=0\.05") as info:
        await router.run("go")
    trace = router.trace(info.value.run_id)
    output = trace.outputs[0]
    assert output.error_type == "AgentError"
    assert "did not finish within timeout_s=0.05" in (output.error or "")
    assert output.latency_ms < 2000
    assert trace.end is not None
    assert trace.end.status == "failed"


async def test_agent_retry_policy_retries_a_flaky_agent(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """An agent with retry=RetryPolicy(max_attempts=3) succeeds on its third attempt."""
    attempts = {"n": 0}

    @registry.agent(retry=NO_WAIT)
    async def flaky(ctx: ar.AgentContext, task: str) -> str:
        """Fails twice, then answers."""
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionError(f"attempt {attempts['n']} failed")
        return "third time lucky"

    router = make_router(ar.Static("flaky"))
    result = await router.run("go")
    assert attempts["n"] == 3
    assert (result.status, result.answer) == ("completed", "third time lucky")
    outputs = router.trace(result.run_id).outputs
    assert [(o.output, o.error) for o in outputs] == [("third time lucky", None)]


async def test_agent_retry_gives_up_after_max_attempts(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """An agent that always fails is tried max_attempts times, then the last error is recorded."""
    attempts = {"n": 0}

    @registry.agent(retry=NO_WAIT)
    async def hopeless(ctx: ar.AgentContext, task: str) -> str:
        """Always fails."""
        attempts["n"] += 1
        raise ConnectionError(f"attempt {attempts['n']} failed")

    with pytest.raises(ar.AgentError, match="attempt 3 failed"):
        await make_router(ar.Static("hopeless")).run("go")
    assert attempts["n"] == 3


# -- strategies that fail ------------------------------------------------------------------------


class Exploding:
    name: ClassVar[str] = "exploding"

    async def route(self, ctx: RoutingContext) -> RouteDecision:
        msg = "classifier offline"
        raise KeyError(msg)


async def test_strategy_that_raises_is_a_routing_error(make_router: MakeRouter) -> None:
    """A raising strategy → RoutingError (cause kept); an `error` decision is recorded."""
    router = make_router(Exploding())
    with pytest.raises(ar.RoutingError, match="agent strategy 'exploding' raised KeyError") as info:
        await router.run("go")
    assert isinstance(info.value.__cause__, KeyError)
    run_id = info.value.run_id
    assert run_id is not None
    trace = router.trace(run_id)
    assert kinds(trace.records) == ["run", "decision", "run_end"]
    decision = trace.decisions[0]
    assert (decision.outcome, decision.strategy, decision.slot) == ("error", "exploding", "agent")
    assert decision.error is not None
    assert "classifier offline" in decision.error
    assert trace.end is not None
    assert trace.end.status == "failed"
    assert trace.end.error_type == "RoutingError"
    assert router.store.verify(run_id).ok


class Choose:
    """Routes to a fixed (possibly invalid) decision."""

    name: ClassVar[str] = "choose"

    def __init__(self, decision: Any) -> None:
        self.decision = decision

    async def route(self, ctx: RoutingContext) -> Any:
        return self.decision


async def test_unknown_agent_is_a_routing_error_with_did_you_mean(make_router: MakeRouter) -> None:
    """A strategy choosing a misspelt agent → RoutingError suggesting the right name."""
    router = make_router(Choose(RouteDecision.to("biling")))
    with pytest.raises(
        ar.RoutingError,
        match=r"chose 'biling', which is not a candidate here — did you mean 'billing'\?",
    ) as info:
        await router.run("go")
    trace = router.trace(info.value.run_id or "")
    assert [d.outcome for d in trace.decisions] == ["error"]
    assert router.store.verify(trace.run_id).ok


@pytest.mark.parametrize(
    ("decision", "message"),
    [
        ("billing", "returned str, not a RouteDecision"),
        (RouteDecision.to("billing", "billing"), "chose duplicates"),
        (RouteDecision(), "routed to no agent"),
    ],
    ids=["not-a-decision", "duplicates", "empty"],
)
async def test_invalid_decisions_are_routing_errors(
    make_router: MakeRouter, decision: Any, message: str
) -> None:
    """Decisions that do not fit the slot are refused as RoutingError and recorded."""
    router = make_router(Choose(decision))
    with pytest.raises(ar.RoutingError, match=message) as info:
        await router.run("go")
    assert router.trace(info.value.run_id or "").decisions[0].outcome == "error"


# -- out of scope --------------------------------------------------------------------------------


async def test_out_of_scope_without_handler_answers_politely(
    make_router: MakeRouter, client: ScriptedModelClient
) -> None:
    """out_of_scope with no handler: status out_of_scope, the configured message, no agent runs."""
    router = make_router(
        Choose(RouteDecision.out_of_scope("weather is not supported")),
        out_of_scope_message="Not here.",
    )
    result = await router.run("what's the weather?")
    assert (result.status, result.answer, result.reason) == (
        "out_of_scope",
        "Not here.",
        "weather is not supported",
    )
    assert result.agents == ()
    assert client.calls == 0
    trace = router.trace(result.run_id)
    assert kinds(trace.records) == ["run", "decision", "run_end"]
    assert trace.decisions[0].outcome == "out_of_scope"
    assert trace.end is not None
    assert trace.end.status == "out_of_scope"


async def test_out_of_scope_with_handler_agent(make_router: MakeRouter) -> None:
    """With out_of_scope='general', that agent answers and the status stays out_of_scope."""
    router = make_router(Choose(RouteDecision.out_of_scope("no fit")), out_of_scope="general")
    result = await router.run("what's the weather?")
    assert result.status == "out_of_scope"
    assert result.answer == "Happy to help."
    assert result.agents == (("general",),)
    assert [o.agent for o in router.trace(result.run_id).outputs] == ["general"]


async def test_handler_is_not_a_routing_candidate(make_router: MakeRouter) -> None:
    """The out-of-scope handler cannot be chosen by the agent slot directly.

    A strategy that decides at run time is stopped then (RoutingError); a `Static` that always
    would is refused before any run, at compile.
    """
    router = make_router(Choose(RouteDecision.to("general")), out_of_scope="general")
    with pytest.raises(ar.RoutingError, match="not a candidate"):
        await router.run("hi")
    router = make_router(ar.Static("general"), out_of_scope="general")
    with pytest.raises(ar.ConfigurationError, match="is the out-of-scope handler"):
        await router.run("hi")


async def test_abstain_is_out_of_scope(make_router: MakeRouter) -> None:
    """A strategy that abstains (Rules with nothing firing) ends the run out of scope."""
    rules = ar.Rules([ar.Rule("refund", ar.Keywords("refund"), ("billing",))])
    router = make_router(rules)
    result = await router.run("what's the weather?")
    assert result.status == "out_of_scope"
    assert result.reason == "no rule fired and no default"
    assert result.answer is not None
    assert "outside what I can help with" in result.answer
    assert router.trace(result.run_id).decisions[0].outcome == "abstain"


async def test_finish_at_step_zero(make_router: MakeRouter) -> None:
    """A strategy finishing at once completes with no answer and no agent."""
    result = await make_router(Choose(RouteDecision.finish("nothing to do"))).run("hi")
    assert (result.status, result.answer, result.reason, result.agents) == (
        "completed",
        None,
        "nothing to do",
        (),
    )


# -- budget --------------------------------------------------------------------------------------


async def test_budget_exhaustion_ends_the_run_cleanly(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """A small budget: BudgetExceeded is raised in the agent; the run ends `budget_exhausted`."""
    seen: list[BaseException] = []
    calls = {"n": 0}

    @registry.agent(model="strong")
    async def spender(ctx: ar.AgentContext, task: str) -> str:
        """Calls the model until the budget says no."""
        while True:
            try:
                await ctx.complete("general: more")
            except ar.BudgetExceeded as exc:
                seen.append(exc)
                assert ctx.budget.spent_usd <= ctx.budget.limit_usd  # type: ignore[operator]
                raise
            calls["n"] += 1

    # A strong call reserves up to ~0.0103 USD (1024 output tokens at $10/M) and settles at
    # its (much smaller) actual cost: calls go on until the spend leaves no room for a reservation.
    limit = 0.025
    router = make_router(ar.Static("spender"))
    result = await router.run("go", budget=ar.Budget(usd=limit))
    assert result.status == "budget_exhausted"
    assert calls["n"] >= 2
    assert len(seen) == 1
    exc = seen[0]
    assert exc.limit_usd == limit
    assert exc.spent_usd == pytest.approx(result.cost_usd)
    assert exc.spent_usd + exc.reserved_usd + exc.requested_usd > limit
    assert limit - exc.requested_usd < result.cost_usd <= limit
    assert "budget" in result.reason
    trace = router.trace(result.run_id)
    assert sum(c.cost_usd for c in trace.model_calls) == pytest.approx(result.cost_usd)
    assert trace.outputs[0].error_type == "BudgetExceeded"
    end = trace.end
    assert end is not None
    assert end.status == "budget_exhausted"
    assert end.reason == result.reason
    assert end.cost_usd <= limit
    assert router.store.verify(result.run_id).ok


async def test_budget_too_small_for_any_call(
    make_router: MakeRouter, client: ScriptedModelClient
) -> None:
    """A budget smaller than one call's reservation: no model call is made and nothing is spent."""
    router = make_router(ar.Static("billing"))
    result = await router.run("refund", budget=ar.Budget(usd=1e-9))
    assert result.status == "budget_exhausted"
    assert result.cost_usd == 0
    assert client.calls == 0
    assert router.trace(result.run_id).model_calls == []


async def test_router_default_budget_applies(make_router: MakeRouter) -> None:
    """The router's `budget=` applies when a run gives none; the run's own budget wins."""
    router = make_router(ar.Static("billing"), budget=ar.Budget(usd=1e-9))
    assert (await router.run("refund")).status == "budget_exhausted"
    assert (await router.run("refund", budget=ar.Budget(usd=1.0))).status == "completed"
    assert router.trace((await router.run("refund")).run_id).run.budget_usd == 1e-9


async def test_parallel_branches_share_one_budget(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """Concurrent branches reserve against one ledger: total spend never passes the limit."""
    for i in range(4):

        async def fn(ctx: ar.AgentContext, task: str) -> str:
            return await ctx.complete("general: x", model="strong")

        registry.agent(name=f"worker{i}", description="Spends.")(fn)

    # latency keeps every call in flight while the others reserve
    slow = ScriptedModelClient(default="done", latency_s=0.05)
    router = make_router(ar.Static(*(f"worker{i}" for i in range(4))), client=slow)
    limit = 0.025  # room for two strong reservations at once
    result = await router.run("go", budget=ar.Budget(usd=limit))
    trace = router.trace(result.run_id)
    ok = [o for o in trace.outputs if o.error is None]
    refused = [o for o in trace.outputs if o.error_type == "BudgetExceeded"]
    assert len(ok) == 2
    assert len(refused) == 2
    assert slow.calls == 2
    assert result.status == "budget_exhausted"
    assert result.cost_usd <= limit


# -- model fallbacks -----------------------------------------------------------------------------


async def test_model_fallback_through_the_runtime(registry: ar.Registry) -> None:
    """Primary raises ModelUnavailable → the fallback answers; both attempts are recorded."""
    reg = ar.Registry()
    reg.model(
        "primary",
        "openai/gpt-4o",
        fallbacks=["backup"],
        retry=RetryPolicy(max_attempts=1),
        input_price_per_mtok=1,
        output_price_per_mtok=1,
    )
    reg.model(
        "backup", "anthropic/claude-3-5-haiku", input_price_per_mtok=1, output_price_per_mtok=1
    )

    @reg.agent(model="primary")
    async def answerer(ctx: ar.AgentContext, task: str) -> str:
        """Asks the model."""
        return await ctx.complete(task)

    client = ScriptedModelClient(
        [
            (
                lambda req: req.model.name == "primary",
                ModelUnavailable("503 from provider", model="primary"),
            )
        ],
        default="backup says hi",
    )
    router = ar.Router(reg, agent=ar.Static("answerer"), store="memory://", client=client)
    result = await router.run("hello")
    assert (result.status, result.answer) == ("completed", "backup says hi")
    calls = router.trace(result.run_id).model_calls
    assert [(c.model, c.attempt, c.error_type, c.response) for c in calls] == [
        ("primary", 1, "ModelUnavailable", None),
        ("backup", 2, None, "backup says hi"),
    ]
    assert calls[0].cost_usd == 0
    assert calls[0].call_index == calls[1].call_index == 0
    assert result.cost_usd == pytest.approx(calls[1].cost_usd)
    assert [r.model.name for r in client.requests] == ["primary", "backup"]


async def test_model_retries_are_recorded_per_attempt(registry: ar.Registry) -> None:
    """A retryable failure is retried per the model's policy; each attempt is a record."""
    reg = ar.Registry()
    reg.model(
        "m", "openai/gpt-4o-mini", retry=NO_WAIT, input_price_per_mtok=1, output_price_per_mtok=1
    )

    @reg.agent
    async def asker(ctx: ar.AgentContext, task: str) -> str:
        """Asks."""
        return await ctx.complete(task)

    failures = {"n": 0}

    def flaky(req: Any) -> bool:
        failures["n"] += 1
        return failures["n"] <= 2

    client = ScriptedModelClient([(flaky, ModelUnavailable("blip", model="m"))], default="ok")
    router = ar.Router(reg, agent=ar.Static("asker"), store="memory://", client=client)
    result = await router.run("q")
    assert result.answer == "ok"
    calls = router.trace(result.run_id).model_calls
    assert [(c.attempt, c.error_type) for c in calls] == [
        (1, "ModelUnavailable"),
        (2, "ModelUnavailable"),
        (3, None),
    ]


async def test_all_models_failing_fails_the_agent(registry: ar.Registry) -> None:
    """When primary and fallback both fail, the agent fails with a ModelCallError naming both."""
    reg = ar.Registry()
    one = RetryPolicy(max_attempts=1)
    reg.model(
        "a",
        "openai/gpt-4o",
        fallbacks=["b"],
        retry=one,
        input_price_per_mtok=1,
        output_price_per_mtok=1,
    )
    reg.model("b", "openai/gpt-4o-mini", retry=one, input_price_per_mtok=1, output_price_per_mtok=1)

    @reg.agent(model="a")
    async def asker(ctx: ar.AgentContext, task: str) -> str:
        """Asks."""
        return await ctx.complete(task)

    client = ScriptedModelClient([], default=ModelUnavailable("down", model="?"))
    router = ar.Router(reg, agent=ar.Static("asker"), store="memory://", client=client)
    with pytest.raises(ar.AgentError, match=r"every model failed \('a', 'b'\)") as info:
        await router.run("q")
    trace = router.trace(info.value.run_id or "")
    assert [c.model for c in trace.model_calls] == ["a", "b"]
    assert trace.outputs[0].error_type == "ModelUnavailable"


async def test_out_of_scope_rule_through_the_router(make_router: MakeRouter) -> None:
    """A Rules out-of-scope rule ends the run out of scope, answered by the handler agent."""
    rules = ar.Rules(
        [
            ar.Rule("weather", ar.Keywords("weather"), out_of_scope=True),
            ar.Rule("refund", ar.Keywords("refund"), ("billing",)),
        ]
    )
    router = make_router(rules, out_of_scope="general")
    result = await router.run("what's the weather like?")
    assert (result.status, result.answer, result.reason) == (
        "out_of_scope",
        "Happy to help.",
        "rule 'weather' fired: out of scope",
    )
    refund = await router.run("refund please")
    assert (refund.status, refund.agents) == ("completed", (("billing",),))


async def test_llm_refiner_refuses_politely_when_every_agent_failed() -> None:
    """With the LLM Refiner, a step where every agent failed still yields its polite refusal.

    The run fails (AgentError), and the error and the run's end record both carry the refusal.
    """
    import agentroute as ar
    from agentroute.testing import ScriptedModelClient

    registry = ar.Registry()
    registry.model("m", "x/m", input_price_per_mtok=1.0, output_price_per_mtok=1.0)

    @registry.agent
    async def a(ctx: ar.AgentContext, task: str) -> str:
        """Fails."""
        msg = "a is down"
        raise RuntimeError(msg)

    @registry.agent
    async def b(ctx: ar.AgentContext, task: str) -> str:
        """Fails too."""
        msg = "b is down"
        raise RuntimeError(msg)

    router = ar.Router(
        registry,
        agent=ar.Static("a", "b"),
        refiner=ar.Refiner(model="m"),
        store="memory://",
        client=ScriptedModelClient(),
    )
    with pytest.raises(ar.AgentError) as info:
        await router.run("help")
    assert info.value.answer
    end = router.trace(info.value.run_id or "").end
    assert end is not None
    assert end.status == "failed"
    assert end.answer == info.value.answer


async def test_a_run_that_raises_is_durable_in_sqlite(tmp_path: Path) -> None:
    """A run failing with an exception has its records, end record included, on disk at once.

    A second store handle on the same file (another process would see the same) reads them
    without any flush from the first.
    """
    import agentroute as ar
    from agentroute.stores import SqlTraceStore
    from agentroute.testing import ScriptedModelClient

    registry = ar.Registry()
    registry.model("m", "x/m", input_price_per_mtok=1.0, output_price_per_mtok=1.0)

    @registry.agent
    async def only(ctx: ar.AgentContext, task: str) -> str:
        """Answers."""
        return "ok"

    class Boom:
        name = "boom"

        async def route(self, ctx: ar.RoutingContext) -> ar.RouteDecision:
            msg = "strategy exploded"
            raise ValueError(msg)

    db = f"sqlite:///{tmp_path / 't.db'}"
    # A long interval: without the explicit flush, nothing would reach the file before the read.
    store = SqlTraceStore(db, flush_interval_s=60, batch_size=10_000)
    router = ar.Router(registry, agent=Boom(), store=store, client=ScriptedModelClient())
    with pytest.raises(ar.RoutingError) as info:
        await router.run("hello")
    other = SqlTraceStore(db)
    try:
        end = other.get_run(info.value.run_id or "").end
        assert end is not None
        assert end.status == "failed"
    finally:
        other.close()
        store.close()
