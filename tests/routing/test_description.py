"""DescriptionRouter: zero-shot routing by description, late agents, thresholds, calibration."""

from __future__ import annotations

import numpy as np
import pytest

import agentroute as ar
from agentroute.errors import ConfigurationError, ModelResponseError
from agentroute.routing import build_strategy
from agentroute.routing._agent_scoring import choose_threshold
from agentroute.routing._description import DescriptionRouter

from ._words import WordsEmbedder
from ._words import agent_ctx as ctx


async def test_routes_to_the_closest_description(registry: ar.Registry) -> None:
    """The agent whose description shares the request's words wins, with scored candidates."""
    router = DescriptionRouter(embedder=WordsEmbedder())
    decision = await router.route(ctx(registry, "two-factor authentication phishing"))
    assert decision.agents == ("security",)
    assert len(decision.candidates) == 4
    assert decision.candidates[0].name == "security"
    assert 0 < decision.evidence["confidence"] <= 1


async def test_agent_added_later_is_routable(registry: ar.Registry) -> None:
    """An agent registered after the first decision is embedded and chosen on the next one."""
    router = DescriptionRouter(embedder=WordsEmbedder())
    await router.route(ctx(registry, "hello"))

    @registry.agent
    def weather(ctx: ar.AgentContext, task: str) -> str:
        """Weather forecasts: rain, snow, temperature tomorrow."""
        return "sunny"

    decision = await router.route(ctx(registry, "will it rain tomorrow, weather forecast"))
    assert decision.agents == ("weather",)


def test_registry_refuses_an_empty_description() -> None:
    """An agent with an empty description never reaches the router: registration fails."""
    reg = ar.Registry()
    with pytest.raises(ConfigurationError):
        reg.agent(name="blank", description="   ")(lambda ctx, task: "x")


async def test_below_threshold_abstains_or_is_out_of_scope(registry: ar.Registry) -> None:
    """Low confidence abstains (default) or says out-of-scope, with the candidates kept."""
    task = ctx(registry, "zzz qqq")
    decision = await DescriptionRouter(min_similarity=0.99, embedder=WordsEmbedder()).route(task)
    assert decision.outcome == "abstain"
    assert decision.candidates
    decision = await DescriptionRouter(
        min_similarity=0.99, below_threshold="out_of_scope", embedder=WordsEmbedder()
    ).route(task)
    assert decision.outcome == "out_of_scope"


async def test_calibrate_fits_temperature_and_threshold(registry: ar.Registry) -> None:
    """`calibrate` picks a threshold that declines the out-of-scope validation requests."""
    router = DescriptionRouter(embedder=WordsEmbedder())
    texts = [
        "charges refunds invoices",
        "late lost packages tracking",
        "hacked account phishing",
        "pizza recipe",
        "football scores tonight",
    ]
    golds = [["billing"], ["shipping"], ["security"], [], []]
    choice = router.calibrate(registry, texts, golds, target_oos_recall=0.5)
    assert router.threshold == choice.threshold
    assert choice.oos_recall is not None
    assert choice.oos_recall >= 0.5


def test_choose_threshold_with_and_without_oos() -> None:
    """With out-of-scope data the recall lower bound reaches the target; without, a quantile."""
    rng = np.random.default_rng(0)
    conf_in = rng.uniform(0.6, 1.0, 500)
    conf_oos = rng.uniform(0.0, 0.7, 200)
    choice = choose_threshold(conf_in, np.ones(500, bool), conf_oos)
    assert choice.oos_recall is not None
    assert choice.oos_recall > 0.8
    assert choice.in_scope_accuracy > 0.8
    plain = choose_threshold(conf_in, np.ones(500, bool), max_in_scope_loss=0.1)
    assert plain.oos_recall is None
    assert plain.in_scope_kept == pytest.approx(0.9, abs=0.01)


def test_yaml_constructible() -> None:
    """The catalog name `description` builds the router from YAML params."""
    strategy = build_strategy({"strategy": "description", "params": {"threshold": 0.3}})
    assert isinstance(strategy, DescriptionRouter)
    assert strategy.threshold == 0.3


async def test_describe_agent_drafts_a_description() -> None:
    """`describe_agent` asks the model with the examples and returns the tagged text."""
    from agentroute.routing._onboarding import describe_agent
    from agentroute.testing import ScriptedModelClient

    client = ScriptedModelClient(
        [(r"Example requests", "<Description>Tracks parcels and deliveries.</Description>")]
    )
    spec = ar.ModelSpec(
        name="cheap", model="openai/gpt-4o-mini", input_price_per_mtok=1, output_price_per_mtok=1
    )
    text = await describe_agent(["where is my parcel", "track order 12"], model=spec, client=client)
    assert text == "Tracks parcels and deliveries."
    assert "- where is my parcel" in client.requests[0].messages[-1].content

    async def silent(prompt: str) -> str:
        return ""

    with pytest.raises(ModelResponseError):
        await describe_agent(["x"], model=silent)
    with pytest.raises(ConfigurationError):
        await describe_agent(["  "], model=silent)


def test_a_shortlist_below_one_is_refused_at_construction() -> None:
    """`shortlist=0` would leave no candidate to pick; it fails when the router is built."""
    with pytest.raises(ConfigurationError, match="shortlist must be at least 1"):
        DescriptionRouter(shortlist=0)
