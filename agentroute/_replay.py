"""Replay recorded runs: exactly (zero model calls) or against another router (counterfactual).

- `replay(run_id, router=same_router)` re-runs the graph with the run's recorded input; every
  model call is served from the trace (no tokens spent) and any decision that differs from the
  recording is reported as a divergence.
- `replay(run_id, router=other_router)` re-routes the same input with another router and diffs
  the decisions step by step. Where the other router asks for a model output the recording
  does not hold (another agent, another model, a new step), the output is marked *unobserved*;
  nothing is invented.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter, defaultdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentroute import errors as _errors
from agentroute.errors import ConfigurationError, ModelBadRequest, ModelCallError, ReplayError
from agentroute.models import ModelRequest, ModelResponse, Usage
from agentroute.registry import Registry
from agentroute.runtime import Router
from agentroute.runtime._router import DEFAULT_OUT_OF_SCOPE_MESSAGE
from agentroute.stores import (
    DecisionRecord,
    InMemoryTraceStore,
    ModelCallRecord,
    RunTrace,
    TraceStore,
    open_store,
)

__all__ = [
    "RecordedModelClient",
    "ReplayReport",
    "StepDiff",
    "UnobservedCall",
    "replay",
    "replay_sync",
]

_SLOT_ORDER = {"agent": 0, "skills": 1, "model": 2, "output": 3, "refiner": 4}


class UnobservedCall(ModelBadRequest):
    """The replayed run asked for a model output the recording does not hold."""


class RecordedModelClient:
    """A `ModelClient` that serves a run's recorded model outputs and never calls a provider.

    Calls are matched by (step, branch, call index, model); each recorded attempt is served in
    order, failures included, so retries and fallbacks replay as they happened.
    """

    def __init__(self, trace: RunTrace) -> None:
        self._attempts: dict[tuple[int, str, int], list[ModelCallRecord]] = defaultdict(list)
        for call in trace.model_calls:
            self._attempts[(call.step, call.branch, call.call_index)].append(call)
        self._lock = threading.Lock()
        self.served = 0
        self.unobserved: list[str] = []

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Serve the next recorded attempt for this call, or raise `UnobservedCall`."""
        meta = request.metadata
        key = (
            int(meta.get("step", -1)),
            str(meta.get("branch", "")),
            int(meta.get("call_index", -1)),
        )
        with self._lock:
            queue = self._attempts.get(key)
            record = queue.pop(0) if queue else None
            if record is None or record.model != request.model.name:
                what = f"step {key[0]}, {key[1]!r}, call {key[2]} on model {request.model.name!r}"
                if record is not None:
                    what += f" (recorded on {record.model!r})"
                self.unobserved.append(what)
                msg = f"unobserved: no recorded output for {what}"
                raise UnobservedCall(msg, model=request.model.name)
            self.served += 1
        if record.error_type is not None:
            cls = getattr(_errors, record.error_type, None)
            if not (isinstance(cls, type) and issubclass(cls, ModelCallError)):
                cls = _errors.ModelUnavailable
            raise cls(record.error or "recorded failure", model=record.model)
        return ModelResponse(
            text=record.response or "",
            usage=Usage(input_tokens=record.input_tokens, output_tokens=record.output_tokens),
            model_id=record.model_id,
            cost_usd=record.cost_usd,
            finish_reason="replayed",
        )


class StepDiff(BaseModel):
    """One line of a replay diff."""

    model_config = ConfigDict(frozen=True)

    step: int
    slot: str
    """`agent`, `skills`, `model`, `refiner`, or `output` (an agent's output)."""
    branch: str
    repeat: int = 0
    """0 for a slot's first decision in this step and branch; 1, 2, ... when it decided again
    (the model slot re-routes after a refused budget reservation)."""
    recorded: list[str] | None
    """What the recording chose (for `output`: the output text), `None` when absent."""
    replayed: list[str] | None
    status: Literal["same", "changed", "only_recorded", "only_replayed", "unobserved"]


class ReplayReport(BaseModel):
    """What a replay found."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    """The recorded run."""
    replay_run_id: str
    mode: Literal["exact", "counterfactual"]
    """`exact` when the router's configuration equals the recorded one."""
    diffs: list[StepDiff] = Field(default_factory=list)
    recorded_status: str | None
    replayed_status: str
    recorded_answer: str | None
    replayed_answer: str | None
    model_calls_served: int
    """Model outputs served from the recording (no tokens spent)."""
    unobserved: list[str] = Field(default_factory=list)
    """Model outputs the replay needed but the recording does not hold."""
    error: str | None = None
    """Set when the replayed run failed."""

    @property
    def divergences(self) -> list[StepDiff]:
        """The lines that differ."""
        return [d for d in self.diffs if d.status != "same"]

    @property
    def identical(self) -> bool:
        """True when every decision and output matched and the answers are equal."""
        return not self.divergences and self.recorded_answer == self.replayed_answer


