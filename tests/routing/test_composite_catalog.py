"""Composites (`FirstMatch`, `Fallback`), the strategy catalog and `describe_strategy`."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

import agentroute as ar
from agentroute.routing import (
    Fallback,
    FirstMatch,
    RouteDecision,
    RoutingContext,
    Rules,
    Static,
    build_strategy,
    describe_strategy,
    register_strategy,
    strategy_names,
)

from .conftest import MakeCtx


class Boom:
    """A strategy that always raises."""

    name: ClassVar[str] = "boom"

    def __init__(self) -> None:
        self.calls = 0

    async def route(self, ctx: RoutingContext) -> RouteDecision:
        self.calls += 1
        msg = "strategy exploded"
        raise ValueError(msg)


class Counting:
    """Delegates to an inner strategy and counts calls."""

    name: ClassVar[str] = "counting"

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    async def route(self, ctx: RoutingContext) -> RouteDecision:
        self.calls += 1
        return await self.inner.route(ctx)


# -- FirstMatch ----------------------------------------------------------------------------------


async def test_first_match_takes_the_first_non_abstaining(make_ctx: MakeCtx) -> None:
    """FirstMatch skips abstentions, stops at the first decision, and records what it tried."""
    abstainer = Rules([{"when": {"keywords": ["zzz"]}, "choose": ["security"]}])
    later = Counting(Static("general"))
    strategy = FirstMatch([abstainer, Static("billing"), later])
    decision = await strategy.route(make_ctx("refund"))
    assert decision.agents == ("billing",)
    assert decision.strategy == "static"
    assert [t["strategy"] for t in decision.evidence["tried"]] == ["rules", "static"]
    assert [t["outcome"] for t in decision.evidence["tried"]] == ["abstain", "route"]
    assert later.calls == 0


async def test_first_match_propagates_exceptions(make_ctx: MakeCtx) -> None:
    """FirstMatch lets a raising strategy's exception through and asks no one after it."""
    after = Counting(Static("general"))
    with pytest.raises(ValueError, match="strategy exploded"):
        await FirstMatch([Boom(), after]).route(make_ctx())
    assert after.calls == 0


async def test_fallback_skips_raising_and_abstaining(make_ctx: MakeCtx) -> None:
    """Fallback records the error and the abstention in `tried`, then uses the next strategy."""
    boom = Boom()
    strategy = Fallback([boom, Static(), Static("general")])
    decision = await strategy.route(make_ctx())
    assert decision.agents == ("general",)
    assert boom.calls == 1
    tried = decision.evidence["tried"]
    assert tried[0] == {
        "strategy": "boom",
        "outcome": "error",
        "error": "ValueError: strategy exploded",
    }
    assert tried[1]["outcome"] == "abstain"
    assert tried[2]["outcome"] == "route"


async def test_fallback_abstains_when_all_fail(make_ctx: MakeCtx) -> None:
    """When every strategy raises or abstains, Fallback abstains and lists them all."""
    decision = await Fallback([Boom(), Static()]).route(make_ctx())
    assert decision.outcome == "abstain"
    assert [t["outcome"] for t in decision.evidence["tried"]] == ["error", "abstain"]
    assert "all 2 strategies" in decision.reason


async def test_composite_keeps_inner_evidence(make_ctx: MakeCtx) -> None:
    """The winning strategy's own evidence survives, next to `tried`."""
    rules = Rules([{"when": {"keywords": ["refund"]}, "choose": ["billing"]}])
    decision = await FirstMatch([rules]).route(make_ctx("refund"))
    assert decision.evidence["fired"] == ["rule-0"]
    assert "tried" in decision.evidence
    assert decision.candidates[0].name == "billing"


async def test_nested_composites(make_ctx: MakeCtx) -> None:
    """A Fallback inside a FirstMatch works like any strategy (composites are strategies)."""
    inner = Fallback([Boom(), Static("security")])
    decision = await FirstMatch([Static(), inner]).route(make_ctx())
    assert decision.agents == ("security",)
    assert isinstance(inner, ar.RoutingStrategy)


def test_composites_need_strategies() -> None:
    """An empty FirstMatch or Fallback is refused."""
    with pytest.raises(ar.ConfigurationError, match="at least one strategy"):
        FirstMatch([])
    with pytest.raises(ar.ConfigurationError, match="Fallback needs at least one strategy"):
        Fallback([])


# -- catalog -------------------------------------------------------------------------------------


def test_catalog_names() -> None:
    """The built-in names are registered."""
    assert {"static", "rules", "first-match", "fallback"} <= set(strategy_names())


