"""`Rules` (signal-driven, first match wins) and `Static` (always the same), per slot."""

from __future__ import annotations

from typing import Any

import pytest

import agentroute as ar
from agentroute.routing import Rule, Rules, Static

from .conftest import MakeCtx


def _desk_rules(**kwargs: Any) -> Rules:
    return Rules(
        [
            Rule("security", ar.Keywords("hacked", "password"), ("security",)),
            Rule("both", ar.Keywords("charged") & ar.Keywords("arrived"), ("billing", "shipping")),
            Rule("refund", ar.Keywords("refund", "charged"), ("billing",)),
        ],
        **kwargs,
    )


# -- Rules ---------------------------------------------------------------------------------------


async def test_first_matching_rule_wins(make_ctx: MakeCtx) -> None:
    """With two rules firing, the earlier one decides; both are listed as fired."""
    decision = await _desk_rules().route(make_ctx("I was charged but it never arrived"))
    assert decision.outcome == "route"
    assert decision.agents == ("billing", "shipping")
    assert decision.evidence["fired"] == ["both", "refund"]
    assert decision.reason == "rule 'both' fired"
    assert decision.then == "finish"


async def test_rule_order_matters(make_ctx: MakeCtx) -> None:
    """Swapping two firing rules swaps the decision (order, not specificity, decides)."""
    rules = Rules(
        [
            Rule("refund", ar.Keywords("charged"), ("billing",)),
            Rule("both", ar.Keywords("charged") & ar.Keywords("arrived"), ("billing", "shipping")),
        ]
    )
    decision = await rules.route(make_ctx("I was charged but it never arrived"))
    assert decision.agents == ("billing",)
    assert decision.evidence["fired"] == ["refund", "both"]


async def test_candidates_cover_every_rule_with_scores(make_ctx: MakeCtx) -> None:
    """Every rule's choices are candidates: score 1.0 when its rule fired, else 0.0."""
    decision = await _desk_rules().route(make_ctx("please refund me"))
    got = [(c.name, c.score, c.detail["rule"]) for c in decision.candidates]
    assert got == [
        ("security", 0.0, "security"),
        ("billing", 0.0, "both"),
        ("shipping", 0.0, "both"),
        ("billing", 1.0, "refund"),
    ]
    fired = next(c for c in decision.candidates if c.score == 1.0)
    assert fired.detail == {"rule": "refund", "keywords": ["refund"]}


async def test_default_applies_when_no_rule_fires(make_ctx: MakeCtx) -> None:
    """No rule fires → the default, with every candidate at 0 and nothing fired."""
    decision = await _desk_rules(default=["general"]).route(make_ctx("what are your hours?"))
    assert decision.outcome == "route"
    assert decision.agents == ("general",)
    assert decision.reason == "no rule fired; default"
    assert decision.evidence["fired"] == []
    assert {c.score for c in decision.candidates} == {0.0}


async def test_abstains_without_default(make_ctx: MakeCtx) -> None:
    """No rule fires and no default → abstain (so a Fallback can try the next strategy)."""
    decision = await _desk_rules().route(make_ctx("what are your hours?"))
    assert decision.outcome == "abstain"
    assert decision.agents == ()
    assert decision.evidence == {"fired": []}


async def test_then_route_is_carried(make_ctx: MakeCtx) -> None:
    """A rule's `then='route'` reaches the decision; the default always finishes."""
    rules = Rules(
        [Rule("triage", ar.Keywords("help"), ("general",), then="route")], default=["general"]
    )
    assert (await rules.route(make_ctx("help me"))).then == "route"
    assert (await rules.route(make_ctx("hi"))).then == "finish"


async def test_rules_in_the_skills_and_model_slots(make_ctx: MakeCtx) -> None:
    """In the skills slot a rule picks skills; in the model slot it picks one model."""
    rules = Rules(
        [Rule("refund", ar.Keywords("refund"), ("refund-policy", "invoice-lookup"))],
        default=["tone-and-escalation"],
    )
    skills = await rules.route(make_ctx("refund please", slot="skills", agent="billing"))
    assert skills.skills == ("refund-policy", "invoice-lookup")
    assert skills.agents == ()
    assert skills.chosen == ("refund-policy", "invoice-lookup")
    model_rules = Rules([Rule("hard", ar.Length(min_chars=20), ("strong",))], default=["cheap"])
    hard = await model_rules.route(make_ctx("x" * 30, slot="model", agent="billing"))
    easy = await model_rules.route(make_ctx("short", slot="model", agent="billing"))
    assert (hard.model, easy.model) == ("strong", "cheap")
    assert hard.chosen == ("strong",)


