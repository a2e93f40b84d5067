"""A run's trace condensed to what one table row says: who acted, with what, on which model, why.

Built from the records only (never from the live router), so `runs list`, the demo and any run
read back from a store agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentroute.stores import RunTrace

__all__ = ["BranchDigest", "RunDigest", "digest"]


@dataclass(frozen=True)
class BranchDigest:
    """One agent at one step."""

    step: int
    agent: str
    skills: tuple[str, ...]
    """Skill ids in the agent's context, in rank order."""
    models: tuple[str, ...]
    """Models the agent's calls ran on (the routed model when it made none)."""
    output: str | None
    error: str | None


@dataclass(frozen=True)
class RunDigest:
    """One run."""

    run_id: str
    task: str
    status: str
    """The end record's status, or `running` when the run has none."""
    reason: str
    """Why the run ended."""
    steps: tuple[tuple[str, ...], ...]
    """The agents of each step (several for a fan-out)."""
    why: tuple[str, ...]
    """The agent slot's reason at each step."""
    branches: tuple[BranchDigest, ...]
    cost_usd: float
    model_calls: int
    input_tokens: int
    output_tokens: int
    answer: str | None
    error: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (one object per run in `agentroute demo --json`)."""
        data = asdict(self)
        data["steps"] = [list(agents) for agents in self.steps]
        data["why"] = list(self.why)
        return data


def digest(trace: RunTrace) -> RunDigest:
    """Condense a run's records."""
    agent_decisions = {d.step: d for d in trace.decisions if d.slot == "agent"}
    outputs_by_step: dict[int, list[str]] = {}
    for out in trace.outputs:
        outputs_by_step.setdefault(out.step, []).append(out.agent)
    steps: list[tuple[str, ...]] = []
    why: list[str] = []
    for step in sorted(set(agent_decisions) | set(outputs_by_step)):
        decision = agent_decisions.get(step)
        agents = outputs_by_step.get(step)
        if not agents and decision is not None:
            agents = decision.chosen or [f"<{decision.outcome}>"]
        steps.append(tuple(agents or ()))
        why.append(decision.reason if decision is not None else "")

    called: dict[tuple[int, str], list[str]] = {}
    for call in trace.model_calls:
        models = called.setdefault((call.step, call.branch), [])
        if call.model not in models:
            models.append(call.model)
    branches = tuple(
        BranchDigest(
            step=out.step,
            agent=out.agent,
            skills=tuple(out.skills),
            models=tuple(called.get((out.step, out.agent)) or ([out.model] if out.model else [])),
            output=out.output,
            error=out.error,
        )
        for out in trace.outputs
    )
    end = trace.end
    calls = trace.model_calls
    return RunDigest(
        run_id=trace.run_id,
        task=trace.run.task,
        status=end.status if end is not None else "running",
        reason=end.reason if end is not None else "",
        steps=tuple(steps),
        why=tuple(why),
        branches=branches,
        cost_usd=end.cost_usd if end is not None else sum(c.cost_usd for c in calls),
        model_calls=len(calls),
        input_tokens=sum(c.input_tokens for c in calls),
        output_tokens=sum(c.output_tokens for c in calls),
        answer=end.answer if end is not None else None,
        error=end.error if end is not None else None,
    )
