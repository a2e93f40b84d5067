"""The layered graph (compile-time checks) and intent mixtures (repairs are recorded)."""

from __future__ import annotations

import pytest

import agentroute as ar
from agentroute.errors import ConfigurationError
from agentroute.routing.colony import (
    START,
    EmbeddingIntent,
    LayeredGraph,
    LLMIntent,
    check_mixture,
)

from .conftest import WordEmbedder, build_registry, make_colony


def test_default_edges_go_to_the_next_stage() -> None:
    """Without restrictions every stage-s agent links to every stage-(s+1) agent."""
    g = LayeredGraph({"a": 0, "b": 0, "c": 1, "d": 1})
    assert g.successors(START) == ("a", "b")
    assert g.successors("a") == ("c", "d")
    assert g.successors("c") == ()
    assert len(g.edges) == 6


def test_edges_can_be_restricted() -> None:
    """Listing edges out of an agent replaces its default edges; others keep theirs."""
    g = LayeredGraph({"a": 0, "b": 0, "c": 1, "d": 1}, edges=["a->c"])
    assert g.successors("a") == ("c",)
    assert g.successors("b") == ("c", "d")


def test_a_cycle_is_refused() -> None:
    """An edge back to an earlier stage makes a cycle: a ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match="cycle"):
        LayeredGraph({"a": 0, "b": 1}, edges=["a->b", "b->a"])


def test_a_stage_gap_is_an_unreachable_stage() -> None:
    """Stages 0 and 2 without 1: stage 2 could never be reached."""
    with pytest.raises(ConfigurationError, match="unreachable"):
        LayeredGraph({"a": 0, "b": 2})


def test_an_agent_without_incoming_edges_is_unreachable() -> None:
    """Restricting edges so that no path reaches `d` names `d`."""
    with pytest.raises(ConfigurationError, match=r"\['d'\] cannot be reached"):
        LayeredGraph({"a": 0, "c": 1, "d": 1}, edges=["a->c"])


def test_an_unknown_agent_in_edges_gets_a_hint() -> None:
    """A typo in an edge is caught with a did-you-mean."""
    with pytest.raises(ConfigurationError, match="did you mean"):
        LayeredGraph({"plan": 0, "solve": 1}, edges=["plan->solv"])


def test_router_compile_validates_the_graph() -> None:
    """`Router.compile()` calls the colony's validate hook: a bad edge fails at compile time."""
    reg = build_registry()
    router = ar.Router(reg, agent=make_colony(edges=["plan_a->solve_a", "solve_a->plan_a"]))
    with pytest.raises(ConfigurationError, match="cycle"):
        router.compile()


def test_mixed_staged_and_unstaged_agents_are_refused() -> None:
    """Some agents with a stage and some without is ambiguous: refused with the fix."""
    reg = build_registry()

    @reg.agent
    def loose(ctx: ar.AgentContext, task: str) -> str:
        """No stage."""
        return task

    with pytest.raises(ConfigurationError, match="declare no stage"):
        make_colony().validate(reg, list(reg.agents))


def test_mixture_repairs_are_recorded() -> None:
    """A mixture not summing to one is rescaled; unknown tasks and negatives are dropped."""
    mix = check_mixture({"math": 0.2, "code": 0.2, "poetry": 0.5, "x": -1}, ["math", "code"])
    assert mix.weights == pytest.approx({"math": 0.5, "code": 0.5})
    assert any("unknown task 'poetry'" in r for r in mix.repairs)
    assert any("rescaled" in r for r in mix.repairs)
    empty = check_mixture({"math": float("nan")}, ["math", "code"])
    assert empty.weights == {"math": 0.5, "code": 0.5}


async def test_embedding_intent_prefers_the_matching_task() -> None:
    """Example similarity + softmax puts most weight on the task whose examples match."""
    reg = build_registry()
    intent = EmbeddingIntent(WordEmbedder(), temperature=0.05)
    mix = await intent.infer("please fix this bug in the python function", list(reg.tasks.values()))
    assert mix.weights["code"] > 0.9
    assert sum(mix.weights.values()) == pytest.approx(1.0)


