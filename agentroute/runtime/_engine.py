"""The run loop as a LangGraph `StateGraph`: route → act (fan-out) → refine → check → route | END.

Nodes are methods of `Engine`; per-run objects live in `RunScope`s looked up by run id, so the
graph state stays JSON-serialisable and works with any LangGraph checkpointer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import time
from collections.abc import Mapping, Sequence, Set
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

import structlog
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from agentroute._hashing import sha256_hex
from agentroute.errors import (
    AgentError,
    BudgetExceeded,
    ConfigurationError,
    RoutingError,
    did_you_mean,
)
from agentroute.models import Message, ModelRequest, call_model
from agentroute.models._invoke import Attempt
from agentroute.models._retry import retry_async
from agentroute.registry import SkillSpec
from agentroute.routing import (
    RefineContext,
    RouteDecision,
    RoutingContext,
    RoutingStrategy,
    Slot,
    StepView,
    describe_strategy,
)
from agentroute.runtime._context import AgentContext, AgentResult, SkillSet
from agentroute.runtime._scope import RunScope
from agentroute.runtime._threads import Branch
from agentroute.stores import AgentOutputRecord, CandidateRecord, DecisionRecord, ModelCallRecord

if TYPE_CHECKING:
    from agentroute.runtime._router import Router

__all__ = ["Engine", "RunState"]

log = structlog.get_logger(__name__)


def _merge_branches(
    left: list[dict[str, Any]], right: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    # `None` resets the list at the start of each step; branch results append.
    if right is None:
        return []
    return [*left, *right]


class RunState(TypedDict):
    """The graph's state. JSON-serialisable so checkpointers can persist it."""

    run_id: str
    task: str
    step: int
    previous: str | None
    answer: str | None
    agents: list[str]
    then: str
    branches: Annotated[list[dict[str, Any]], _merge_branches]
    status: str | None
    reason: str
    error: str | None
    error_type: str | None


