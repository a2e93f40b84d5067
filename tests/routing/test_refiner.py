"""Refiner: merge prompt, skip when one answered, polite refusal when all failed."""

from __future__ import annotations

from typing import Any

import pytest

from agentroute.errors import ConfigurationError, ModelResponseError
from agentroute.routing import RefineContext, build_refiner
from agentroute.routing._refiner import REFUSAL, Refiner


def ctx(answers: dict[str, str], failures: dict[str, str] | None = None, reply: str = "x") -> Any:
    """A refine context whose model answers `reply` and remembers the prompt."""
    seen: list[str] = []

    async def complete(prompt: str, **kw: Any) -> str:
        seen.append(prompt)
        return reply

    c = RefineContext(
        run_id="r",
        step=0,
        task="Refund and parcel?",
        answers=answers,
        failures=failures or {},
        complete=complete,
    )
    return c, seen


async def test_merges_with_every_answer_and_conflict_instructions() -> None:
    """The prompt holds the request, each answer under its agent, and the conflict rule."""
    c, seen = ctx({"billing": "Refunded.", "shipping": "Lost."}, {"security": "boom"}, "Both.")
    result = await Refiner().refine(c)
    assert result.answer == "Both."
    prompt = seen[0]
    assert "# The answer of billing\nRefunded." in prompt
    assert "# The answer of shipping\nLost." in prompt
    assert "# The answer of security\n(failed: boom)" in prompt
    assert "conflict" in prompt
    assert "Refund and parcel?" in prompt
    assert result.evidence["prompt"] == prompt
    assert result.evidence["raw_output"] == "Both."


async def test_single_answer_is_not_refined_unless_configured() -> None:
    """One answer: returned as is with no model call; `skip_single=False` refines it."""
    c, seen = ctx({"billing": "Refunded."}, {"shipping": "timeout"})
    result = await Refiner().refine(c)
    assert (result.answer, seen) == ("Refunded.", [])
    assert result.evidence["skipped"] is True
    result = await Refiner(skip_single=False).refine(c)
    assert result.answer == "x"
    assert len(seen) == 1


async def test_all_failed_gives_a_polite_refusal_without_a_call() -> None:
    """No answer at all: the refusal text, and no model call."""
    c, seen = ctx({}, {"billing": "boom", "shipping": "timeout"})
    result = await Refiner().refine(c)
    assert result.answer == REFUSAL
    assert seen == []
    assert result.evidence == {"refused": True, "failed": ["billing", "shipping"]}


async def test_empty_model_output_raises_for_the_runtime_fallback() -> None:
    """An empty merge raises `ModelResponseError` (the runtime then keeps the best answer)."""
    c, _ = ctx({"a": "1", "b": "2"}, reply="  ")
    with pytest.raises(ModelResponseError):
        await Refiner().refine(c)
    no_model = RefineContext(run_id="r", step=0, task="t", answers={"a": "1", "b": "2"})
    with pytest.raises(ConfigurationError):
        await Refiner().refine(no_model)


def test_yaml_constructible() -> None:
    """`refiner: {strategy: llm, params: {...}}` builds a Refiner."""
    refiner = build_refiner(
        {"strategy": "llm", "params": {"model": "strong", "skip_single": False}}
    )
    assert isinstance(refiner, Refiner)
    assert refiner.params()["skip_single"] is False
