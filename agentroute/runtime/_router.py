"""The `Router` facade: build, compile, run (async core, one sync facade), stream, feedback."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from agentroute.errors import AgentError, ConfigurationError, RunError, StoreError, did_you_mean
from agentroute.models import Budget, ModelClient, resolve_prices
from agentroute.models._budget import open_ledger
from agentroute.registry import GraphSpec, LimitsSpec, ModelSpec, Registry
from agentroute.routing import (
    JoinAnswers,
    LearningStrategy,
    Outcome,
    RefineStrategy,
    RoutingStrategy,
    build_refiner,
    build_strategy,
    describe_strategy,
    strategy_tree,
)
from agentroute.runtime._engine import Engine, RunState
from agentroute.runtime._recorder import RunRecorder, scrub_text
from agentroute.runtime._result import RunResult
from agentroute.runtime._scope import RunScope
from agentroute.runtime._threads import AgentThreads
from agentroute.stores import (
    FeedbackRecord,
    RunEndRecord,
    RunRecord,
    RunTrace,
    TraceRecord,
    TraceStore,
    open_store,
)

__all__ = ["Router"]

log = structlog.get_logger(__name__)

DEFAULT_OUT_OF_SCOPE_MESSAGE = (
    "Sorry — this request is outside what I can help with here. "
    "Please contact a human agent or rephrase your request."
)


class Router:
    """Decides at every step who acts, with which skills, on which model; runs it on LangGraph.

    Build, then compile: the constructor checks types; `compile()` (called by the first run)
    checks the registry's cross-references, resolves model prices and builds the graph.

    Example:
        ```python
        router = Router(registry, agent=Rules([...], default=["general"]), store="memory://")
        result = router.run_sync("I was charged twice", budget=Budget(usd=0.05))
        ```

    Args:
        registry: What exists.
        agent: Strategy of the agent slot (who acts).
        skills: Strategy of the skills slot; `None` = each agent's declared skills.
        model: Strategy of the model slot; `None` = each agent's default model or tier.
        refiner: How several answers are merged; default `JoinAnswers`.
        store: Trace store or URL; default `sqlite:///agentroute.db`.
        client: Model client; default `LiteLLMClient()` (any provider LiteLLM supports).
        agents: Restrict routing to these agents (default: every registered agent).
        limits: Step, loop and concurrency limits.
        budget: Default per-run budget (a run's own `budget=` wins).
        out_of_scope: Agent that answers out-of-scope requests; `None` = a polite message.
        out_of_scope_message: That message.
        refine_single: Also refine when one agent answered and others failed.
        checkpointer: A LangGraph checkpointer (each run is a thread keyed by its run id).
        durable: Flush the store when each run ends, so a finished run survives a crash.
        app: `module:attribute` of the registry, recorded so the CLI can replay runs.
        name: A label for this router in logs and traces.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        agent: RoutingStrategy,
        skills: RoutingStrategy | None = None,
        model: RoutingStrategy | None = None,
        refiner: RefineStrategy | None = None,
        store: TraceStore | str | None = None,
        client: ModelClient | None = None,
        agents: Sequence[str] | None = None,
        limits: LimitsSpec | None = None,
        budget: Budget | None = None,
        out_of_scope: str | None = None,
        out_of_scope_message: str = DEFAULT_OUT_OF_SCOPE_MESSAGE,
        refine_single: bool = False,
        checkpointer: Any = None,
        durable: bool = True,
        app: str | None = None,
        name: str = "router",
    ) -> None:
        if not isinstance(registry, Registry):
            msg = f"Router needs a Registry, got {type(registry).__name__}"
            raise ConfigurationError(msg)
        for slot, strategy in (("agent", agent), ("skills", skills), ("model", model)):
            if strategy is not None and not callable(getattr(strategy, "route", None)):
                msg = (
                    f"the {slot} slot needs a routing strategy (an object with "
                    f"`async def route(ctx)`), got {type(strategy).__name__}"
                )
                raise ConfigurationError(msg)
        if refiner is not None and not callable(getattr(refiner, "refine", None)):
            msg = f"refiner needs `async def refine(ctx)`, got {type(refiner).__name__}"
            raise ConfigurationError(msg)
        _check_budget(budget, "Router(budget=...)")  # before the store opens: nothing to undo
        self.registry = registry
        self.agent_strategy: RoutingStrategy = agent
        self.skills_strategy = skills
        self.model_strategy = model
        self.refiner: RefineStrategy = refiner or JoinAnswers()
        self.store = open_store(store)
        self._client = client
        self.agents = tuple(agents) if agents is not None else None
        self.limits = limits or LimitsSpec()
        self.budget = budget
        self.out_of_scope = out_of_scope
        self.out_of_scope_message = out_of_scope_message
        self.refine_single = refine_single
        self.checkpointer = checkpointer
        self.durable = durable
        self.app = app
        self.name = name
        self.inflight: Counter[str] = Counter()
        self.agent_threads = AgentThreads()
        """Daemon threads sync agents run in (bounded; never the loop's default executor)."""
        self._engine = Engine(self)

        self._compiled: Any = None
        self._priced: dict[str, tuple[ModelSpec, ModelSpec]] = {}
        self._learners: list[LearningStrategy] = []

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_graph(
        cls,
        registry: Registry,
        graph: GraphSpec | str | Path,
        *,
        store: TraceStore | str | None = None,
        client: ModelClient | None = None,
        **overrides: Any,
    ) -> Router:
        """Build a router from a graph YAML file (or a loaded `GraphSpec`).

        Args:
            registry: Provides the agent functions the graph names.
            graph: The layout.
            store: Overrides the graph's `store`.
            client: Model client.
            **overrides: Other `Router` arguments, winning over the file.

        Raises:
            ContentError: The file is malformed.
            ConfigurationError: It names unknown agents or strategies.
        """
        spec = graph if isinstance(graph, GraphSpec) else registry.load_graph(graph)
        where = spec.source or spec.name
        slots = spec.router
        kwargs: dict[str, Any] = {
            "agent": build_strategy(slots.agent.model_dump(), f"{where}: router.agent"),
            "skills": build_strategy(slots.skills.model_dump(), f"{where}: router.skills")
            if slots.skills
            else None,
            "model": build_strategy(slots.model.model_dump(), f"{where}: router.model")
            if slots.model
            else None,
            "agents": spec.agents or None,
            "limits": spec.limits,
            "budget": Budget(usd=spec.budget_usd) if spec.budget_usd else None,
            "name": spec.name,
        }
        if slots.refiner is not None:
            kwargs["refiner"] = build_refiner(
                slots.refiner.model_dump(), f"{where}: router.refiner"
            )
        kwargs.update(overrides)
        return cls(registry, store=store or spec.store, client=client, **kwargs)

    @classmethod
    def from_config(
        cls,
        registry: Registry,
        config: Mapping[str, Any],
        *,
        store: TraceStore | str | None = None,
        client: ModelClient | None = None,
    ) -> Router:
        """Rebuild a router from the configuration recorded with a run (`Router.config()`).

        Works when every strategy is in the catalog (as graph-YAML strategies are).

        Raises:
            ConfigurationError: A recorded strategy is not in the catalog (build the router in
                Python and pass it to `replay` instead).
        """

        def slot(name: str) -> Any:
            value = config.get(name)
            return build_strategy(value, f"recorded router.{name}") if value else None

        return cls(
            registry,
            agent=slot("agent"),
            skills=slot("skills"),
            model=slot("model"),
            refiner=build_refiner(config.get("refiner"), "recorded router.refiner"),
            store=store,
            client=client,
            agents=config.get("agents"),
            limits=LimitsSpec(**config["limits"]) if config.get("limits") else None,
            out_of_scope=config.get("out_of_scope"),
            # Runs recorded before these were part of the config had the defaults.
            out_of_scope_message=config.get("out_of_scope_message", DEFAULT_OUT_OF_SCOPE_MESSAGE),
            refine_single=bool(config.get("refine_single", False)),
            app=config.get("app"),
            name=config.get("name", "router"),
        )

    def compile(self) -> Router:
        """Check the registry, resolve prices, build the LangGraph graph. Idempotent.

        Raises:
            ConfigurationError: A broken reference, an unpriced model, an unknown agent.
        """
        if self._compiled is not None:
            return self
        self.registry.validate()
        known = self.registry.agents
        for agent in (*(self.agents or ()), *((self.out_of_scope,) if self.out_of_scope else ())):
            if agent not in known:
                msg = f"router names unknown agent {agent!r}{did_you_mean(agent, known)}"
                raise ConfigurationError(msg)
        if not self.agent_candidates():
            msg = "no agents to route to: register one with @registry.agent"
            raise ConfigurationError(msg)
        for name in self.registry.models:
            self.priced_model(name)
        self._check_fixed_choices()  # cheap: before fitting or loading any strategy's state
        for strategy in self._strategies():
            bind = getattr(strategy, "bind_store", None)
            if callable(bind):
                # Learning strategies keep their state (pheromones, memories) in the trace
                # store, versioned, so several processes learn into the same tables.
                bind(self.store)
            check = getattr(strategy, "validate", None)
            if callable(check):
                # Strategies with structural needs (a layered graph, declared tiers, examples)
                # fail here, at compile time, with a ConfigurationError.
                check(self.registry, self.agent_candidates())
        self._learners = [s for s in self._strategies() if isinstance(s, LearningStrategy)]
        self._compiled = self._engine.build().compile(checkpointer=self.checkpointer)
        return self

    def _strategies(self) -> list[RoutingStrategy]:
        """Every slot's strategy and those nested in composites, depth first, each once.

        One object may sit in two slots or twice in a composite; it is still bound, validated,
        taught and closed once (a colony taught twice would deposit every run twice).
        """
        slots = (self.agent_strategy, self.skills_strategy, self.model_strategy)
        seen: dict[int, RoutingStrategy] = {}
        for slot in slots:
            for s in strategy_tree(slot):
                seen.setdefault(id(s), s)
        return list(seen.values())

    def _check_fixed_choices(self) -> None:
        """Names a strategy always may choose (`Static`, `Rules`) must exist in its slot."""
        slots = (
            ("agent", "agent", self.agent_strategy, self.agent_candidates()),
            ("skills", "skill", self.skills_strategy, self.registry.skills),
            ("model", "model", self.model_strategy, self.registry.models),
        )
        for slot, noun, top, known in slots:
            for strategy in strategy_tree(top):
                names = getattr(strategy, "fixed_choices", None)
                unknown = [n for n in names() if n not in known] if callable(names) else []
                if not unknown:
                    continue
                name = unknown[0]
                label = describe_strategy(strategy)["strategy"]
                if slot == "agent" and name in self.registry.agents:
                    why = (
                        "is the out-of-scope handler"
                        if name == self.out_of_scope
                        else "is not among Router(agents=...)"
                    )
                    msg = (
                        f"agent strategy {label!r} chooses agent {name!r}, which {why}; the "
                        f"agent slot can choose {', '.join(repr(a) for a in known)}"
                    )
                else:
                    msg = (
                        f"{slot} strategy {label!r} chooses unknown {noun} {name!r}"
                        f"{did_you_mean(name, known)}"
                    )
                raise ConfigurationError(msg)

    @property
    def graph(self) -> Any:
        """The compiled LangGraph graph (escape hatch; its types are LangGraph's)."""
        self.compile()
        return self._compiled

    @property
    def client(self) -> ModelClient:
        """The model client (a `LiteLLMClient` unless one was given)."""
        if self._client is None:
            from agentroute.models import LiteLLMClient

            self._client = LiteLLMClient()
        return self._client

    def config(self) -> dict[str, Any]:
        """The router's configuration as recorded with each run (graph YAML form per slot)."""
        describe = self._engine.describe
        return {
            "name": self.name,
            "agent": describe(self.agent_strategy),
            "skills": describe(self.skills_strategy) if self.skills_strategy else None,
            "model": describe(self.model_strategy) if self.model_strategy else None,
            "refiner": describe(self.refiner),
            "agents": list(self.agents) if self.agents is not None else None,
            "limits": self.limits.model_dump(),
            "out_of_scope": self.out_of_scope,
            "out_of_scope_message": self.out_of_scope_message,
            "refine_single": self.refine_single,
            "app": self.app,
        }

    # -- lookups used by the engine ----------------------------------------------------------

    def agent_candidates(self) -> tuple[str, ...]:
        """Agents the agent slot may choose now (the registry may have grown)."""
        names = self.agents if self.agents is not None else tuple(self.registry.agents)
        return tuple(n for n in names if n != self.out_of_scope)

    def priced_model(self, name: str) -> ModelSpec:
        """The model's spec with prices filled in (from LiteLLM's map when not given).

        Raises:
            ConfigurationError: Unknown model, or no price anywhere.
        """
        spec = self.registry.get_model(name)
        cached = self._priced.get(name)
        if cached is not None and cached[0] is spec:
            return cached[1]
        priced = spec if spec.priced else resolve_prices(spec)
        self._priced[name] = (spec, priced)
        return priced

    def default_model(self, agent: str | None) -> str | None:
        """The model a branch runs on when no model strategy decides."""
        models = self.registry.models
        if agent is not None:
            spec = self.registry.get_agent(agent)
            if spec.model is not None:
                return spec.model
            if spec.tier is not None:
                tiered = self.registry.models_in_tier(spec.tier)
                if tiered:
                    return tiered[0].name
        return next(iter(models), None)

    # -- running -----------------------------------------------------------------------------

    async def run(
        self,
        task: str,
        *,
        budget: Budget | None = None,
        metadata: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        seed: int | None = None,
    ) -> RunResult:
        """Route and run one request to its end.

        Args:
            task: The user's request.
            budget: Hard limit on this run's model spend (default: the router's).
            metadata: Recorded with the run; rules may route on it.
            run_id: Use this id (default: a new UUID).
            seed: Seed for sampling strategies, in [0, 2**63) (default: derived from the run
                id).

        Returns:
            The result; clean stops (step limit, loop, budget, out of scope) return normally
            with their `status`.

        Raises:
            AgentError: Every agent of a step failed (the failure is recorded first).
            RoutingError: A strategy raised or decided something invalid.
            ConfigurationError: The router or registry is misconfigured, the task is empty or
                the seed is out of range.
        """
        return await self._run(task, budget=budget, metadata=metadata, run_id=run_id, seed=seed)

    def run_sync(
        self,
        task: str,
        *,
        budget: Budget | None = None,
        metadata: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        seed: int | None = None,
    ) -> RunResult:
        """`run` for synchronous code. Not callable from inside a running event loop.

        Raises:
            RuntimeError: Called from async code; use `await router.run(...)` there.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(
                self.run(task, budget=budget, metadata=metadata, run_id=run_id, seed=seed)
            )
        msg = "run_sync() was called inside a running event loop; use `await router.run(...)`"
        raise RuntimeError(msg)

    async def stream(
        self,
        task: str,
        *,
        budget: Budget | None = None,
        metadata: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        seed: int | None = None,
    ) -> AsyncIterator[TraceRecord]:
        """Run and yield every record as it is written.

        Decisions, model calls and agent outputs arrive as they happen; the last record is the
        `RunEndRecord`.

        Raises:
            RunError: As `run` does, after yielding what was recorded before the failure.
        """
        queue: asyncio.Queue[TraceRecord] = asyncio.Queue()
        task_ = asyncio.create_task(
            self._run(
                task, budget=budget, metadata=metadata, run_id=run_id, seed=seed, listener=queue
            )
        )
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, task_}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    record = getter.result()
                    yield record
                    if isinstance(record, RunEndRecord):
                        break
                    continue
                getter.cancel()
                while not queue.empty():
                    record = queue.get_nowait()
                    yield record
                    if isinstance(record, RunEndRecord):
                        break
                break
            await task_
        finally:
            if not task_.done():
                task_.cancel()

    async def _run(
        self,
        task: str,
        *,
        budget: Budget | None,
        metadata: Mapping[str, Any] | None,
        run_id: str | None,
        seed: int | None,
        listener: asyncio.Queue[TraceRecord] | None = None,
        client: ModelClient | None = None,
        store: TraceStore | None = None,
        replay_of: str | None = None,
    ) -> RunResult:
        explicit_id = run_id is not None
        _check_run_args(task, seed)
        _check_budget(budget, "run(budget=...)")
        _check_metadata(metadata)
        task = scrub_text(task)  # what the agents see is what the trace records
        self.compile()
        store = store or self.store
        run_id = run_id or uuid.uuid4().hex
        key = (store.url, run_id)
        _reserve(key)
        try:
            return await self._run_reserved(
                task,
                budget=budget,
                metadata=metadata,
                run_id=run_id,
                seed=seed,
                listener=listener,
                client=client,
                store=store,
                replay_of=replay_of,
                check_store=explicit_id,
            )
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(key)

    async def _run_reserved(
        self,
        task: str,
        *,
        budget: Budget | None,
        metadata: Mapping[str, Any] | None,
        run_id: str,
        seed: int | None,
        listener: asyncio.Queue[TraceRecord] | None,
        client: ModelClient | None,
        store: TraceStore,
        replay_of: str | None,
        check_store: bool,
    ) -> RunResult:
        if check_store and await asyncio.to_thread(store.has_run, run_id):
            msg = f"run id {run_id!r} is already in {store.url}; run ids must be new"
            raise ConfigurationError(msg)
        budget = budget or self.budget
        recorder = RunRecorder(run_id, store)
        if listener is not None:
            recorder.listen(listener)
        scope = RunScope(
            run_id=run_id,
            task=task,
            recorder=recorder,
            ledger=open_ledger(budget, store, run_id=run_id),
            client=client or self.client,
            metadata=dict(metadata or {}),
            seed=seed if seed is not None else int(uuid.UUID(hex=_hex32(run_id)).int % 2**31),
            semaphore=asyncio.Semaphore(self.limits.agent_concurrency),
        )
        config = self.config()
        scope.versions = {
            id(strategy): config[slot]["version"]
            for slot, strategy in (
                ("agent", self.agent_strategy),
                ("skills", self.skills_strategy),
                ("model", self.model_strategy),
                ("refiner", self.refiner),
            )
            if strategy is not None and config[slot] is not None
        }
        recorder.record(
            RunRecord,
            task=task,
            router=config,
            registry_hash=self.registry.content_hash(),
            budget_usd=budget.usd if budget else None,
            budget=budget.model_dump(mode="json") if budget else None,
            metadata=scope.metadata,
            seed=scope.seed,
            replay_of=replay_of,
        )
        self._engine.scopes[run_id] = scope
        structlog.contextvars.bind_contextvars(run_id=run_id)
        try:
            final = await self._invoke(scope)
        except BaseException as exc:
            self._end(scope, status="failed", reason=f"run failed: {type(exc).__name__}", error=exc)
            if isinstance(exc, RunError) and exc.run_id is None:
                exc.run_id = run_id
            if self.durable and type(store).flush is not TraceStore.flush:
                # Make the failure durable too, but never let a store problem hide it.
                with contextlib.suppress(StoreError):
                    await asyncio.to_thread(store.flush)
            raise
        finally:
            self._engine.scopes.pop(run_id, None)
            structlog.contextvars.unbind_contextvars("run_id")
        status = final["status"] or "completed"
        # Steps in which agents acted; a step refused by the limit or ended by the strategy
        # deciding `finish` does not count.
        steps = len(scope.history)
        agents = tuple(s.agents for s in scope.history)
        if status == "failed":
            err = AgentError(
                f"run {run_id} failed: {final['reason']}: {final['error']}",
                agent=agents[-1][0] if agents and agents[-1] else "",
                run_id=run_id,
                answer=final["answer"],
            )
            self._end(
                scope,
                status="failed",
                reason=final["reason"],
                answer=final["answer"],
                error=err,
                error_text=final["error"],
                error_type=final["error_type"],
                steps=steps,
            )
            if self.durable and type(store).flush is not TraceStore.flush:
                await asyncio.to_thread(store.flush)
            raise err from scope.errors.get(err.agent)
        answer = final["answer"]
        self._end(scope, status=status, reason=final["reason"], answer=answer, steps=steps)
        if self.durable and type(store).flush is not TraceStore.flush:
            await asyncio.to_thread(store.flush)
        result = RunResult(
            run_id=run_id,
            status=status,
            answer=answer,
            reason=final["reason"],
            cost_usd=scope.ledger.spent_usd,
            steps=steps,
            agents=agents,
        )
        if replay_of is None:
            # A replay re-runs a recorded request; learning from it would count it twice.
            await self._learn(scope, result)
        return result

    async def _invoke(self, scope: RunScope) -> RunState:
        state: RunState = {
            "run_id": scope.run_id,
            "task": scope.task,
            "step": 0,
            "previous": None,
            "answer": None,
            "agents": [],
            "then": "finish",
            "branches": [],
            "status": None,
            "reason": "",
            "error": None,
            "error_type": None,
        }
        config = {
            "configurable": {"thread_id": scope.run_id},
            "recursion_limit": self.limits.max_steps * 4 + 8,
        }
        final: RunState = await self._compiled.ainvoke(state, config=config)
        return final

    def _end(
        self,
        scope: RunScope,
        *,
        status: str,
        reason: str,
        answer: str | None = None,
        error: BaseException | None = None,
        error_text: str | None = None,
        error_type: str | None = None,
        steps: int | None = None,
    ) -> None:
        scope.recorder.record(
            RunEndRecord,
            status=status,
            reason=reason,
            answer=answer,
            cost_usd=scope.ledger.spent_usd,
            steps=steps if steps is not None else len(scope.history),
            error=error_text or (f"{type(error).__name__}: {error}" if error else None),
            error_type=error_type or (type(error).__name__ if error else None),
        )

    async def _learn(self, scope: RunScope, result: RunResult, score: float | None = None) -> None:
        if not self._learners:
            return
        outcome = Outcome(
            run_id=result.run_id,
            task=scope.task,
            status=result.status,
            answer=result.answer,
            cost_usd=result.cost_usd,
            steps=result.agents,
            outputs={a: o for s in scope.history for a, o in s.outputs.items()},
            score=score,
            metadata=scope.metadata,
        )
        await self._learn_outcome(outcome)

    async def _learn_outcome(self, outcome: Outcome) -> None:
        self.compile()  # resolves the learning strategies once
        for strategy in self._learners:
            try:
                await strategy.learn(outcome)
            except Exception as exc:  # learning never breaks serving
                log.warning(
                    "learning failed",
                    strategy=describe_strategy(strategy)["strategy"],
                    run_id=outcome.run_id,
                    error=f"{type(exc).__name__}: {exc}",
                )

    # -- after the run -----------------------------------------------------------------------

    def trace(self, run_id: str) -> RunTrace:
        """Every record of a run, from this router's store.

        Raises:
            RunNotFound: No such run.
        """
        self.store.flush()
        return self.store.get_run(run_id)

    async def feedback(
        self,
        run_id: str,
        *,
        score: float | None = None,
        label: str | None = None,
        agent: str | None = None,
        comment: str | None = None,
        source: str = "user",
    ) -> FeedbackRecord:
        """Record feedback on a finished run and pass it to learning strategies.

        Raises:
            RunNotFound: No such run.
            ValueError: Score outside [0, 1], or neither score nor label.
        """
        record = await asyncio.to_thread(
            self.store.add_feedback,
            run_id,
            score=score,
            label=label,
            agent=agent,
            comment=comment,
            source=source,
        )
        trace = await asyncio.to_thread(self.store.get_run, run_id)
        end = trace.end
        steps: list[tuple[str, ...]] = []
        models: list[str] = []
        for d in trace.decisions:
            if d.slot == "agent" and d.outcome == "route":
                steps.append(tuple(d.chosen))
            elif d.slot == "model" and d.chosen:
                models.append(d.chosen[0])
        await self._learn_outcome(
            Outcome(
                run_id=run_id,
                task=trace.run.task,
                status=end.status if end else "unknown",
                answer=end.answer if end else None,
                cost_usd=end.cost_usd if end else 0.0,
                steps=tuple(steps),
                outputs={o.agent: o.output for o in trace.outputs},
                score=score,
                metadata=trace.run.metadata,
                models=tuple(models),
            )
        )
        return record

    def close(self) -> None:
        """Stop strategies' background work, then flush and close the trace store.

        Strategies with a `close()` (e.g. a learning worker) are stopped first.
        """
        for strategy in self._strategies():
            stop = getattr(strategy, "close", None)
            if callable(stop):
                stop()
        self.store.close()

    def __repr__(self) -> str:
        return f"Router({self.name!r}, agent={describe_strategy(self.agent_strategy)['strategy']})"


def _hex32(run_id: str) -> str:
    from agentroute._hashing import sha256_hex

    return sha256_hex(run_id)[:32]


_RUNNING: set[tuple[str, str]] = set()
"""(store URL, run id) of every run in progress in this process."""
_RUNNING_LOCK = threading.Lock()


def _reserve(key: tuple[str, str]) -> None:
    """Claim a run id in a store for a run in this process, atomically (check and insert).

    The store's `has_run` check alone races: two runs with the same id both pass it before
    either records anything.

    Raises:
        ConfigurationError: A run with that id in that store is in progress.
    """
    with _RUNNING_LOCK:
        if key in _RUNNING:
            msg = (
                f"run id {key[1]!r} is in use by a run in progress in {key[0]}; run ids must "
                "be new (leave run_id unset for a fresh one)"
            )
            raise ConfigurationError(msg)
        _RUNNING.add(key)


def _check_metadata(metadata: object) -> None:
    """Refuse run metadata the run record cannot hold (it is a JSON object)."""
    if metadata is None:
        return
    if not isinstance(metadata, Mapping):
        msg = f"metadata must be a mapping with string keys, got {type(metadata).__name__}"
        raise ConfigurationError(msg)
    for key in metadata:
        if not isinstance(key, str):
            msg = (
                f"metadata key {key!r} ({type(key).__name__}) is not a string; run metadata "
                f"is recorded as JSON, so use string keys, e.g. {str(key)!r}"
            )
            raise ConfigurationError(msg)


def _check_budget(budget: object, where: str) -> None:
    """Refuse a budget that is not a `Budget` (a bare number is ambiguous: dollars? calls?)."""
    if budget is not None and not isinstance(budget, Budget):
        example = (
            f"Budget(usd={budget!r})" if isinstance(budget, int | float) else "Budget(usd=0.05)"
        )
        msg = f"{where} takes an agentroute Budget, e.g. {example}; got {type(budget).__name__}"
        raise ConfigurationError(msg)


def _check_run_args(task: object, seed: object) -> None:
    """Refuse a task or seed that no run can start (or be recorded) with."""
    if not isinstance(task, str) or not task.strip():
        msg = "task must be a non-empty string"
        raise ConfigurationError(msg)
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63
    ):
        msg = (
            f"seed must be an integer in [0, 2**63), got {seed!r}; reduce it first, "
            "e.g. seed % 2**63"
        )
        raise ConfigurationError(msg)
