"""`Router.compile()` checks what strategies name, and reaches strategies nested in composites."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

import agentroute as ar
from agentroute.routing import Fallback, FirstMatch, Rule, Rules, Static

from .conftest import MakeRouter


@pytest.mark.parametrize(
    ("slots", "message"),
    [
        ({"agent": Static("biling")}, "agent strategy 'static' chooses unknown agent 'biling'"),
        (
            {"agent": Rules([Rule("r", ar.Keywords("x"), ("biling",))], default=("billing",))},
            "agent strategy 'rules' chooses unknown agent 'biling'",
        ),
        (
            {"agent": Rules([Rule("r", ar.Keywords("x"), ("billing",))], default=("generl",))},
            "chooses unknown agent 'generl' — did you mean 'general'?",
        ),
        (
            {"agent": Fallback([FirstMatch([Static("shiping")]), Static("billing")])},
            "agent strategy 'static' chooses unknown agent 'shiping'",
        ),
        (
            {"agent": Static("billing"), "model": Static("chep")},
            "model strategy 'static' chooses unknown model 'chep' — did you mean 'cheap'?",
        ),
        (
            {"agent": Static("billing"), "skills": Static("refund-polcy")},
            "skills strategy 'static' chooses unknown skill 'refund-polcy'",
        ),
    ],
)
def test_a_misspelt_fixed_choice_fails_at_compile(
    make_router: MakeRouter, slots: dict[str, Any], message: str
) -> None:
    """A name `Static`/`Rules` would choose must exist in its slot, checked at `compile()`.

    Before, the router compiled and the first run that hit the rule failed.
    """
    agent = slots.pop("agent")
    router = make_router(agent, **slots)
    with pytest.raises(ar.ConfigurationError, match=message):
        router.compile()


def test_correct_fixed_choices_compile(make_router: MakeRouter) -> None:
    """Names that exist in their slots compile and route (the check does not over-reach)."""
    router = make_router(
        Fallback([Rules([Rule("r", ar.Keywords("refund"), ("billing",))]), Static("general")]),
        model=Static("cheap"),
        skills=Static("refund-policy"),
    )
    result = router.run_sync("I want a refund")
    assert result.agents == (("billing",),)


class _Nested:
    """A learning strategy that records the router's lifecycle calls."""

    name: ClassVar[str] = "nested"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def bind_store(self, store: Any) -> None:
        self.calls.append("bind_store")

    def validate(self, registry: ar.Registry, agents: Any) -> None:
        self.calls.append("validate")

    async def route(self, ctx: ar.RoutingContext) -> ar.RouteDecision:
        return ar.RouteDecision.to("billing", reason="nested")

    async def learn(self, outcome: ar.Outcome) -> None:
        self.calls.append(f"learn:{outcome.status}")

    def close(self) -> None:
        self.calls.append("close")


def test_a_strategy_inside_a_composite_gets_the_router_lifecycle(make_router: MakeRouter) -> None:
    """Bound, validated, taught and closed as in a slot of its own.

    A learning strategy behind `Fallback` used to be routed to but never bound to the store,
    never validated and never taught.
    """
    inner = _Nested()
    router = make_router(Fallback([Static(), inner]))
    router.run_sync("hello")
    router.close()
    assert inner.calls == ["bind_store", "validate", "learn:completed", "close"]


def test_one_strategy_used_twice_gets_each_lifecycle_call_once(make_router: MakeRouter) -> None:
    """Twice in a composite and again in another slot: bound, taught and closed once.

    A colony taught twice would deposit every run twice.
    """
    inner = _Nested()
    router = make_router(Fallback([Static(), inner, FirstMatch([inner])]), skills=inner)
    router.compile()
    router.close()
    assert inner.calls == ["bind_store", "validate", "close"]


def test_a_registered_agent_outside_the_router_s_agents_is_refused(
    make_router: MakeRouter,
) -> None:
    """`Static` naming an agent that `Router(agents=...)` leaves out fails at compile."""
    router = make_router(Static("general"), agents=["billing", "shipping"])
    with pytest.raises(
        ar.ConfigurationError, match=r"'general', which is not among Router\(agents"
    ):
        router.compile()
    router = make_router(Static("general"), out_of_scope="general")
    with pytest.raises(ar.ConfigurationError, match="which is the out-of-scope handler"):
        router.compile()


def test_an_out_of_scope_rule_may_leave_choose_as_none() -> None:
    """`Rule(..., None, out_of_scope=True)` still means "no names" (as before)."""
    rule = Rule("oos", ar.Keywords("weather"), None, out_of_scope=True)  # type: ignore[arg-type]
    assert rule.choose == ()
    with pytest.raises(ar.ConfigurationError, match="empty name"):
        Rule("r", ar.Keywords("x"), ("billing", " "))


@pytest.mark.parametrize(
    "make",
    [
        lambda: Static(["billing"]),
        lambda: Static(""),
        lambda: Rules([], default=[1]),
        lambda: Rule("r", ar.Keywords("x"), (3,)),  # type: ignore[arg-type]
    ],
    ids=["static-list", "static-empty", "rules-default", "rule-choose"],
)
def test_names_of_the_wrong_type_are_refused_when_built(make: Any) -> None:
    """A list where names go, or a non-string name, is a ConfigurationError at construction."""
    with pytest.raises(ar.ConfigurationError, match="name"):
        make()


def test_rule_choose_takes_one_name_or_a_list() -> None:
    """`choose="billing"` is one name, and a list becomes a tuple (as the YAML form does)."""
    assert Rule("r", ar.Keywords("x"), "billing").choose == ("billing",)  # type: ignore[arg-type]
    assert Rule("r", ar.Keywords("x"), ["a", "b"]).choose == ("a", "b")  # type: ignore[arg-type]


@pytest.mark.parametrize("budget", [0.05, 1, "0.05"])
def test_a_bare_number_as_budget_is_refused_with_the_fix(
    make_router: MakeRouter, budget: Any, tmp_path: Path
) -> None:
    """`budget=0.05` (a slip for `Budget(usd=0.05)`) is a ConfigurationError naming the fix.

    It used to fail deep in the ledger with an AttributeError, after the run had started.
    """
    router = make_router(Static("general"))
    with pytest.raises(ar.ConfigurationError, match=r"takes an agentroute Budget, e\.g\. Budget"):
        router.run_sync("hi", budget=budget)
    with pytest.raises(ar.ConfigurationError, match=r"Router\(budget=\.\.\.\)"):
        make_router(Static("general"), budget=budget, store=f"sqlite:///{tmp_path / 'b.db'}")
    assert not (tmp_path / "b.db").exists()  # refused before the store was opened
    assert router.store.list_runs() == []
