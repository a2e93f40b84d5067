"""Runtime edge cases.

Concurrent runs, refiner failures, model calls from strategies, cancelled streams, and known
bugs (xfail, strict).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

import agentroute as ar
from agentroute.errors import RunNotFound
from agentroute.registry import RetryPolicy
from agentroute.routing import RefineContext, RefineResult, RouteDecision, RoutingContext
from agentroute.testing import ScriptedModelClient

from .conftest import MakeRouter, kinds


async def test_concurrent_runs_on_one_router_stay_separate(make_router: MakeRouter) -> None:
    """Ten runs in parallel on one router: each gets its own answer, chain and run_end."""
    client = ScriptedModelClient([(r"billing:", "B"), (r"shipping:", "S")], latency_s=0.01)
    rules = ar.Rules([ar.Rule("refund", ar.Keywords("refund"), ("billing",))], default=["shipping"])
    router = make_router(rules, client=client)
    tasks = ["refund please" if i % 2 else "where is my parcel" for i in range(10)]
    results = await asyncio.gather(*(router.run(t) for t in tasks))
    assert [r.answer for r in results] == ["S", "B"] * 5
    assert len({r.run_id for r in results}) == 10
    for result in results:
        trace = router.trace(result.run_id)
        assert kinds(trace.records)[0] == "run"
        assert kinds(trace.records)[-1] == "run_end"
        assert router.store.verify(result.run_id).ok
    assert sum(router.inflight.values()) == 0


async def test_strategy_sees_agent_load(make_router: MakeRouter, registry: ar.Registry) -> None:
    """`RoutingContext.load` counts branches in flight across the router's runs."""
    gate = asyncio.Event()
    seen: list[dict[str, int]] = []

    @registry.agent
    async def busy(ctx: ar.AgentContext, task: str) -> str:
        """Waits for the gate."""
        await asyncio.wait_for(gate.wait(), timeout=2)
        return "done"

    class Watch:
        name: ClassVar[str] = "watch"

        async def route(self, ctx: RoutingContext) -> RouteDecision:
            seen.append(dict(ctx.load))
            return RouteDecision.to("busy" if ctx.task == "block" else "general")

    router = make_router(Watch())
    blocked = asyncio.create_task(router.run("block"))
    for _ in range(400):  # until the blocked run's branch is in flight
        if router.inflight["busy"]:
            break
        await asyncio.sleep(0.005)
    await router.run("other")
    gate.set()
    await blocked
    assert seen[1].get("busy") == 1


async def test_failing_refiner_falls_back_to_the_first_answer(make_router: MakeRouter) -> None:
    """A refiner that raises is recorded as an `error` decision; the first answer is used."""

    class BrokenRefiner:
        name: ClassVar[str] = "broken-refiner"

        async def refine(self, ctx: RefineContext) -> RefineResult:
            msg = "merge failed"
            raise ValueError(msg)

    router = make_router(ar.Static("general", "billing"), refiner=BrokenRefiner())
    result = await router.run("refund")
    assert result.status == "completed"
    assert result.answer == "Happy to help."
    (decision,) = [d for d in router.trace(result.run_id).decisions if d.slot == "refiner"]
    assert (decision.outcome, decision.chosen, decision.error) == (
        "error",
        ["general"],
        "ValueError: merge failed",
    )
    assert decision.strategy == "broken-refiner"
    assert router.store.verify(result.run_id).ok