async def test_llm_intent_parses_json_and_falls_back_on_garbage() -> None:
    """The LLM intent reads JSON weights; an unusable answer falls back and says why."""
    reg = build_registry()
    tasks = list(reg.tasks.values())
    intent = LLMIntent(fallback=EmbeddingIntent(WordEmbedder()))

    async def good(prompt: str, **_: object) -> str:
        return 'Sure: {"math": 0.7, "code": 0.3}'

    async def bad(prompt: str, **_: object) -> str:
        return "I think it is maths"

    assert (await intent.infer("x", tasks, good)).weights == {"math": 0.7, "code": 0.3}
    mix = await intent.infer("compute the sum", tasks, bad)
    assert "fallback" in mix.extra
    assert mix.weights["math"] > 0.5


def test_ability_must_name_known_agents_and_tasks() -> None:
    """A declared ability for an unknown task is a ConfigurationError with a hint."""
    reg = build_registry()
    with pytest.raises(ConfigurationError, match="unknown task 'maths'"):
        make_colony(ability={"plan_a": {"maths": 0.9}}).validate(reg, list(reg.agents))


def test_the_colony_is_yaml_constructible() -> None:
    """`ant-colony` resolves lazily from the catalog and takes plain YAML parameters."""
    from agentroute.routing import build_strategy
    from agentroute.routing.colony import AntColony

    colony = build_strategy(
        {
            "strategy": "ant-colony",
            "params": {"alpha": 2, "rho": 0.1, "intent": "llm", "edges": ["plan_a->solve_a"]},
        }
    )
    assert isinstance(colony, AntColony)
    assert colony.params()["intent"] == "llm"
    with pytest.raises(ConfigurationError, match="invalid rho"):
        build_strategy({"strategy": "ant-colony", "params": {"rho": 2}})


@pytest.mark.parametrize(
    ("stages", "edges", "named"),
    [
        ({"a0": 0, "a1": 0, "b0": 1, "b1": 1}, ["b1->a1", "a0->b0", "a1->b0"], "b1->a1"),
        ({"a0": 0, "a1": 0, "b0": 1}, ["a0->a1"], "a0->a1"),
        ({"a0": 0, "b0": 1, "c0": 2}, ["a0->c0", "a0->b0"], "a0->c0"),
        ({"a0": 0, "b0": 1}, ["__start__->b0"], "__start__->b0"),
    ],
    ids=["backward", "same-stage", "skips-a-stage", "start-to-stage-1"],
)
def test_an_edge_not_leading_to_the_next_stage_is_refused(
    stages: dict[str, int], edges: list[str], named: str
) -> None:
    """A backward, same-stage or stage-skipping edge is refused, naming the edge.

    A path visits one agent per stage, so every edge must lead to the next stage.
    """
    with pytest.raises(ConfigurationError, match=rf"edge {named} leads from .* next stage"):
        LayeredGraph(stages, edges=edges)


def test_a_negative_stage_is_refused_by_name() -> None:
    """Stages are numbered from 0: a negative one is named, not reported as unreachable."""
    with pytest.raises(ConfigurationError, match=r"\['a'\] have stage\(s\) \[-1\]"):
        LayeredGraph({"a": -1, "b": 0})


def test_huge_weights_are_rescaled_without_overflow() -> None:
    """Huge weights neither raise nor vanish.

    An int too large for a float counts as 0 (it used to raise OverflowError), and weights
    whose sum overflows are still rescaled to a mixture summing to one (it used to be all 0).
    """
    mix = check_mixture({"math": 10**400, "code": 0}, ["math", "code"])
    assert mix.weights == {"math": 0.5, "code": 0.5}
    assert any("'math' is not a usable number" in r for r in mix.repairs)
    big = check_mixture({"math": 1e308, "code": 1e308}, ["math", "code"])
    assert big.weights == pytest.approx({"math": 0.5, "code": 0.5})
    assert sum(big.weights.values()) == pytest.approx(1.0)
    assert any("rescaled to 1" in r for r in big.repairs)


async def test_llm_intent_falls_back_when_no_weight_is_usable() -> None:
    """A JSON answer without a usable weight falls back, as garbage does, and says why.

    A 400-digit integer, or only unknown tasks and zeros, leave no usable weight.
    """
    reg = build_registry()
    tasks = list(reg.tasks.values())
    intent = LLMIntent(fallback=EmbeddingIntent(WordEmbedder()))
    for answer in ['{"math": 1' + "0" * 400 + ', "code": 0}', '{"poetry": 1, "code": 0}']:

        async def reply(prompt: str, _answer: str = answer, **_: object) -> str:
            return _answer

        mix = await intent.infer("compute the sum", tasks, reply)
        assert "no usable weight" in mix.extra["fallback"]
        assert mix.weights["math"] > 0.5