async def test_metadata_and_predicate_rules(make_ctx: MakeCtx) -> None:
    """Rules route on run metadata and on Python predicates."""
    rules = Rules(
        [
            Rule("vip", ar.Metadata("tier", equals="plus"), ("security",)),
            Rule("late", ar.Predicate(lambda ctx: ctx.step > 0), ("general",)),
        ],
        default=["billing"],
    )
    assert (await rules.route(make_ctx(metadata={"tier": "plus"}))).agents == ("security",)
    assert (await rules.route(make_ctx(step=2))).agents == ("general",)
    assert (await rules.route(make_ctx())).agents == ("billing",)


async def test_yaml_form_rules(make_ctx: MakeCtx) -> None:
    """Rules given as mappings (the YAML form) behave like Rule objects."""
    rules = Rules(
        [
            {
                "name": "both",
                "when": {"all": [{"keywords": ["charged"]}, {"keywords": ["arrived"]}]},
                "choose": ["billing", "shipping"],
            },
            {"when": {"keywords": "refund"}, "choose": "billing", "then": "route"},
        ],
        default=["general"],
    )
    assert [r.name for r in rules.rules] == ["both", "rule-1"]
    both = await rules.route(make_ctx("charged, never arrived"))
    assert both.agents == ("billing", "shipping")
    refund = await rules.route(make_ctx("refund"))
    assert (refund.agents, refund.then) == (("billing",), "route")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("refund", r"rules\[0\]: expected a Rule or a mapping"),
        ({"when": {"keywords": ["x"]}}, r"rules\[0\]: needs 'when'"),
        ({"choose": ["x"]}, r"rules\[0\]: needs 'when'"),
        (
            {"when": {"keywords": ["x"]}, "choose": ["a"], "chose": ["b"]},
            r"unknown field\(s\) \['chose'\]",
        ),
        ({"when": {"keywords": ["x"]}, "choose": ["a"], "then": "loop"}, r"rules\[0\]\.then"),
        ({"when": {"keyword": ["x"]}, "choose": ["a"]}, r"rules\[0\]\.when: unknown signal"),
        ({"when": {"keywords": ["x"]}, "choose": [1]}, r"rules\[0\]\.choose: expected a name"),
        ({"when": {"keywords": ["x"]}, "choose": {"a": 1}}, r"rules\[0\]\.choose: expected a name"),
    ],
)
def test_bad_rule_config(rule: Any, message: str) -> None:
    """Malformed YAML-form rules → ConfigurationError naming the rule and the problem."""
    with pytest.raises(ar.ConfigurationError, match=message):
        Rules([rule], default=["general"])


async def test_string_default_is_one_name(make_ctx: MakeCtx) -> None:
    """`default="general"` (YAML `default: general`) is one agent, not seven characters."""
    rules = Rules([], default="general")
    assert rules.default == ("general",)
    assert (await rules.route(make_ctx())).agents == ("general",)
    built = ar.routing.build_strategy(
        {"strategy": "rules", "params": {"rules": [], "default": "general"}}
    )
    assert (await built.route(make_ctx())).agents == ("general",)


async def test_model_slot_rule_must_choose_one_model(make_ctx: MakeCtx) -> None:
    """In the model slot, a choice of several models is a ConfigurationError (as for Static)."""
    two = Rules([], default=["cheap", "strong"])
    with pytest.raises(ar.ConfigurationError, match="exactly one model"):
        await two.route(make_ctx(slot="model", agent="billing"))


def test_rules_need_a_rule_or_a_default() -> None:
    """Rules([]) without a default is refused; with a default it is a valid (constant) strategy."""
    with pytest.raises(ar.ConfigurationError, match="at least one rule or a default"):
        Rules([])
    assert Rules([], default=["general"]).default == ("general",)


def test_rules_params_are_json_ready() -> None:
    """params() describes every rule (signal in config form) and the default."""
    params = _desk_rules(default=["general"]).params()
    assert params["default"] == ["general"]
    assert params["rules"][0] == {
        "name": "security",
        "when": {"keywords": ["hacked", "password"], "mode": "any", "on": "task"},
        "choose": ["security"],
        "then": "finish",
    }
    assert params["rules"][1]["when"]["all"][1]["keywords"] == ["arrived"]


