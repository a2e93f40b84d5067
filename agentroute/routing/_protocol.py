"""The routing protocol: one `RoutingStrategy` shape for the agent, skills and model slots."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from agentroute.models._budget import BudgetSnapshot
from agentroute.registry import Registry

__all__ = [
    "BudgetView",
    "Candidate",
    "Complete",
    "LearningStrategy",
    "Outcome",
    "RouteDecision",
    "RoutingContext",
    "RoutingStrategy",
    "Slot",
    "StepView",
]

Slot = Literal["agent", "skills", "model"]
"""The three routing slots."""

Complete = Callable[..., Awaitable[str]]
"""`await ctx.complete(prompt_or_messages, model="strong", max_tokens=...)` → text."""


class Candidate(BaseModel):
    """One option a strategy considered, with its score (higher is better)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """Agent name, skill id or model name."""
    score: float | None = None
    """The strategy's score; `None` when it does not score."""
    detail: dict[str, Any] = Field(default_factory=dict)
    """Component scores or other per-candidate evidence."""


class RouteDecision(BaseModel):
    """What a strategy decided for one slot. Frozen; recorded in the trace whole.

    Use the constructors: `RouteDecision.to(...)` (agents), `.with_skills(...)`,
    `.with_model(...)`, `.finish(...)`, `.abstain(...)`, `.out_of_scope(...)`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: Literal["route", "finish", "abstain", "out_of_scope"] = "route"
    """`route`: the choice below applies. `finish`: end the run with the current answer.
    `abstain`: this strategy has no opinion (composites try the next). `out_of_scope`: no agent
    fits the request (agent slot)."""
    agents: tuple[str, ...] = ()
    """Agent slot: who acts at this step (several run in parallel, then the refiner merges)."""
    then: Literal["finish", "route"] = "finish"
    """Agent slot: after these agents answer, end the run (`finish`) or route again (`route`,
    e.g. the next stage of a path). An agent returning `AgentResult(final=False)` also routes
    again."""
    skills: tuple[str, ...] = ()
    """Skills slot: skill ids for the branch's context (may be empty: no skill fits)."""
    model: str | None = None
    """Model slot: the model (registry name) for the branch."""
    candidates: tuple[Candidate, ...] = ()
    """Every candidate considered, with its score."""
    reason: str = ""
    """Why, in words."""
    evidence: dict[str, Any] = Field(default_factory=dict)
    """Strategy-specific evidence (scores, probabilities, budget, matched rules, ...)."""
    strategy: str = ""
    """Which strategy decided; the runtime fills it in when left empty."""

    @classmethod
    def to(
        cls,
        *agents: str,
        then: Literal["finish", "route"] = "finish",
        reason: str = "",
        candidates: Sequence[Candidate] = (),
        evidence: Mapping[str, Any] | None = None,
    ) -> RouteDecision:
        """Route to one or more agents."""
        return cls(
            agents=agents,
            then=then,
            reason=reason,
            candidates=tuple(candidates),
            evidence=dict(evidence or {}),
        )

    @classmethod
    def with_skills(
        cls,
        *skills: str,
        reason: str = "",
        candidates: Sequence[Candidate] = (),
        evidence: Mapping[str, Any] | None = None,
    ) -> RouteDecision:
        """Choose skills for a branch (none is a valid choice)."""
        return cls(
            skills=skills,
            reason=reason,
            candidates=tuple(candidates),
            evidence=dict(evidence or {}),
        )

    @classmethod
    def with_model(
        cls,
        model: str,
        *,
        reason: str = "",
        candidates: Sequence[Candidate] = (),
        evidence: Mapping[str, Any] | None = None,
    ) -> RouteDecision:
        """Choose the model for a branch."""
        return cls(
            model=model, reason=reason, candidates=tuple(candidates), evidence=dict(evidence or {})
        )

    @classmethod
    def finish(cls, reason: str = "", **evidence: Any) -> RouteDecision:
        """End the run with the answer so far."""
        return cls(outcome="finish", reason=reason, evidence=evidence)

    @classmethod
    def abstain(cls, reason: str = "", **evidence: Any) -> RouteDecision:
        """Have no opinion; a composite tries its next strategy."""
        return cls(outcome="abstain", reason=reason, evidence=evidence)

    @classmethod
    def out_of_scope(
        cls, reason: str = "", candidates: Sequence[Candidate] = (), **evidence: Any
    ) -> RouteDecision:
        """Say that no agent fits the request."""
        return cls(
            outcome="out_of_scope", reason=reason, candidates=tuple(candidates), evidence=evidence
        )

    @property
    def chosen(self) -> tuple[str, ...]:
        """The choice, whatever the slot: agents, skills, or the model."""
        if self.agents:
            return self.agents
        if self.model is not None:
            return (self.model,)
        return self.skills


