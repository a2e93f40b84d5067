"""Running a router: traces, fan-out, sync agents, skills and per-branch slots, streaming."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, ClassVar

import pytest

import agentroute as ar
from agentroute.routing import RouteDecision, RoutingContext
from agentroute.stores import RunEndRecord
from agentroute.testing import ScriptedModelClient, capture_traces

from .conftest import MakeRouter, assert_chained, kinds

# -- one agent, end to end -----------------------------------------------------------------------


async def test_single_agent_run_and_its_trace(
    make_router: MakeRouter, client: ScriptedModelClient
) -> None:
    """One agent completes; trace: run → decision → model_call → agent_output → run_end."""
    router = make_router(ar.Static("billing"))
    with capture_traces() as captured:
        result = await router.run("Where is my refund?", budget=ar.Budget(usd=1.0))
    assert result.status == "completed"
    assert result.answer == "Your refund has been issued."
    assert result.agents == (("billing",),)
    assert result.cost_usd > 0
    assert client.calls == 1

    trace = router.trace(result.run_id)
    expected = ["run", "decision", "model_call", "agent_output", "run_end"]
    assert kinds(captured) == expected
    assert kinds(trace.records) == expected
    assert [r.hash for r in captured] == [r.hash for r in trace.records]
    assert_chained(trace.records)
    report = router.store.verify(result.run_id)
    assert report.ok, report.problems
    assert report.complete

    run, decision, call, output, end = trace.records
    assert run.task == "Where is my refund?"
    assert run.budget_usd == 1.0
    assert run.registry_hash == router.registry.content_hash()
    assert run.router["agent"]["strategy"] == "static"
    assert (decision.slot, decision.outcome, decision.chosen) == ("agent", "route", ["billing"])
    assert decision.strategy == "static"
    assert call.branch == "billing"
    assert call.model == "cheap"  # billing's tier
    assert call.response == "Your refund has been issued."
    assert call.cost_usd == pytest.approx(result.cost_usd)
    assert call.input_tokens > 0
    assert output.agent == "billing"
    assert output.output == result.answer
    assert output.skills == ["refund-policy", "duplicate-charge", "invoice-lookup"]
    assert output.model == "cheap"
    assert (end.status, end.answer, end.cost_usd) == ("completed", result.answer, result.cost_usd)


def test_run_sync_outside_a_loop(make_router: MakeRouter) -> None:
    """`run_sync` runs to the end from synchronous code."""
    result = make_router(ar.Static("general")).run_sync("hi there")
    assert (result.status, result.answer) == ("completed", "Happy to help.")


async def test_run_sync_inside_a_loop_raises_with_the_hint(make_router: MakeRouter) -> None:
    """`run_sync` inside a running loop raises RuntimeError pointing at `await router.run`."""
    router = make_router(ar.Static("general"))
    with pytest.raises(RuntimeError, match=r"use `await router.run\(...\)`"):
        router.run_sync("hi")


async def test_empty_task_is_refused(make_router: MakeRouter) -> None:
    """An empty or blank task is a ConfigurationError, and nothing is recorded."""
    router = make_router(ar.Static("general"))
    with pytest.raises(ar.ConfigurationError, match="non-empty string"):
        await router.run("   ")
    assert router.store.run_ids() == []


async def test_run_id_and_metadata_are_recorded(make_router: MakeRouter) -> None:
    """A caller-given run id and metadata are used and recorded."""
    router = make_router(ar.Static("general"))
    result = await router.run("hi", run_id="my-run-1", metadata={"tenant": "acme"})
    assert result.run_id == "my-run-1"
    assert router.trace("my-run-1").run.metadata == {"tenant": "acme"}


# -- fan-out -------------------------------------------------------------------------------------


async def test_fan_out_runs_agents_concurrently(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """Two agents that each wait for the other's signal both finish: they run at the same time."""
    first_ready, second_ready = asyncio.Event(), asyncio.Event()

    @registry.agent
    async def ping(ctx: ar.AgentContext, task: str) -> str:
        """Signals, then waits for pong."""
        first_ready.set()
        await asyncio.wait_for(second_ready.wait(), timeout=2)
        return "ping done"

    @registry.agent
    async def pong(ctx: ar.AgentContext, task: str) -> str:
        """Signals, then waits for ping."""
        second_ready.set()
        await asyncio.wait_for(first_ready.wait(), timeout=2)
        return "pong done"

    router = make_router(ar.Static("ping", "pong"))
    result = await router.run("go")
    assert result.status == "completed"
    trace = router.trace(result.run_id)
    assert all(o.error is None for o in trace.outputs), [o.error for o in trace.outputs]
    assert result.answer == "[ping]\nping done\n\n[pong]\npong done"


