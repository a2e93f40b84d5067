"""What an agent function receives (`AgentContext`) and may return (`AgentResult`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from pydantic import BaseModel, ConfigDict, Field

from agentroute.errors import AgentError, ConfigurationError
from agentroute.models import Message
from agentroute.registry import SkillSpec
from agentroute.routing import BudgetView, StepView
from agentroute.runtime._threads import Branch

__all__ = ["AgentContext", "AgentResult", "SkillSet"]


class AgentResult(BaseModel):
    """An agent's answer with control information.

    Returning a plain `str` means `AgentResult(output=that, final=True)`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    output: str
    """The answer."""
    final: bool = True
    """`False` asks the router to route again after this step (the answer becomes
    `ctx.previous` of the next step)."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Anything worth recording with the output."""


class SkillSet(Sequence[SkillSpec]):
    """The skills routed into an agent's context, in rank order, bodies included."""

    def __init__(self, skills: Sequence[SkillSpec]) -> None:
        self._skills = tuple(skills)

    def __getitem__(self, index: Any) -> Any:
        return self._skills[index]

    def __len__(self) -> int:
        return len(self._skills)

    def __iter__(self) -> Iterator[SkillSpec]:
        return iter(self._skills)

    @property
    def ids(self) -> list[str]:
        """The skills' ids."""
        return [s.id for s in self._skills]

    def as_prompt(self, *, heading: str = "Skills you can use") -> str:
        """Render the skills as a prompt section.

        Each skill's name, description and full body go inside a `<skill id="...">` element:
        skill bodies have Markdown headings of their own, so an element keeps the boundaries
        unambiguous.
        """
        if not self._skills:
            return ""
        parts = [f"## {heading}"]
        for skill in self._skills:
            parts.append(
                f'<skill id="{skill.id}">\n{skill.name}\n{skill.description}\n\n'
                f"{skill.body.strip()}\n</skill>"
            )
        return "\n\n".join(parts)

    def __repr__(self) -> str:
        return f"SkillSet({self.ids})"


class _Completer(Protocol):
    async def __call__(
        self,
        prompt: str | Sequence[Message | Mapping[str, str]],
        *,
        system: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> str: ...


@dataclass(frozen=True)
class AgentContext:
    """Everything an agent function gets besides the task.

    Attributes:
        run_id: The run.
        step: The routing step.
        agent: This agent's registry name.
        skills: The skills routed to this branch, bodies included.
        model: The model (registry name) routed to this branch when the agent started, or
            `None` when none exists. Calls without `model=` follow the model slot, which routes
            again (and may downgrade) when the budget refuses a call; passing
            `model=ctx.model` pins this first choice instead.
        previous: The previous step's answer (`None` at step 0).
        history: Earlier steps.
        state: Free per-run scratch space shared by the run's agents (not persisted).
        metadata: Caller-supplied run metadata.
    """

    run_id: str
    step: int
    agent: str
    skills: SkillSet
    model: str | None
    previous: str | None
    history: tuple[StepView, ...]
    state: dict[str, Any]
    metadata: Mapping[str, Any]
    _complete: _Completer = field(repr=False)
    _budget: Any = field(repr=False)
    _loop: asyncio.AbstractEventLoop = field(repr=False)
    _branch: Branch | None = field(default=None, repr=False)

    async def complete(
        self,
        prompt: str | Sequence[Message | Mapping[str, str]],
        *,
        system: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> str:
        """Call the routed model (or `model`, a registry name) and return its text.

        The call is budgeted (reserved before, settled after), retried per the model's policy,
        falls back along the model's fallbacks, and is recorded in the trace.

        Args:
            prompt: A user message, or a list of messages (`Message` or `{"role", "content"}`).
            system: An optional system message put first.
            model: Override the routed model for this call.
            max_tokens: Output cap (default: the model's `max_output_tokens`).
            temperature: Sampling temperature.

        Raises:
            BudgetExceeded: The call does not fit the run's budget.
            ModelCallError: Every attempt and fallback failed.
            AgentError: The branch was abandoned (it timed out or the run ended).
        """
        if self._branch is not None:
            self._branch.check()
        return await self._complete(
            prompt, system=system, model=model, max_tokens=max_tokens, temperature=temperature
        )

    def complete_sync(
        self,
        prompt: str | Sequence[Message | Mapping[str, str]],
        *,
        system: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> str:
        """`complete` for sync agent functions (they run in a worker thread).

        Raises:
            ConfigurationError: Called on the event loop's own thread (from an async agent),
                where waiting for the loop would deadlock it; use `await ctx.complete(...)`.
            AgentError: The branch was abandoned: it timed out or its run ended (an abandoned
                agent thread is cut off from models).
            BudgetExceeded: As `complete`.
            ModelCallError: As `complete`.
        """
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            msg = (
                f"agent {self.agent!r} called ctx.complete_sync() on the event loop's thread, "
                "which would block the loop forever; in an async agent use "
                "`await ctx.complete(...)`"
            )
            raise ConfigurationError(msg)
        if self._branch is not None:
            self._branch.check()
        if self._loop.is_closed():
            msg = f"agent {self.agent!r} called ctx.complete_sync() after its run ended"
            raise AgentError(msg, agent=self.agent, run_id=self.run_id)
        future = asyncio.run_coroutine_threadsafe(
            self.complete(
                prompt, system=system, model=model, max_tokens=max_tokens, temperature=temperature
            ),
            self._loop,
        )
        if self._branch is not None:
            self._branch.track(future)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            if self._branch is not None:
                self._branch.check()
            raise

    @property
    def log(self) -> Any:
        """A structlog logger bound with run_id, step and agent (bound when first used)."""
        return bound_logger(self.run_id, self.step, self.agent)

    @property
    def budget(self) -> BudgetView:
        """The run's budget right now.

        For a shared key these are the key's totals; reading them is a quick store query.
        """
        snapshot: BudgetView = self._budget.snapshot()
        return snapshot


def bound_logger(run_id: str, step: int, agent: str) -> Any:
    """A structlog logger with the run's context bound."""
    return structlog.get_logger("agentroute.agent").bind(run_id=run_id, step=step, agent=agent)