@pytest.mark.parametrize(
    ("config", "cls"),
    [
        ({"strategy": "static", "params": {"choices": ["billing"]}}, Static),
        ({"strategy": "static", "params": {"choices": "billing"}}, Static),
        ({"strategy": "rules", "params": {"rules": [], "default": ["general"]}}, Rules),
        (
            {"strategy": "first-match", "params": {"strategies": [{"strategy": "static"}]}},
            FirstMatch,
        ),
        ({"strategy": "fallback", "params": {"strategies": [{"strategy": "static"}]}}, Fallback),
    ],
)
def test_build_every_catalog_name(config: dict[str, Any], cls: type[Any]) -> None:
    """`build_strategy` builds each built-in strategy from its YAML form."""
    assert type(build_strategy(config)) is cls


@pytest.mark.parametrize("name", strategy_names())
def test_every_catalog_name_builds_or_explains(name: str) -> None:
    """Every registered name, given no params, builds a strategy or raises ConfigurationError."""
    error: ar.ConfigurationError | None = None
    try:
        strategy = build_strategy({"strategy": name}, "slot")
    except ar.ConfigurationError as exc:
        error = exc
    if error is not None:
        assert str(error).startswith("slot: ")
    else:
        assert isinstance(strategy, ar.RoutingStrategy)
        assert describe_strategy(strategy)["strategy"] == name


async def test_build_nested_composites(make_ctx: MakeCtx) -> None:
    """Nested composites build recursively and route as configured."""
    strategy = build_strategy(
        {
            "strategy": "fallback",
            "params": {
                "strategies": [
                    {
                        "strategy": "first-match",
                        "params": {
                            "strategies": [
                                {
                                    "strategy": "rules",
                                    "params": {
                                        "rules": [
                                            {
                                                "when": {"keywords": ["hacked"]},
                                                "choose": ["security"],
                                            }
                                        ]
                                    },
                                },
                                {"strategy": "static"},
                            ]
                        },
                    },
                    {"strategy": "static", "params": {"choices": ["general"], "then": "finish"}},
                ]
            },
        }
    )
    assert isinstance(strategy, Fallback)
    assert isinstance(strategy.strategies[0], FirstMatch)
    assert (await strategy.route(make_ctx("I was hacked"))).agents == ("security",)
    assert (await strategy.route(make_ctx("hello"))).agents == ("general",)


def test_unknown_strategy_suggests_the_close_name() -> None:
    """A misspelt strategy name → ConfigurationError with did-you-mean and where."""
    with pytest.raises(
        ar.ConfigurationError,
        match=r"g\.yaml: router\.agent: unknown strategy 'rulez' — did you mean 'rules'\?",
    ):
        build_strategy({"strategy": "rulez"}, "g.yaml: router.agent")


def test_unknown_nested_strategy_names_its_position() -> None:
    """An unknown inner strategy is reported with its index in `strategies`."""
    with pytest.raises(
        ar.ConfigurationError, match=r"agent\.strategies\[1\]: unknown strategy 'statc'"
    ):
        build_strategy(
            {
                "strategy": "fallback",
                "params": {"strategies": [{"strategy": "static"}, {"strategy": "statc"}]},
            },
            "agent",
        )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, r"needs 'strategy: <name>'"),
        ({"strategy": 3}, r"needs 'strategy: <name>'"),
        ({"strategy": "rules", "params": {"rulez": []}}, "bad parameters for strategy 'rules'"),
        (
            {"strategy": "static", "params": {"choices": ["a"], "then": "loop"}},
            "use 'finish' or 'route'",
        ),
        ({"strategy": "first-match", "params": {"strategies": []}}, "at least one strategy"),
        ({"strategy": "rules", "params": ["not", "a", "mapping"]}, "params"),
        ({"strategy": "fallback", "params": {"strategies": ["static"]}}, r"strategies\[0\]"),
        ("static", "mapping"),
    ],
)
def test_bad_strategy_config_is_a_configuration_error(config: Any, message: str) -> None:
    """Malformed strategy configs → ConfigurationError (never a raw TypeError/AttributeError)."""
    with pytest.raises(ar.ConfigurationError, match=message):
        build_strategy(config, "agent")


def test_errors_inside_a_strategy_name_where() -> None:
    """A bad rule deep in a YAML strategy is reported with the slot's location."""
    with pytest.raises(ar.ConfigurationError, match=r"g\.yaml: router\.agent.*rules\[0\]\.when"):
        build_strategy(
            {"strategy": "rules", "params": {"rules": [{"when": {"bogus": 1}, "choose": ["a"]}]}},
            "g.yaml: router.agent",
        )


def test_register_strategy_refuses_to_replace_silently() -> None:
    """A taken name is refused unless replace=True; a registered factory is then buildable."""
    with pytest.raises(ar.ConfigurationError, match="already registered"):
        register_strategy("static", Static)
    register_strategy("test-always-billing", lambda: Static("billing"), replace=True)
    built = build_strategy({"strategy": "test-always-billing"})
    assert isinstance(built, Static)
    assert built.choices == ("billing",)


