"""`RunResult`: what a run returns."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from agentroute.stores import RunStatus

__all__ = ["RunResult"]


class RunResult(BaseModel):
    """The outcome of one run. The full story is in the trace: `router.trace(result.run_id)`."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    status: RunStatus
    """`completed`, `out_of_scope`, `step_limit`, `loop_detected` or `budget_exhausted`
    (failed runs raise instead)."""
    answer: str | None
    """The final answer (possibly partial when the run was stopped)."""
    reason: str
    """Why the run ended."""
    cost_usd: float
    """What the run's model calls cost."""
    steps: int
    """Routing steps taken."""
    agents: tuple[tuple[str, ...], ...] = ()
    """Agents that acted, per step."""
