"""Merging several agents' answers into one. The LLM refiner builds on this protocol."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from agentroute.routing._protocol import Complete

__all__ = ["JoinAnswers", "RefineContext", "RefineResult", "RefineStrategy"]


@dataclass(frozen=True, slots=True)
class RefineContext:
    """What a refiner sees: the request and every branch's answer (or failure)."""

    run_id: str
    step: int
    task: str
    answers: Mapping[str, str]
    """Agent → answer, for branches that answered."""
    failures: Mapping[str, str] = field(default_factory=dict)
    """Agent → error message, for branches that failed."""
    complete: Complete | None = None
    """Model access (traced and budgeted) for LLM refiners."""


@dataclass(frozen=True, slots=True)
class RefineResult:
    """The merged answer, and how it was made."""

    answer: str
    reason: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class RefineStrategy(Protocol):
    """Merges several answers into one."""

    name: ClassVar[str]

    async def refine(self, ctx: RefineContext) -> RefineResult:
        """Return one answer for the step."""
        ...


class JoinAnswers:
    """The default merge: each answer under its agent's name, in the order the agents were chosen.

    Deterministic and free; failed branches are listed so the reader knows what is missing.
    """

    name: ClassVar[str] = "join"

    def params(self) -> dict[str, Any]:
        """Parameters for the trace."""
        return {}

    async def refine(self, ctx: RefineContext) -> RefineResult:
        """Join the answers."""
        parts = [f"[{agent}]\n{answer.strip()}" for agent, answer in ctx.answers.items()]
        parts += [f"[{agent}] could not answer ({err})" for agent, err in ctx.failures.items()]
        return RefineResult(
            answer="\n\n".join(parts),
            reason=f"joined {len(ctx.answers)} answer(s)",
            evidence={"agents": list(ctx.answers), "failed": list(ctx.failures)},
        )