# -- describe_strategy ---------------------------------------------------------------------------

ROUND_TRIP_CONFIGS: list[dict[str, Any]] = [
    {"strategy": "static", "params": {"choices": ["billing", "shipping"], "then": "route"}},
    {
        "strategy": "rules",
        "params": {
            "rules": [
                {
                    "name": "both",
                    "when": {"all": [{"keywords": ["charged"]}, {"not": {"regex": "once"}}]},
                    "choose": ["billing", "shipping"],
                    "then": "finish",
                },
                {
                    "name": "vip",
                    "when": {"metadata": {"key": "tier", "one_of": ["plus"]}},
                    "choose": ["security"],
                    "then": "route",
                },
                {"name": "long", "when": {"min_chars": 200}, "choose": ["general"]},
            ],
            "default": ["general"],
        },
    },
    {"strategy": "rules", "params": {"rules": [{"when": {"keywords": ["x"]}, "choose": ["a"]}]}},
    {
        "strategy": "first-match",
        "params": {
            "strategies": [
                {"strategy": "static"},
                {"strategy": "static", "params": {"choices": ["general"]}},
            ]
        },
    },
    {
        "strategy": "fallback",
        "params": {
            "strategies": [
                {
                    "strategy": "first-match",
                    "params": {
                        "strategies": [
                            {"strategy": "rules", "params": {"rules": [], "default": ["billing"]}}
                        ]
                    },
                },
                {"strategy": "static", "params": {"choices": ["general"]}},
            ]
        },
    },
]


@pytest.mark.parametrize("config", ROUND_TRIP_CONFIGS, ids=lambda c: c["strategy"])
def test_describe_round_trips_through_build(config: dict[str, Any]) -> None:
    """Config → strategy → describe → build → describe gives the same name and params."""
    first = describe_strategy(build_strategy(config))
    again = describe_strategy(build_strategy(first))
    assert first["strategy"] == config["strategy"]
    assert first["version"] == "1"
    assert again == first


@pytest.mark.parametrize("config", ROUND_TRIP_CONFIGS, ids=lambda c: c["strategy"])
async def test_rebuilt_strategy_decides_the_same(make_ctx: MakeCtx, config: dict[str, Any]) -> None:
    """A strategy rebuilt from its description decides identically on several requests."""
    original = build_strategy(config)
    rebuilt = build_strategy(describe_strategy(original))
    for task in ["I was charged twice", "x" * 250, "hello", "charged once"]:
        for meta in [{}, {"tier": "plus"}]:
            ctx = make_ctx(task, metadata=meta)
            assert await rebuilt.route(ctx) == await original.route(ctx)


def test_describe_strategy_of_a_plain_object() -> None:
    """A strategy without name/version/params is described by its class name, version 1, {}."""

    class Custom:
        async def route(self, ctx: RoutingContext) -> RouteDecision:
            return RouteDecision.finish()

    assert describe_strategy(Custom()) == {"strategy": "Custom", "version": "1", "params": {}}


# -- RouteDecision -------------------------------------------------------------------------------


def test_route_decision_constructors_and_chosen() -> None:
    """The constructors set the right outcome; `chosen` reads the slot's choice."""
    assert RouteDecision.to("a", "b").chosen == ("a", "b")
    assert RouteDecision.with_skills("s1").chosen == ("s1",)
    assert RouteDecision.with_model("cheap").chosen == ("cheap",)
    assert RouteDecision.finish("done", score=1).outcome == "finish"
    assert RouteDecision.finish("done", score=1).evidence == {"score": 1}
    assert RouteDecision.abstain().outcome == "abstain"
    assert RouteDecision.out_of_scope("nope").outcome == "out_of_scope"
    assert RouteDecision.finish().chosen == ()


def test_route_decision_is_frozen() -> None:
    """A RouteDecision cannot be changed after construction, nor take unknown fields."""
    from pydantic import ValidationError

    decision = RouteDecision.to("a")
    with pytest.raises(ValidationError):
        decision.agents = ("b",)  # type: ignore[misc]
    with pytest.raises(ValidationError):
        RouteDecision(agnets=("a",))  # type: ignore[call-arg]


def test_protocols_are_runtime_checkable() -> None:
    """Built-ins satisfy RoutingStrategy; an object with `learn` is a LearningStrategy."""

    class Learner:
        name: ClassVar[str] = "learner"

        async def route(self, ctx: RoutingContext) -> RouteDecision:
            return RouteDecision.abstain()

        async def learn(self, outcome: ar.Outcome) -> None:
            return None

    for strategy in (
        Static("a"),
        Rules([], default=["a"]),
        FirstMatch([Static()]),
        Fallback([Static()]),
    ):
        assert isinstance(strategy, ar.RoutingStrategy)
        assert not isinstance(strategy, ar.LearningStrategy)
    assert isinstance(Learner(), ar.LearningStrategy)