@dataclass(frozen=True, slots=True)
class StepView:
    """What happened at one earlier step, as strategies see it."""

    step: int
    agents: tuple[str, ...]
    outputs: Mapping[str, str | None]
    """Agent → output (`None` when it failed)."""
    answer: str | None
    """The step's (refined) answer."""


BudgetView = BudgetSnapshot
"""The run's budget as strategies see it: the ledger's `BudgetSnapshot` (for a shared key, the
key's totals over every run)."""

_UNLIMITED: BudgetView = BudgetSnapshot(None, 0.0, 0.0)


async def _no_complete(*_: Any, **__: Any) -> str:
    msg = "this routing context has no model access"
    raise RuntimeError(msg)


@dataclass(frozen=True, slots=True)
class RoutingContext:
    """Everything a strategy may read to decide. Built by the runtime for every decision."""

    run_id: str
    step: int
    slot: Slot
    task: str
    """The user's request."""
    registry: Registry
    candidates: tuple[str, ...]
    """The names this slot may choose from (agents, skill ids, or model names)."""
    agent: str | None = None
    """Skills and model slots: the agent of the branch being routed."""
    previous: str | None = None
    """The previous step's answer (`None` at step 0)."""
    history: tuple[StepView, ...] = ()
    """Earlier steps."""
    budget: BudgetView = _UNLIMITED
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Caller-supplied run metadata."""
    load: Mapping[str, int] = field(default_factory=dict)
    """Agent → branches in flight now, across the router's runs."""
    seed: int = 0
    """Per-decision seed derived from the run: sampling strategies use it for reproducibility."""
    complete: Complete = _no_complete
    """Model access for LLM-based strategies: traced, budgeted and replayable like any call."""
    refused: frozenset[str] = frozenset()
    """Model slot: models whose budget reservation was refused at this step. The runtime routes
    the slot again after a refusal; picking one of these again ends the run `budget_exhausted`,
    so a budget-aware strategy treats them as unaffordable."""


class Outcome(BaseModel):
    """A finished run as learning strategies see it."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    task: str
    status: str
    answer: str | None
    cost_usd: float
    steps: tuple[tuple[str, ...], ...]
    """Agents chosen at each step."""
    outputs: dict[str, str | None] = Field(default_factory=dict)
    """Last output of each agent that acted."""
    score: float | None = None
    """Feedback score in [0, 1], when known."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    models: tuple[str, ...] = ()
    """Model chosen by each model-slot decision, in order. Filled by `Router.feedback` from the
    stored trace (so a strategy in another process, or after a restart, knows what ran); empty
    for the outcome a run hands its own strategies as it ends."""


@runtime_checkable
class RoutingStrategy(Protocol):
    """Decides one slot. Implement `name` and `route`; the runtime does the rest.

    Optional attributes the runtime records when present: `version: str` and
    `params() -> dict` (the strategy's parameters, JSON-ready).
    """

    name: ClassVar[str]

    async def route(self, ctx: RoutingContext) -> RouteDecision:
        """Decide for `ctx.slot`."""
        ...


@runtime_checkable
class LearningStrategy(RoutingStrategy, Protocol):
    """A strategy that learns from finished runs and feedback."""

    async def learn(self, outcome: Outcome) -> None:
        """Take in one finished run. Must not raise into the run (errors are recorded)."""
        ...
