"""Specs are frozen pydantic models with `extra="forbid"`, and compute what they promise."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

import agentroute as ar
from agentroute.registry import GraphSpec, LimitsSpec, RetryPolicy, RouterSpec, SlotSpec

SPECS: list[tuple[type[Any], dict[str, Any], str]] = [
    (ar.AgentSpec, {"name": "a", "description": "A."}, "description"),
    (ar.SkillSpec, {"id": "s", "name": "s", "description": "S.", "body": "b"}, "body"),
    (ar.ModelSpec, {"name": "m", "model": "openai/gpt-4o-mini"}, "model"),
    (ar.TaskSpec, {"name": "t"}, "description"),
    (RetryPolicy, {}, "max_attempts"),
    (SlotSpec, {"strategy": "static"}, "strategy"),
    (LimitsSpec, {}, "max_steps"),
    (
        GraphSpec,
        {"name": "g", "router": RouterSpec(agent=SlotSpec(strategy="static"))},
        "name",
    ),
]


@pytest.mark.parametrize(("cls", "fields", "attr"), SPECS, ids=[c.__name__ for c, _, _ in SPECS])
def test_specs_are_frozen(cls: type[Any], fields: dict[str, Any], attr: str) -> None:
    """Assigning to a field of a built spec raises; the value is unchanged."""
    spec = cls(**fields)
    before = getattr(spec, attr)
    with pytest.raises(ValidationError, match="frozen"):
        setattr(spec, attr, "changed" if isinstance(before, str) else 5)
    assert getattr(spec, attr) == before


@pytest.mark.parametrize(("cls", "fields", "attr"), SPECS, ids=[c.__name__ for c, _, _ in SPECS])
def test_specs_forbid_unknown_fields(cls: type[Any], fields: dict[str, Any], attr: str) -> None:
    """A misspelt or unknown field is an error, not silently dropped."""
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        cls(**fields, descriptoin="typo")


def test_agent_spec_defaults() -> None:
    """An AgentSpec defaults to: any skill, no model/tier, one attempt, kind `function`."""
    spec = ar.AgentSpec(name="a", description="A.")
    assert spec.skills is None
    assert spec.model is None
    assert spec.tier is None
    assert spec.retry == RetryPolicy(max_attempts=1)
    assert spec.kind == "function"


@pytest.mark.parametrize("name", ["", "-x", "a b", "a/b", "x" * 129, "naïve"])
def test_names_follow_the_pattern(name: str) -> None:
    """Names must match NAME_PATTERN (letters, digits, _ . -; ≤128; no leading symbol)."""
    with pytest.raises(ValidationError):
        ar.TaskSpec(name=name)


def test_model_spec_cost_and_priced() -> None:
    """`cost_usd` prices tokens per million; an unpriced spec refuses to compute cost."""
    spec = ar.ModelSpec(name="m", model="x/y", input_price_per_mtok=1.0, output_price_per_mtok=4.0)
    assert spec.priced
    assert spec.cost_usd(1_000_000, 0) == pytest.approx(1.0)
    assert spec.cost_usd(1000, 500) == pytest.approx((1000 * 1.0 + 500 * 4.0) / 1e6)
    unpriced = ar.ModelSpec(name="m", model="x/y", input_price_per_mtok=1.0)
    assert not unpriced.priced
    with pytest.raises(ValueError, match="has no prices"):
        unpriced.cost_usd(1, 1)


def test_model_tier_must_be_a_slug() -> None:
    """A tier such as `Cheap Tier` is refused (tiers are lowercase slugs)."""
    with pytest.raises(ValidationError):
        ar.ModelSpec(name="m", model="x/y", tier="Cheap Tier")


def test_skill_content_hash_ignores_source_but_not_body() -> None:
    """A skill's content hash excludes `source` and covers the body."""
    base = {"id": "s", "name": "s", "description": "S.", "body": "Body."}
    a = ar.SkillSpec(**base, source="/a/s/SKILL.md")
    b = ar.SkillSpec(**base, source="/b/s/SKILL.md")
    c = ar.SkillSpec(**{**base, "body": "Body!"})
    assert a.content_hash == b.content_hash
    assert a.content_hash != c.content_hash


def test_retry_policy_bounds() -> None:
    """RetryPolicy refuses zero attempts and a multiplier below 1."""
    with pytest.raises(ValidationError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValidationError):
        RetryPolicy(multiplier=0.5)


def test_limits_bounds() -> None:
    """LimitsSpec refuses max_steps < 1 and loop_limit < 2."""
    with pytest.raises(ValidationError):
        LimitsSpec(max_steps=0)
    with pytest.raises(ValidationError):
        LimitsSpec(loop_limit=1)
