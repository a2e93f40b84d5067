"""Multi-step runs: `then="route"` paths, `final=False`, step limits and loop detection."""

from __future__ import annotations

from typing import ClassVar

import agentroute as ar
from agentroute.registry import LimitsSpec
from agentroute.routing import RouteDecision, RoutingContext

from .conftest import MakeRouter


def _stage_registry() -> tuple[ar.Registry, list[tuple[str, str | None]]]:
    """Three stage agents that append to the previous answer; `calls` logs (agent, previous)."""
    reg = ar.Registry()
    reg.model("cheap", "openai/gpt-4o-mini", input_price_per_mtok=0.1, output_price_per_mtok=0.1)
    calls: list[tuple[str, str | None]] = []

    def make(name: str, stage: int) -> None:
        async def fn(ctx: ar.AgentContext, task: str) -> str:
            calls.append((ctx.agent, ctx.previous))
            assert ctx.step == stage
            return f"{ctx.previous or task} > {ctx.agent}"

        reg.agent(name=name, description=f"Stage {stage}.", stage=stage)(fn)

    for i, name in enumerate(["intake", "diagnose", "resolve"]):
        make(name, i)
    return reg, calls


class StagePath:
    """Routes stage by stage (by `AgentSpec.stage`), then finishes."""

    name: ClassVar[str] = "stage-path"

    def __init__(self) -> None:
        self.seen: list[tuple[int, str | None, int]] = []

    async def route(self, ctx: RoutingContext) -> RouteDecision:
        self.seen.append((ctx.step, ctx.previous, len(ctx.history)))
        by_stage = {ctx.registry.get_agent(a).stage: a for a in ctx.candidates}
        if ctx.step in by_stage:
            return RouteDecision.to(by_stage[ctx.step], then="route", reason=f"stage {ctx.step}")
        return RouteDecision.finish("every stage done")


async def test_then_route_walks_a_path_and_finishes(make_router: MakeRouter) -> None:
    """A custom strategy walks stages 0 → 1 → 2 (`then="route"`, `previous` passed), then ends."""
    reg, calls = _stage_registry()
    strategy = StagePath()
    router = make_router(strategy, reg=reg)
    result = await router.run("ticket")
    assert result.status == "completed"
    assert result.reason == "every stage done"
    assert result.answer == "ticket > intake > diagnose > resolve"
    assert result.agents == (("intake",), ("diagnose",), ("resolve",))
    assert calls == [
        ("intake", None),
        ("diagnose", "ticket > intake"),
        ("resolve", "ticket > intake > diagnose"),
    ]
    assert strategy.seen == [
        (0, None, 0),
        (1, "ticket > intake", 1),
        (2, "ticket > intake > diagnose", 2),
        (3, "ticket > intake > diagnose > resolve", 3),
    ]
    trace = router.trace(result.run_id)
    agent_decisions = [d for d in trace.decisions if d.slot == "agent"]
    assert [(d.step, d.outcome, d.chosen) for d in agent_decisions] == [
        (0, "route", ["intake"]),
        (1, "route", ["diagnose"]),
        (2, "route", ["resolve"]),
        (3, "finish", []),
    ]
    assert agent_decisions[0].evidence["then"] == "route"
    assert [o.step for o in trace.outputs] == [0, 1, 2]
    assert trace.end is not None
    assert trace.end.status == "completed"
    assert router.store.verify(result.run_id).ok