# -- Static --------------------------------------------------------------------------------------


async def test_static_agent_slot(make_ctx: MakeCtx) -> None:
    """Static in the agent slot routes to its agents (several fan out), honouring `then`."""
    one = await Static("billing").route(make_ctx())
    many = await Static("billing", "shipping", then="route").route(make_ctx())
    assert (one.agents, one.then, one.outcome) == (("billing",), "finish", "route")
    assert (many.agents, many.then) == (("billing", "shipping"), "route")
    assert one.reason == "static choice"


async def test_static_skills_slot(make_ctx: MakeCtx) -> None:
    """Static in the skills slot gives its skills (and none is a valid choice)."""
    two = await Static("refund-policy", "invoice-lookup").route(
        make_ctx(slot="skills", agent="billing")
    )
    none = await Static().route(make_ctx(slot="skills", agent="billing"))
    assert two.skills == ("refund-policy", "invoice-lookup")
    assert two.agents == ()
    assert (none.outcome, none.skills) == ("route", ())


async def test_static_model_slot(make_ctx: MakeCtx) -> None:
    """Static in the model slot gives exactly one model; more than one is an error."""
    decision = await Static("strong").route(make_ctx(slot="model", agent="billing"))
    assert (decision.model, decision.agents, decision.skills) == ("strong", (), ())
    with pytest.raises(ar.ConfigurationError, match="exactly one model"):
        await Static("cheap", "strong").route(make_ctx(slot="model", agent="billing"))


async def test_static_without_agents_abstains(make_ctx: MakeCtx) -> None:
    """Static() in the agent slot has no opinion."""
    assert (await Static().route(make_ctx())).outcome == "abstain"


def test_static_bad_then() -> None:
    """Static(then=...) accepts only 'finish' or 'route'."""
    with pytest.raises(ar.ConfigurationError, match="use 'finish' or 'route'"):
        Static("billing", then="loop")
    assert Static("a", "b", then="route").params() == {"choices": ["a", "b"], "then": "route"}


# -- out-of-scope rules --------------------------------------------------------------------------


async def test_out_of_scope_rule(make_ctx: MakeCtx) -> None:
    """A rule with out_of_scope=True that fires decides `out_of_scope`, listed as a candidate."""
    rules = Rules(
        [
            Rule("weather", ar.Keywords("weather", "forecast"), out_of_scope=True),
            Rule("refund", ar.Keywords("refund"), ("billing",)),
        ],
        default=["general"],
    )
    decision = await rules.route(make_ctx("what's the weather, and a refund?"))
    assert decision.outcome == "out_of_scope"
    assert decision.agents == ()
    assert decision.evidence["fired"] == ["weather", "refund"]
    assert [(c.name, c.score) for c in decision.candidates] == [
        ("<out_of_scope>", 1.0),
        ("billing", 1.0),
    ]
    assert (await rules.route(make_ctx("refund"))).agents == ("billing",)


async def test_out_of_scope_rule_yaml_form_round_trips(make_ctx: MakeCtx) -> None:
    """`out_of_scope: true` in YAML builds the same rule, and params() round-trips it."""
    rules = Rules([{"name": "weather", "when": {"keywords": ["weather"]}, "out_of_scope": True}])
    assert rules.rules[0].out_of_scope
    assert rules.params()["rules"][0] == {
        "name": "weather",
        "when": {"keywords": ["weather"], "mode": "any", "on": "task"},
        "out_of_scope": True,
        "then": "finish",
    }
    rebuilt = Rules(**rules.params())
    assert rebuilt.params() == rules.params()
    assert (await rebuilt.route(make_ctx("weather?"))).outcome == "out_of_scope"


@pytest.mark.parametrize(
    "kwargs",
    [{"choose": ("billing",), "out_of_scope": True}, {}],
    ids=["both", "neither"],
)
def test_rule_needs_choose_or_out_of_scope(kwargs: dict[str, Any]) -> None:
    """A rule must have either names to choose or out_of_scope=True, not both, not neither."""
    with pytest.raises(ar.ConfigurationError, match="either `choose`"):
        Rule("r", ar.Keywords("x"), **kwargs)