async def replay(
    run_id: str,
    router: Router | None = None,
    *,
    registry: Registry | None = None,
    store: TraceStore | str | None = None,
    record: bool = False,
) -> ReplayReport:
    """Replay a recorded run; see the module docstring.

    Args:
        run_id: The run to replay.
        router: The router to replay with. `None` rebuilds the recorded router (needs
            `registry`, and every recorded strategy in the catalog).
        registry: Provides the agent functions when `router` is `None`.
        store: Where the recorded run is (default: the router's store).
        record: Also write the replayed run (with `replay_of`) to that store; by default it is
            kept in memory only.

    Returns:
        A report with the step-by-step diff.

    Raises:
        RunNotFound: No such run.
        ConfigurationError: Neither a router nor a registry was given.
    """
    if router is None and registry is None:
        msg = "replay needs the router to replay with, or the registry to rebuild it from the trace"
        raise ConfigurationError(msg)
    source = open_store(store) if store is not None else (router.store if router else None)
    if source is None:
        source = open_store(None)
    trace = await asyncio.to_thread(source.get_run, run_id)
    client = RecordedModelClient(trace)
    if router is None:
        assert registry is not None
        router = Router.from_config(registry, trace.run.router, store=source, client=client)
    mode: Literal["exact", "counterfactual"] = (
        "exact" if _same_config(router.config(), trace.run.router) else "counterfactual"
    )
    target = source if record else InMemoryTraceStore()
    error: str | None = None
    try:
        result = await router._run(
            trace.run.task,
            budget=_budget(trace),
            metadata=trace.run.metadata,
            run_id=None,
            seed=trace.run.seed,
            client=client,
            store=target,
            replay_of=run_id,
        )
        new_run_id = result.run_id
    except _errors.RunError as exc:
        error = f"{type(exc).__name__}: {exc}"
        if exc.run_id is None:
            raise ReplayError(f"replay of {run_id} failed before it started: {error}") from exc
        new_run_id = exc.run_id
    new = await asyncio.to_thread(target.get_run, new_run_id)
    end_old, end_new = trace.end, new.end
    return ReplayReport(
        run_id=run_id,
        replay_run_id=new_run_id,
        mode=mode,
        diffs=_diff(trace, new),
        recorded_status=end_old.status if end_old else None,
        replayed_status=end_new.status if end_new else "failed",
        recorded_answer=end_old.answer if end_old else None,
        replayed_answer=end_new.answer if end_new else None,
        model_calls_served=client.served,
        unobserved=client.unobserved,
        error=error,
    )


def replay_sync(run_id: str, router: Router | None = None, **kwargs: Any) -> ReplayReport:
    """`replay` for synchronous code."""
    return asyncio.run(replay(run_id, router, **kwargs))


def _budget(trace: RunTrace) -> Any:
    from agentroute.models import Budget

    if trace.run.budget:
        # A replay spends nothing real, so it must never charge a shared budget key: the
        # recorded limits apply to the replay alone.
        fields = {k: v for k, v in trace.run.budget.items() if k != "key"}
        return Budget.model_validate(fields)
    return Budget(usd=trace.run.budget_usd) if trace.run.budget_usd else None


def _same_config(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("agent", "skills", "model", "refiner", "agents", "limits", "out_of_scope")
    if not all(a.get(k) == b.get(k) for k in keys):
        return False
    # Runs recorded before these keys existed had the defaults (as `Router.from_config` does).
    defaults = {
        "out_of_scope_message": DEFAULT_OUT_OF_SCOPE_MESSAGE,
        "refine_single": False,
    }
    return all(a.get(k, d) == b.get(k, d) for k, d in defaults.items())


def _decision_map(trace: RunTrace) -> dict[tuple[int, str, str, int], DecisionRecord]:
    # A slot can decide twice for one branch (the model slot re-routed after a refused budget
    # reservation): number the repeats so that every decision is compared.
    seen: Counter[tuple[int, str, str]] = Counter()
    out: dict[tuple[int, str, str, int], DecisionRecord] = {}
    for d in trace.decisions:
        key = (d.step, d.slot, d.branch)
        out[(*key, seen[key])] = d
        seen[key] += 1
    return out


def _diff(old: RunTrace, new: RunTrace) -> list[StepDiff]:
    a, b = _decision_map(old), _decision_map(new)
    out_a = {(o.step, "output", o.agent, 0): o for o in old.outputs}
    out_b = {(o.step, "output", o.agent, 0): o for o in new.outputs}
    keys = sorted(
        set(a) | set(b) | set(out_a) | set(out_b),
        key=lambda k: (k[0], _SLOT_ORDER.get(k[1], 9), k[2], k[3]),
    )
    diffs: list[StepDiff] = []
    for key in keys:
        step, slot, branch, repeat = key
        if slot == "output":
            oa, ob = out_a.get(key), out_b.get(key)
            ra = [oa.output or f"<error: {oa.error_type}>"] if oa else None
            rb = [ob.output or f"<error: {ob.error_type}>"] if ob else None
            if ob is not None and ob.error_type == "UnobservedCall":
                status = "unobserved"
            else:
                status = _status(ra, rb)
        else:
            da, db = a.get(key), b.get(key)
            ra = (
                [f"<{da.outcome}>"] if da and da.outcome != "route" else (da.chosen if da else None)
            )
            rb = (
                [f"<{db.outcome}>"] if db and db.outcome != "route" else (db.chosen if db else None)
            )
            status = _status(ra, rb)
        diffs.append(
            StepDiff(
                step=step,
                slot=slot,
                branch=branch,
                repeat=repeat,
                recorded=ra,
                replayed=rb,
                status=status,
            )
        )
    return diffs


def _status(
    a: list[str] | None, b: list[str] | None
) -> Literal["same", "changed", "only_recorded", "only_replayed"]:
    if a is None:
        return "only_replayed"
    if b is None:
        return "only_recorded"
    return "same" if a == b else "changed"