class Engine:
    """Builds and runs the graph for one `Router`."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.scopes: dict[str, RunScope] = {}
        self._described: dict[int, tuple[str, dict[str, Any]]] = {}

    def describe(self, strategy: object) -> dict[str, Any]:
        """`describe_strategy`, cached per strategy object and version.

        Parameters are static between versions; a learning strategy bumps `version` when its
        state changes.
        """
        version = str(getattr(strategy, "version", "1"))
        cached = self._described.get(id(strategy))
        if cached is None or cached[0] != version:
            cached = (version, describe_strategy(strategy))
            self._described[id(strategy)] = cached
        return cached[1]

    # -- graph -------------------------------------------------------------------------------

    def build(self) -> StateGraph[Any]:
        """Return the uncompiled graph."""
        graph: StateGraph[Any] = StateGraph(RunState)
        graph.add_node("route", self.route_node)
        graph.add_node("act", self.act_node)  # type: ignore[arg-type]  # Send payload, not state
        graph.add_node("refine", self.refine_node)
        graph.add_node("check", self.check_node)
        graph.add_edge(START, "route")
        graph.add_conditional_edges("route", self.fan_out, ["act", END])
        graph.add_edge("act", "refine")
        graph.add_edge("refine", "check")
        graph.add_conditional_edges("check", self.after_check, ["route", END])
        return graph

    # Edge functions are async: LangGraph runs sync ones in a worker thread under `ainvoke`,
    # which costs two thread hand-offs per step.
    async def after_check(self, state: RunState) -> str:
        """Route again, or end."""
        return END if state["status"] else "route"

    async def fan_out(self, state: RunState) -> list[Send] | str:
        """One `act` branch per chosen agent, or the end."""
        if state["status"] and not state["agents"]:
            return END
        return [
            Send(
                "act",
                {
                    "run_id": state["run_id"],
                    "task": state["task"],
                    "step": state["step"],
                    "previous": state["previous"],
                    "agent": agent,
                },
            )
            for agent in state["agents"]
        ]

    def _params(self, scope: RunScope, strategy: object, described: dict[str, Any]) -> Any:
        """A decision's `params`: empty when the run's start record already holds them.

        Slot strategies are described once, in `RunRecord.router`; repeating their parameters
        in every decision cost hashing, encoding and storage for nothing. They are recorded
        again only when the strategy's version changed since the run started (learning).
        """
        if scope.versions.get(id(strategy)) == described["version"]:
            return {}
        return described["params"]

    # -- route -------------------------------------------------------------------------------

    async def route_node(self, state: RunState) -> dict[str, Any]:
        """Ask the agent slot who acts at this step."""
        scope = self.scopes[state["run_id"]]
        router = self.router
        step = state["step"]
        reset: dict[str, Any] = {"branches": None, "agents": []}
        if step >= router.limits.max_steps:
            return {
                **reset,
                "status": "step_limit",
                "reason": f"step limit of {router.limits.max_steps} reached",
            }
        candidates = router.agent_candidates()
        ctx = await self._routing_context(scope, state, "agent", candidates, agent=None)
        try:
            decision = await self._decide(scope, ctx, router.agent_strategy, branch="")
        except BudgetExceeded as exc:
            return {**reset, "status": "budget_exhausted", "reason": str(exc)}
        if decision.outcome != "route":
            return {**reset, **self._stop_update(decision)}
        loop = self._loop_update(scope, state, decision)
        if loop is not None:
            return {**reset, **loop}
        return {**reset, "agents": list(decision.agents), "then": decision.then}

    def _stop_update(self, decision: RouteDecision) -> dict[str, Any]:
        """State update for a decision that routes to nobody: finish or out of scope."""
        router = self.router
        if decision.outcome == "finish":
            return {"status": "completed", "reason": decision.reason or "router finished"}
        reason = decision.reason or "no agent fits the request"
        if router.out_of_scope is not None:
            return {
                "agents": [router.out_of_scope],
                "then": "finish",
                "status": "out_of_scope",
                "reason": reason,
            }
        return {"status": "out_of_scope", "reason": reason, "answer": router.out_of_scope_message}

    def _loop_update(
        self, scope: RunScope, state: RunState, decision: RouteDecision
    ) -> dict[str, Any] | None:
        """Count each chosen agent's (task, previous) input; stop when one repeats too often."""
        limit = self.router.limits.loop_limit
        for agent in decision.agents:
            key = agent + "\x00" + sha256_hex(state["task"] + "\x00" + (state["previous"] or ""))
            scope.input_counts[key] += 1
            if scope.input_counts[key] >= limit:
                return {
                    "status": "loop_detected",
                    "reason": (
                        f"agent {agent!r} was chosen {scope.input_counts[key]} times with the "
                        f"same input (loop_limit={limit})"
                    ),
                }
        return None

    # -- act ---------------------------------------------------------------------------------

    async def act_node(self, branch: dict[str, Any]) -> dict[str, Any]:
        """Run one agent: route its skills and model, call it, record the output."""
        scope = self.scopes[branch["run_id"]]
        async with scope.semaphore:
            return {"branches": [await self._act(scope, branch)]}

    async def _act(self, scope: RunScope, branch: dict[str, Any]) -> dict[str, Any]:
        router = self.router
        agent, step = branch["agent"], branch["step"]
        registry = router.registry
        spec = registry.get_agent(agent)
        started = time.perf_counter()
        skills: list[SkillSpec] = []
        # One slot, so the output record names the model in use after a re-route (see
        # `_call_agent`), whether the agent then succeeds or fails.
        in_use: list[str | None] = [None]
        try:
            skills = await self._route_skills(scope, branch)
            in_use[0] = await self._route_model(scope, branch)
            result = await self._call_agent(scope, branch, skills, in_use)
        except Exception as exc:
            scope.errors[agent] = exc
            scope.recorder.record(
                AgentOutputRecord,
                step=step,
                agent=agent,
                task=branch["task"],
                input_hash=_input_hash(branch),
                skills=[s.id for s in skills],
                model=in_use[0],
                latency_ms=_ms(started),
                error=_err(exc),
                error_type=type(exc).__name__,
            )
            log.warning("agent failed", run_id=scope.run_id, agent=agent, error=type(exc).__name__)
            return {
                "agent": agent,
                "output": None,
                "final": True,
                "error": _err(exc),
                "error_type": type(exc).__name__,
                "budget": isinstance(exc, BudgetExceeded),
            }
        scope.recorder.record(
            AgentOutputRecord,
            step=step,
            agent=agent,
            task=branch["task"],
            input_hash=_input_hash(branch),
            skills=[s.id for s in skills],
            model=in_use[0],
            output=result.output,
            final=result.final,
            metadata=result.metadata,
            latency_ms=_ms(started),
        )
        del spec
        return {"agent": agent, "output": result.output, "final": result.final, "error": None}

    async def _call_agent(
        self,
        scope: RunScope,
        branch: dict[str, Any],
        skills: list[SkillSpec],
        in_use: list[str | None],
    ) -> AgentResult:
        """Call the agent; `in_use[0]`, the routed model, is replaced when a call re-routes it."""
        router = self.router
        agent, step = branch["agent"], branch["step"]
        spec = router.registry.get_agent(agent)
        fn = router.registry.agent_function(agent)
        loop = asyncio.get_running_loop()
        routed = in_use[0]

        async def complete(
            prompt: str | Sequence[Message | Mapping[str, str]],
            *,
            system: str | None = None,
            model: str | None = None,
            max_tokens: int | None = None,
            temperature: float | None = None,
        ) -> str:
            nonlocal routed
            # An explicit model wins; otherwise the model the model slot routed this branch to.
            if model is not None:
                return await self.complete(
                    scope,
                    step,
                    agent,
                    model,
                    prompt,
                    system=system,
                    max_tokens=max_tokens,
                    temperature=temperature,
                )
            tried: set[str | None] = set()
            while True:
                try:
                    return await self.complete(
                        scope,
                        step,
                        agent,
                        routed,
                        prompt,
                        system=system,
                        max_tokens=max_tokens,
                        temperature=temperature,
                    )
                except BudgetExceeded:
                    # The budget moved since the model slot decided (a parallel branch or a
                    # run sharing the budget key reserved first): route the slot again on the
                    # budget as it is now, which records the new decision (a budget-aware
                    # strategy downgrades), and give up when it picks a model already refused.
                    tried.add(routed)
                    if router.model_strategy is None:
                        raise
                    rerouted = await self._route_model(scope, branch, refused=tried)
                    if rerouted in tried:
                        raise
                    routed = in_use[0] = rerouted

        base = AgentContext(
            run_id=scope.run_id,
            step=step,
            agent=agent,
            skills=SkillSet(skills),
            model=routed,
            previous=branch["previous"],
            history=tuple(scope.history),
            state=scope.state,
            metadata=scope.metadata,
            _complete=complete,
            _budget=scope.ledger,
            _loop=loop,
        )

        async def once(_: int) -> AgentResult:
            # A fresh branch per attempt: a timed-out attempt stays cut off from models while
            # the retry runs.
            leash = Branch(agent, scope.run_id)
            ctx = dataclasses.replace(base, _branch=leash)
            try:
                if inspect.iscoroutinefunction(fn):
                    coro = fn(ctx, branch["task"])
                else:
                    coro = router.agent_threads.run(
                        fn, ctx, branch["task"], agent=agent, run_id=scope.run_id
                    )
                # Only the deadline's own expiry is the agent's timeout; a TimeoutError the
                # agent raises itself is an ordinary agent error, cause kept.
                deadline = asyncio.timeout(spec.timeout_s or None)
                try:
                    async with deadline:
                        raw = await coro
                except TimeoutError as exc:
                    if not deadline.expired():
                        raise
                    leash.cancel(f"it did not finish within timeout_s={spec.timeout_s}")
                    msg = f"agent {agent!r} did not finish within timeout_s={spec.timeout_s}" + (
                        "; its thread cannot be stopped and was abandoned, cut off from models"
                        if not inspect.iscoroutinefunction(fn)
                        else ""
                    )
                    raise AgentError(msg, agent=agent, run_id=scope.run_id) from exc
            finally:
                # Whatever happens to the attempt, its context may no longer call models.
                leash.cancel("its attempt ended")
            return _as_result(agent, raw, scope.run_id)

        router.inflight[agent] += 1
        try:
            return await retry_async(
                spec.retry, once, retry_on=lambda e: not isinstance(e, BudgetExceeded)
            )
        finally:
            router.inflight[agent] -= 1

    async def _route_skills(self, scope: RunScope, branch: dict[str, Any]) -> list[SkillSpec]:
        router = self.router
        allowed = router.registry.skills_for(branch["agent"])
        strategy = router.skills_strategy
        if strategy is None:
            return allowed
        ctx = await self._routing_context(
            scope, branch, "skills", tuple(s.id for s in allowed), agent=branch["agent"]
        )
        decision = await self._decide(scope, ctx, strategy, branch=branch["agent"])
        if decision.outcome != "route":
            # No opinion: the agent keeps its declared skills, as without a skills strategy
            # (to give no skills, a strategy routes with an empty choice).
            return allowed
        return [router.registry.get_skill(s) for s in decision.skills]

    async def _route_model(
        self, scope: RunScope, branch: dict[str, Any], refused: Set[str | None] = frozenset()
    ) -> str | None:
        """Route the model slot; `refused`: models whose reservation was refused this step."""
        router = self.router
        strategy = router.model_strategy
        if strategy is None:
            return router.default_model(branch["agent"])
        ctx = await self._routing_context(
            scope,
            branch,
            "model",
            tuple(router.registry.models),
            agent=branch["agent"],
            refused=frozenset(m for m in refused if m is not None),
        )
        decision = await self._decide(scope, ctx, strategy, branch=branch["agent"])
        if decision.outcome != "route" or decision.model is None:
            return router.default_model(branch["agent"])
        return decision.model

    # -- refine and check --------------------------------------------------------------------

    async def refine_node(self, state: RunState) -> dict[str, Any]:
        """Merge the step's answers (only when several agents answered)."""
        scope = self.scopes[state["run_id"]]
        order = {a: i for i, a in enumerate(state["agents"])}
        branches = sorted(state["branches"], key=lambda b: order.get(b["agent"], 0))
        answers = {b["agent"]: b["output"] for b in branches if b["error"] is None}
        failures = {b["agent"]: b["error"] for b in branches if b["error"] is not None}
        refiner = self.router.refiner
        if not answers and not (failures and getattr(refiner, "handles_failures", False)):
            return {"answer": state["previous"] if state["step"] else None}
        if len(answers) == 1 and not (failures and self.router.refine_single):
            return {"answer": next(iter(answers.values()))}
        started = time.perf_counter()
        described = self.describe(refiner)

        async def complete(prompt: Any, **kw: Any) -> str:
            return await self.complete(
                scope, state["step"], "refiner", kw.pop("model", None), prompt, **kw
            )

        try:
            result = await refiner.refine(
                RefineContext(
                    run_id=scope.run_id,
                    step=state["step"],
                    task=state["task"],
                    answers=answers,
                    failures=failures,
                    complete=complete,
                )
            )
        except Exception as exc:
            best = next(iter(answers), None)
            scope.recorder.record(
                DecisionRecord,
                step=state["step"],
                slot="refiner",
                strategy=described["strategy"],
                strategy_version=described["version"],
                params=self._params(scope, refiner, described),
                outcome="error",
                chosen=[best] if best else [],
                candidates=[CandidateRecord(name=a) for a in answers],
                reason=(
                    f"refiner failed; using {best!r}'s answer alone" if best else "refiner failed"
                ),
                latency_ms=_ms(started),
                error=_err(exc),
            )
            return {"answer": answers[best] if best else None}
        scope.recorder.record(
            DecisionRecord,
            step=state["step"],
            slot="refiner",
            strategy=described["strategy"],
            strategy_version=described["version"],
            params=self._params(scope, refiner, described),
            chosen=list(answers),
            candidates=[CandidateRecord(name=a) for a in answers],
            reason=result.reason,
            evidence={**result.evidence, "answer": result.answer, "failed": failures},
            latency_ms=_ms(started),
        )
        return {"answer": result.answer}

    async def check_node(self, state: RunState) -> dict[str, Any]:
        """Decide whether the run goes on: finish, budget, failures, `then`, `final`."""
        scope = self.scopes[state["run_id"]]
        branches = state["branches"]
        outputs = {b["agent"]: b["output"] for b in branches}
        scope.history.append(
            StepView(
                step=state["step"],
                agents=tuple(state["agents"]),
                outputs=outputs,
                answer=state["answer"],
            )
        )
        ok = [b for b in branches if b["error"] is None]
        budget = [b for b in branches if b.get("budget")]
        if budget:
            return {
                "status": "budget_exhausted",
                "reason": budget[0]["error"],
            }
        if not ok:
            first = branches[0]
            return {
                "status": "failed",
                "reason": f"every agent failed at step {state['step']}",
                "error": first["error"],
                "error_type": first["error_type"],
            }
        if state["status"]:  # the out-of-scope handler answered
            return {}
        go_on = state["then"] == "route" or any(not b["final"] for b in ok)
        if go_on:
            return {"step": state["step"] + 1, "previous": state["answer"]}
        return {"status": "completed", "reason": "the agents answered"}

    # -- shared ------------------------------------------------------------------------------

    async def _routing_context(
        self,
        scope: RunScope,
        state: Mapping[str, Any],
        slot: Slot,
        candidates: tuple[str, ...],
        *,
        agent: str | None,
        refused: frozenset[str] = frozenset(),
    ) -> RoutingContext:
        step = state["step"]
        branch = agent or "router"

        async def complete(prompt: Any, **kw: Any) -> str:
            return await self.complete(scope, step, branch, kw.pop("model", None), prompt, **kw)

        return RoutingContext(
            run_id=scope.run_id,
            step=step,
            slot=slot,
            task=state["task"],
            registry=self.router.registry,
            candidates=candidates,
            agent=agent,
            previous=state["previous"],
            history=tuple(scope.history),
            budget=await scope.budget_view(),
            metadata=scope.metadata,
            load=dict(self.router.inflight),
            seed=(scope.seed * 1_000_003 + step * 31 + len(branch)) & 0x7FFFFFFF,
            complete=complete,
            refused=refused,
        )

    async def _decide(
        self, scope: RunScope, ctx: RoutingContext, strategy: RoutingStrategy, *, branch: str
    ) -> RouteDecision:
        described = self.describe(strategy)
        started = time.perf_counter()
        base = {
            "step": ctx.step,
            "slot": ctx.slot,
            "branch": branch,
            "strategy": described["strategy"],
            "strategy_version": described["version"],
            "params": self._params(scope, strategy, described),
        }
        try:
            decision = await strategy.route(ctx)
            if not isinstance(decision, RouteDecision):
                msg = (
                    f"strategy {described['strategy']!r} returned {type(decision).__name__}, "
                    "not a RouteDecision"
                )
                raise RoutingError(msg, run_id=scope.run_id)
            _validate(decision, ctx, described["strategy"], scope.run_id)
        except Exception as exc:
            scope.recorder.record(
                DecisionRecord, **base, outcome="error", latency_ms=_ms(started), error=_err(exc)
            )
            if isinstance(exc, RoutingError | BudgetExceeded):
                raise  # a budget stop stays a budget stop, whichever slot hit it
            msg = f"{ctx.slot} strategy {described['strategy']!r} raised {_err(exc)}"
            raise RoutingError(msg, run_id=scope.run_id) from exc
        if decision.strategy:
            base["strategy"] = decision.strategy
        scope.recorder.record(
            DecisionRecord,
            **base,
            outcome=decision.outcome,
            chosen=list(decision.chosen),
            candidates=[
                CandidateRecord(name=c.name, score=c.score, detail=c.detail)
                for c in decision.candidates
            ],
            reason=decision.reason,
            evidence={**decision.evidence, "then": decision.then}
            if ctx.slot == "agent"
            else decision.evidence,
            latency_ms=_ms(started),
        )
        return decision

    async def complete(
        self,
        scope: RunScope,
        step: int,
        branch: str,
        model: str | None,
        prompt: str | Sequence[Message | Mapping[str, str]],
        *,
        system: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> str:
        """One traced, budgeted model call on behalf of an agent, a strategy or the refiner."""
        router = self.router
        name = model or router.default_model(branch if branch in router.registry.agents else None)
        if name is None:
            msg = "no model is registered; add one with registry.model(name, 'provider/model')"
            raise ConfigurationError(msg)
        spec = router.priced_model(name)
        messages = _messages(prompt, system)
        index = scope.next_call_index(step, branch)
        request = ModelRequest(
            model=spec,
            messages=messages,
            max_tokens=max_tokens,
            temperature=temperature,
            metadata={"run_id": scope.run_id, "step": step, "branch": branch, "call_index": index},
        )

        def report(a: Attempt) -> None:
            scope.recorder.record(
                ModelCallRecord,
                step=step,
                branch=branch,
                call_index=index,
                attempt=a.attempt,
                model=a.model.name,
                model_id=a.model.model,
                messages=[m.model_dump() for m in a.request.messages],
                response=a.response.text if a.response else None,
                input_tokens=a.response.usage.input_tokens if a.response else 0,
                output_tokens=a.response.usage.output_tokens if a.response else 0,
                estimated_cost_usd=a.estimated_cost_usd,
                cost_usd=a.cost_usd,
                latency_ms=a.latency_ms,
                error=str(a.error) if a.error else None,
                error_type=type(a.error).__name__ if a.error else None,
            )

        result = await call_model(
            request,
            client=scope.client,
            resolve=router.priced_model,
            ledger=scope.ledger,
            report=report,
        )
        return result.response.text


def _validate(decision: RouteDecision, ctx: RoutingContext, name: str, run_id: str) -> None:
    if decision.outcome != "route":
        return
    allowed = set(ctx.candidates)
    if ctx.slot == "agent":
        chosen = decision.agents
        if not chosen:
            msg = (
                f"agent strategy {name!r} routed to no agent; "
                "return RouteDecision.abstain() instead"
            )
            raise RoutingError(msg, run_id=run_id)
    elif ctx.slot == "skills":
        chosen = decision.skills
    else:
        if decision.model is None:
            msg = f"model strategy {name!r} chose no model"
            raise RoutingError(msg, run_id=run_id)
        chosen = (decision.model,)
    if len(set(chosen)) != len(chosen):
        msg = f"{ctx.slot} strategy {name!r} chose duplicates: {list(chosen)}"
        raise RoutingError(msg, run_id=run_id)
    for item in chosen:
        if item not in allowed:
            msg = (
                f"{ctx.slot} strategy {name!r} chose {item!r}, which is not a candidate here"
                f"{did_you_mean(item, allowed)}"
            )
            raise RoutingError(msg, run_id=run_id)


def _messages(
    prompt: str | Sequence[Message | Mapping[str, str]], system: str | None
) -> tuple[Message, ...]:
    out: list[Message] = []
    if system:
        out.append(Message(role="system", content=system))
    if isinstance(prompt, str):
        out.append(Message(role="user", content=prompt))
    else:
        for m in prompt:
            out.append(m if isinstance(m, Message) else Message.model_validate(dict(m)))
    if not out:
        msg = "complete() needs a prompt"
        raise ConfigurationError(msg)
    return tuple(out)


def _as_result(agent: str, raw: Any, run_id: str) -> AgentResult:
    if isinstance(raw, AgentResult):
        return raw
    if isinstance(raw, str):
        return AgentResult(output=raw)
    msg = f"agent {agent!r} returned {type(raw).__name__}; return a str or an AgentResult"
    raise AgentError(msg, agent=agent, run_id=run_id)


def _input_hash(branch: Mapping[str, Any]) -> str:
    return sha256_hex(branch["task"] + "\x00" + (branch["previous"] or ""))


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