async def test_custom_refiner_sees_answers_and_failures(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """A custom refiner gets every answer and failure, and its answer is the run's."""
    seen: dict[str, Any] = {}

    @registry.agent
    async def failing(ctx: ar.AgentContext, task: str) -> str:
        """Fails."""
        raise RuntimeError("x")

    class Shortest:
        name: ClassVar[str] = "shortest"

        async def refine(self, ctx: RefineContext) -> RefineResult:
            seen["answers"] = dict(ctx.answers)
            seen["failures"] = dict(ctx.failures)
            return RefineResult(answer=min(ctx.answers.values(), key=len), reason="shortest")

    router = make_router(ar.Static("billing", "general", "failing"), refiner=Shortest())
    result = await router.run("refund")
    assert result.answer == "Happy to help."
    assert seen["answers"] == {
        "billing": "Your refund has been issued.",
        "general": "Happy to help.",
    }
    assert seen["failures"] == {"failing": "RuntimeError: x"}


async def test_strategy_model_calls_are_traced_and_budgeted(make_router: MakeRouter) -> None:
    """A strategy's `ctx.complete` is a traced call on branch `router`, charged to the run."""

    class AskTheModel:
        name: ClassVar[str] = "ask"

        async def route(self, ctx: RoutingContext) -> RouteDecision:
            chosen = await ctx.complete(f"which agent for: {ctx.task}")
            return RouteDecision.to(chosen.strip(), reason="the model said so")

    client = ScriptedModelClient([(r"which agent", "security"), (r"security:", "Locked.")])
    router = make_router(AskTheModel(), client=client)
    result = await router.run("hacked", budget=ar.Budget(usd=1.0))
    assert result.answer == "Locked."
    calls = router.trace(result.run_id).model_calls
    assert [(c.branch, c.response) for c in calls] == [
        ("router", "security"),
        ("security", "Locked."),
    ]
    assert result.cost_usd == pytest.approx(sum(c.cost_usd for c in calls))


async def test_budget_exceeded_is_not_retried(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """An agent's retry policy does not retry BudgetExceeded (retrying cannot help)."""
    attempts = {"n": 0}

    @registry.agent(retry=RetryPolicy(max_attempts=5, initial_backoff_s=0, jitter=False))
    async def eager(ctx: ar.AgentContext, task: str) -> str:
        """Calls the model."""
        attempts["n"] += 1
        return await ctx.complete("x")

    result = await make_router(ar.Static("eager")).run("go", budget=ar.Budget(usd=1e-9))
    assert result.status == "budget_exhausted"
    assert attempts["n"] == 1


async def test_sync_agent_budget_exceeded(make_router: MakeRouter, registry: ar.Registry) -> None:
    """BudgetExceeded raised through `complete_sync` in a worker thread ends the run cleanly."""

    @registry.agent
    def blocking(ctx: ar.AgentContext, task: str) -> str:
        """Sync agent calling the model."""
        return ctx.complete_sync("x")

    result = await make_router(ar.Static("blocking")).run("go", budget=ar.Budget(usd=1e-9))
    assert result.status == "budget_exhausted"


async def test_closing_a_stream_cancels_the_run_and_records_it(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """Closing a stream early cancels the run; its trace still ends and verifies."""

    @registry.agent
    async def slow(ctx: ar.AgentContext, task: str) -> str:
        """Takes a while."""
        await asyncio.sleep(1)
        return "late"

    router = make_router(ar.Static("slow"))
    stream = router.stream("go")
    first = await anext(stream)
    await stream.aclose()
    for _ in range(100):
        trace = router.trace(first.run_id)
        if trace.end is not None:
            break
        await asyncio.sleep(0.01)
    assert trace.end is not None
    assert (trace.end.status, trace.end.error_type) == ("failed", "CancelledError")
    assert router.store.verify(first.run_id).ok


def test_unknown_run_trace(make_router: MakeRouter) -> None:
    """`router.trace` of an unknown id raises RunNotFound."""
    with pytest.raises(RunNotFound):
        make_router(ar.Static("general")).trace("nope")


# -- known bugs (outside tests' write area) ------------------------------------------------------


async def test_failing_out_of_scope_handler_is_not_swallowed(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """A failing out-of-scope handler makes `run` raise AgentError (every agent failed)."""

    @registry.agent
    async def handler(ctx: ar.AgentContext, task: str) -> str:
        """Fails."""
        msg = "handler down"
        raise RuntimeError(msg)

    class Nope:
        name: ClassVar[str] = "nope"

        async def route(self, ctx: RoutingContext) -> RouteDecision:
            return RouteDecision.out_of_scope("no fit")

    router = make_router(Nope(), out_of_scope="handler")
    with pytest.raises(ar.AgentError, match="handler down") as info:
        await router.run("weather?")
    end = router.trace(info.value.run_id or "").end
    assert end is not None
    assert end.status == "failed"


async def test_reusing_a_run_id_is_refused(make_router: MakeRouter) -> None:
    """A run_id already in the store is refused, and the first run's chain stays valid."""
    router = make_router(ar.Static("general"))
    await router.run("first", run_id="dup")
    with pytest.raises(ar.ConfigurationError, match="dup"):
        await router.run("second", run_id="dup")
    assert router.store.verify("dup").ok
    assert router.trace("dup").run.task == "first"


async def test_agent_result_metadata_is_recorded(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """AgentResult(metadata=...) is recorded with the agent's output."""

    @registry.agent
    async def annotated(ctx: ar.AgentContext, task: str) -> ar.AgentResult:
        """Returns metadata."""
        return ar.AgentResult(output="x", metadata={"confidence": 0.9})

    router = make_router(ar.Static("annotated"))
    result = await router.run("go")
    output = router.trace(result.run_id).outputs[0]
    assert output.model_dump().get("metadata") == {"confidence": 0.9}


@pytest.mark.parametrize("store", ["memory://", "sqlite"])
async def test_a_lone_surrogate_in_the_task_is_recorded_replaced(
    make_router: MakeRouter, store: str, tmp_path: Any
) -> None:
    """Half an emoji (a lone UTF-16 surrogate) cannot be hashed or stored as UTF-8.

    The run completes and its chain verifies; the surrogate is recorded as U+FFFD. Before, the
    run raised `UnicodeEncodeError` while sealing its first record and nothing was recorded.
    """
    url = store if store == "memory://" else f"sqlite:///{tmp_path / 'runs.db'}"
    router = make_router(ar.Static("general"), store=url)
    result = await router.run("where is my parcel \ud83d?")
    assert result.status == "completed"
    router.store.flush()
    trace = router.trace(result.run_id)
    assert trace.run.task == "where is my parcel \ufffd?"
    assert router.store.verify(result.run_id).ok


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, True, "7"])
async def test_a_seed_out_of_range_is_refused_before_anything_is_recorded(
    make_router: MakeRouter, seed: Any
) -> None:
    """Seeds must be integers in [0, 2**63): anything else is a `ConfigurationError` naming it.

    Before, 2**63 wedged a SQLite store's writer (every later write failed) and 2**31 made
    PostgreSQL drop the run's first record.
    """
    router = make_router(ar.Static("general"))
    with pytest.raises(ar.ConfigurationError, match=r"seed must be an integer in \[0, 2\*\*63\)"):
        await router.run("hello", seed=seed)
    assert router.store.list_runs() == []


async def test_the_largest_seed_is_stored_exactly_on_sqlite(
    make_router: MakeRouter, tmp_path: Any
) -> None:
    """A 63-bit seed goes into SQLite's 64-bit column and reads back unchanged."""
    router = make_router(ar.Static("general"), store=f"sqlite:///{tmp_path / 'runs.db'}")
    result = await router.run("hello", seed=2**63 - 1)
    router.store.flush()
    assert router.trace(result.run_id).run.seed == 2**63 - 1
    assert router.store.verify(result.run_id).ok