async def test_not_final_result_routes_again(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """An agent returning AgentResult(final=False) makes the router route again with its answer."""

    @registry.agent
    async def drafter(ctx: ar.AgentContext, task: str) -> ar.AgentResult:
        """Drafts, then asks for another step."""
        if ctx.previous is None:
            return ar.AgentResult(output="draft 1", final=False)
        return ar.AgentResult(output=f"final from {ctx.previous}")

    router = make_router(ar.Static("drafter"))
    result = await router.run("write")
    assert result.status == "completed"
    assert result.answer == "final from draft 1"
    assert result.agents == (("drafter",), ("drafter",))
    outputs = router.trace(result.run_id).outputs
    assert [(o.step, o.final) for o in outputs] == [(0, False), (1, True)]


class AlwaysRoute:
    """Routes to one agent and asks to route again, forever."""

    name: ClassVar[str] = "always-route"

    def __init__(self, agent: str) -> None:
        self.agent = agent

    async def route(self, ctx: RoutingContext) -> RouteDecision:
        return RouteDecision.to(self.agent, then="route")


async def test_step_limit_ends_the_run_cleanly(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """A run that keeps routing stops at max_steps: status `step_limit`, reason recorded."""
    counter = {"n": 0}

    @registry.agent
    async def counting(ctx: ar.AgentContext, task: str) -> str:
        """Answers differently each time (so no loop is detected)."""
        counter["n"] += 1
        return f"answer {counter['n']}"

    router = make_router(AlwaysRoute("counting"), limits=LimitsSpec(max_steps=3, loop_limit=10))
    result = await router.run("go")
    assert result.status == "step_limit"
    assert result.reason == "step limit of 3 reached"
    assert counter["n"] == 3
    assert result.answer == "answer 3"
    assert len(result.agents) == 3
    end = router.trace(result.run_id).end
    assert end is not None
    assert (end.status, end.reason, end.answer) == (
        "step_limit",
        "step limit of 3 reached",
        "answer 3",
    )
    assert router.store.verify(result.run_id).ok


async def test_step_count_never_exceeds_max_steps(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """A run stopped by the step limit reports exactly max_steps steps (result and run_end)."""

    @registry.agent
    async def varying(ctx: ar.AgentContext, task: str) -> str:
        """Answers with the step number."""
        return f"step {ctx.step}"

    router = make_router(AlwaysRoute("varying"), limits=LimitsSpec(max_steps=3, loop_limit=10))
    result = await router.run("go")
    end = router.trace(result.run_id).end
    assert end is not None
    assert result.steps == len(result.agents) == 3
    assert end.steps == 3


async def test_loop_detection_stops_a_repeating_agent(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """The same agent with the same input `loop_limit` times ends the run with `loop_detected`."""
    counter = {"n": 0}

    @registry.agent
    async def stuck(ctx: ar.AgentContext, task: str) -> str:
        """Always says the same thing."""
        counter["n"] += 1
        return "same answer"

    router = make_router(AlwaysRoute("stuck"), limits=LimitsSpec(max_steps=50, loop_limit=3))
    result = await router.run("go")
    assert result.status == "loop_detected"
    assert result.reason == "agent 'stuck' was chosen 3 times with the same input (loop_limit=3)"
    # step 0 has input (task, None); from step 1 on the input is (task, "same answer"):
    # steps 1 and 2 run, the third identical choice (step 3) is refused.
    assert counter["n"] == 3
    assert result.answer == "same answer"
    end = router.trace(result.run_id).end
    assert end is not None
    assert (end.status, end.reason) == ("loop_detected", result.reason)
    assert router.store.verify(result.run_id).ok


async def test_changing_output_is_not_a_loop(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """An agent whose output changes every step is not stopped by loop detection."""

    @registry.agent
    async def progressing(ctx: ar.AgentContext, task: str) -> str:
        """Adds a character each step."""
        return (ctx.previous or "") + "x"

    router = make_router(AlwaysRoute("progressing"), limits=LimitsSpec(max_steps=6, loop_limit=2))
    result = await router.run("go")
    assert result.status == "step_limit"
    assert result.answer == "xxxxxx"


async def test_history_is_visible_to_agents(make_router: MakeRouter, registry: ar.Registry) -> None:
    """At step n an agent sees n earlier StepViews with their agents and answers."""
    seen: list[list[tuple[int, tuple[str, ...], str | None]]] = []

    @registry.agent
    async def historian(ctx: ar.AgentContext, task: str) -> ar.AgentResult:
        """Records the history it sees; stops after three steps."""
        seen.append([(h.step, h.agents, h.answer) for h in ctx.history])
        return ar.AgentResult(output=f"s{ctx.step}", final=ctx.step == 2)

    await make_router(ar.Static("historian")).run("go")
    assert seen == [
        [],
        [(0, ("historian",), "s0")],
        [(0, ("historian",), "s0"), (1, ("historian",), "s1")],
    ]