async def test_join_answers_follow_decision_order(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """JoinAnswers lists answers in the order agents were chosen, not the order they finished."""
    finished: list[str] = []

    @registry.agent
    async def slow(ctx: ar.AgentContext, task: str) -> str:
        """Answers late."""
        await asyncio.sleep(0.05)
        finished.append("slow")
        return "slow answer"

    @registry.agent
    async def fast(ctx: ar.AgentContext, task: str) -> str:
        """Answers at once."""
        finished.append("fast")
        return "fast answer"

    router = make_router(ar.Static("slow", "fast"))
    with capture_traces() as records:
        result = await router.run("go")
    assert finished == ["fast", "slow"]
    assert result.answer == "[slow]\nslow answer\n\n[fast]\nfast answer"
    refiner = [r for r in records if r.kind == "decision" and r.slot == "refiner"]
    assert len(refiner) == 1
    assert refiner[0].strategy == "join"
    assert refiner[0].chosen == ["slow", "fast"]
    # the reversed decision order reverses the answer
    result2 = await make_router(ar.Static("fast", "slow")).run("go")
    assert result2.answer == "[fast]\nfast answer\n\n[slow]\nslow answer"


async def test_fan_out_records_one_output_per_branch(
    make_router: MakeRouter, client: ScriptedModelClient
) -> None:
    """A three-way fan-out records one call and one output per branch, on its own model."""
    router = make_router(ar.Static("billing", "shipping", "security"))
    result = await router.run("charged, lost parcel, hacked")
    trace = router.trace(result.run_id)
    assert sorted(o.agent for o in trace.outputs) == ["billing", "security", "shipping"]
    models = {c.branch: c.model for c in trace.model_calls}
    assert models == {"billing": "cheap", "shipping": "cheap", "security": "strong"}
    assert {r.model.name for r in client.requests} == {"cheap", "strong"}
    assert router.store.verify(result.run_id).ok


# -- sync agents ---------------------------------------------------------------------------------


async def test_sync_agent_runs_in_a_worker_thread(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """A sync agent runs off the event loop's thread, and `ctx.complete_sync` reaches the model."""
    seen: dict[str, Any] = {}
    loop_thread = threading.get_ident()

    @registry.agent
    def clerk(ctx: ar.AgentContext, task: str) -> str:
        """A blocking, synchronous agent."""
        seen["thread"] = threading.get_ident()
        return ctx.complete_sync(f"shipping: {task}")

    router = make_router(ar.Static("clerk"))
    result = await router.run("where is it")
    assert seen["thread"] != loop_thread
    assert result.answer == "Your package is on its way."
    assert [c.branch for c in router.trace(result.run_id).model_calls] == ["clerk"]


async def test_sync_agent_does_not_block_the_loop(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """While a sync agent blocks, an async branch of the same step still runs to completion."""
    release = threading.Event()

    @registry.agent
    def blocker(ctx: ar.AgentContext, task: str) -> str:
        """Blocks until released by the other branch."""
        assert release.wait(timeout=2), "the loop was blocked"
        return "unblocked"

    @registry.agent
    async def releaser(ctx: ar.AgentContext, task: str) -> str:
        """Releases the blocker."""
        await asyncio.sleep(0.01)
        release.set()
        return "released"

    result = await make_router(ar.Static("blocker", "releaser")).run("go")
    assert result.answer == "[blocker]\nunblocked\n\n[releaser]\nreleased"


# -- skills and model slots ----------------------------------------------------------------------


async def test_ctx_skills_hold_full_bodies(make_router: MakeRouter, registry: ar.Registry) -> None:
    """Without a skills strategy, ctx.skills holds the agent's declared skills with whole bodies."""
    seen: dict[str, Any] = {}

    @registry.agent(skills=["refund-policy", "lost-package"])
    async def reader(ctx: ar.AgentContext, task: str) -> str:
        """Reads its skills."""
        seen["ids"] = ctx.skills.ids
        seen["bodies"] = [s.body for s in ctx.skills]
        seen["prompt"] = ctx.skills.as_prompt()
        return "ok"

    await make_router(ar.Static("reader")).run("go")
    assert seen["ids"] == ["refund-policy", "lost-package"]
    assert seen["bodies"] == [
        registry.get_skill("refund-policy").body,
        registry.get_skill("lost-package").body,
    ]
    assert all(len(b) > 500 for b in seen["bodies"])
    assert registry.get_skill("lost-package").body in seen["prompt"]


async def test_static_skills_and_model_slots_decide_per_branch(
    make_router: MakeRouter, registry: ar.Registry, client: ScriptedModelClient
) -> None:
    """Skills/model strategies decide per branch (branch = agent); calls use the routed model."""
    seen: dict[str, Any] = {}

    @registry.agent(skills=None, tier="cheap")
    async def helper(ctx: ar.AgentContext, task: str) -> str:
        """Uses whatever it is given."""
        seen.setdefault("skills", {})[ctx.agent] = ctx.skills.ids
        seen.setdefault("model", {})[ctx.agent] = ctx.model
        return await ctx.complete(f"general: {task}")

    router = make_router(
        ar.Static("helper", "general"),
        skills=ar.Static("tone-and-escalation"),
        model=ar.Static("strong"),
    )
    result = await router.run("help")
    trace = router.trace(result.run_id)
    per_branch = {(d.slot, d.branch): d for d in trace.decisions if d.slot in ("skills", "model")}
    assert set(per_branch) == {
        ("skills", "helper"),
        ("model", "helper"),
        ("skills", "general"),
        ("model", "general"),
    }
    assert per_branch[("skills", "helper")].chosen == ["tone-and-escalation"]
    assert per_branch[("model", "general")].chosen == ["strong"]
    assert all(d.strategy == "static" and d.step == 0 for d in per_branch.values())
    assert seen == {"skills": {"helper": ["tone-and-escalation"]}, "model": {"helper": "strong"}}
    assert {c.model for c in trace.model_calls} == {"strong"}
    assert {r.model.name for r in client.requests} == {"strong"}
    assert {o.model for o in trace.outputs} == {"strong"}
    assert {tuple(o.skills) for o in trace.outputs} == {("tone-and-escalation",)}


async def test_skills_strategy_cannot_give_undeclared_skills(make_router: MakeRouter) -> None:
    """A skills choice outside the agent's declared skills fails that branch (recorded, not run)."""
    router = make_router(ar.Static("shipping"), skills=ar.Static("refund-policy"))
    with pytest.raises(ar.AgentError, match=r"RoutingError.*not a candidate here") as info:
        await router.run("where is my parcel")
    trace = router.trace(info.value.run_id)
    assert [d.outcome for d in trace.decisions if d.slot == "skills"] == ["error"]
    (output,) = trace.outputs
    assert (output.agent, output.error_type, output.output) == ("shipping", "RoutingError", None)
    assert trace.model_calls == []
    assert trace.end is not None
    assert trace.end.status == "failed"


async def test_agent_default_model_follows_model_then_tier(
    make_router: MakeRouter, registry: ar.Registry, client: ScriptedModelClient
) -> None:
    """Without a model strategy: the agent's `model` wins, else its tier's first model."""

    @registry.agent(model="strong", tier="cheap")
    async def pinned(ctx: ar.AgentContext, task: str) -> str:
        """Pinned to the strong model."""
        return await ctx.complete(task)

    result = await make_router(ar.Static("pinned", "security", "shipping")).run("x")
    assert result.status == "completed"
    models = {r.metadata["branch"]: r.model.name for r in client.requests}
    assert models == {"pinned": "strong", "security": "strong", "shipping": "cheap"}


async def test_ctx_complete_can_override_the_model(
    make_router: MakeRouter, registry: ar.Registry, client: ScriptedModelClient
) -> None:
    """`ctx.complete(..., model="strong")` runs on that model, whatever was routed."""

    @registry.agent(tier="cheap")
    async def escalating(ctx: ar.AgentContext, task: str) -> str:
        """Escalates to the strong model."""
        first = await ctx.complete("draft")
        return await ctx.complete(f"improve: {first}", model="strong")

    router = make_router(ar.Static("escalating"))
    result = await router.run("x")
    calls = router.trace(result.run_id).model_calls
    assert [(c.model, c.call_index) for c in calls] == [("cheap", 0), ("strong", 1)]


# -- streaming -----------------------------------------------------------------------------------


async def test_stream_yields_records_as_they_happen(make_router: MakeRouter) -> None:
    """`stream()` yields run, decision, model_call, agent_output records, then the RunEndRecord."""
    router = make_router(ar.Static("billing", "general"))
    seen: list[Any] = []
    async for record in router.stream("refund please"):
        seen.append(record)
    assert isinstance(seen[-1], RunEndRecord)
    assert seen[-1].status == "completed"
    got = kinds(seen)
    assert got[:2] == ["run", "decision"]
    assert got.count("model_call") == 2
    assert got.count("agent_output") == 2
    assert got.count("run_end") == 1
    # every streamed record is the stored one, in chain order
    stored = router.trace(seen[0].run_id).records
    assert [r.hash for r in seen] == [r.hash for r in stored]


async def test_stream_is_incremental(make_router: MakeRouter, registry: ar.Registry) -> None:
    """The agent-slot decision is yielded before the (blocked) agent has finished."""
    gate = asyncio.Event()

    @registry.agent
    async def gated(ctx: ar.AgentContext, task: str) -> str:
        """Waits for the test to open the gate."""
        await asyncio.wait_for(gate.wait(), timeout=2)
        return "through"

    stream = make_router(ar.Static("gated")).stream("go")
    first = await anext(stream)
    second = await anext(stream)
    assert (first.kind, second.kind) == ("run", "decision")
    gate.set()
    rest = [r async for r in stream]
    assert rest[-1].kind == "run_end"
    assert rest[-1].answer == "through"


async def test_stream_raises_after_yielding_the_failure(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """A failing run streams its records, including the failed run_end, then raises."""

    @registry.agent
    async def broken(ctx: ar.AgentContext, task: str) -> str:
        """Always fails."""
        msg = "no database"
        raise RuntimeError(msg)

    seen: list[Any] = []

    async def consume() -> None:
        async for record in make_router(ar.Static("broken")).stream("go"):
            seen.append(record)

    with pytest.raises(ar.AgentError):
        await consume()
    assert seen[-1].kind == "run_end"
    assert seen[-1].status == "failed"


# -- dynamic onboarding --------------------------------------------------------------------------


class RouteToNewest:
    """Routes to the most recently registered agent among the candidates."""

    name: ClassVar[str] = "newest"

    async def route(self, ctx: RoutingContext) -> RouteDecision:
        return RouteDecision.to(ctx.candidates[-1])


async def test_agent_registered_after_the_router_is_routable(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """An agent registered after the router compiled and ran is a candidate on the next run."""
    router = make_router(RouteToNewest())
    first = await router.run("hi")
    assert first.agents == (("general",),)

    @registry.agent
    async def returns_desk(ctx: ar.AgentContext, task: str) -> str:
        """Handles returns (onboarded late)."""
        return "returns handled"

    second = await router.run("hi")
    assert second.agents == (("returns_desk",),)
    assert second.answer == "returns handled"
    assert (
        router.trace(second.run_id).run.registry_hash
        != router.trace(first.run_id).run.registry_hash
    )


async def test_router_restricted_to_agents(make_router: MakeRouter) -> None:
    """`agents=` limits the candidates; routing outside them is a RoutingError.

    A `Static` that always would is refused before any run, at compile.
    """

    class Security:
        name = "security-always"

        async def route(self, ctx: ar.RoutingContext) -> ar.RouteDecision:
            return ar.RouteDecision.to("security", reason="decided at run time")

    router = make_router(Security(), agents=["billing", "general"])
    with pytest.raises(ar.RoutingError, match="'security', which is not a candidate"):
        await router.run("hacked")
    router = make_router(ar.Static("security"), agents=["billing", "general"])
    with pytest.raises(ar.ConfigurationError, match=r"is not among Router\(agents=\.\.\.\)"):
        await router.run("hacked")


async def test_compile_checks_the_router(make_router: MakeRouter) -> None:
    """compile() refuses unknown agents in `agents=` and `out_of_scope=`, with did-you-mean."""
    with pytest.raises(ar.ConfigurationError, match="did you mean 'billing'"):
        make_router(ar.Static("billing"), agents=["biling"]).compile()
    with pytest.raises(ar.ConfigurationError, match="did you mean 'general'"):
        make_router(ar.Static("billing"), out_of_scope="generl").compile()


def test_router_refuses_non_strategies(registry: ar.Registry) -> None:
    """A slot given something without `route` is refused at construction."""
    with pytest.raises(ar.ConfigurationError, match="the agent slot needs a routing strategy"):
        ar.Router(registry, agent="billing", store="memory://")  # type: ignore[arg-type]
    with pytest.raises(ar.ConfigurationError, match="the model slot"):
        ar.Router(registry, agent=ar.Static("billing"), model=object(), store="memory://")  # type: ignore[arg-type]
