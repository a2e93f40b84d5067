"""Integrations.

LangGraph checkpointers, secrets kept out of traces and logs, graph YAML, feedback and learning
strategies.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
from structlog.testing import capture_logs

import agentroute as ar
from agentroute.routing import RouteDecision, RoutingContext
from agentroute.testing import ScriptedModelClient

from .conftest import MakeRouter, assert_chained

FAKE_KEY = "sk-test-SECRET123abcdefghijklmnopqrstuvwxyz"
KEY_ENV = "FAKE_KEY_ENV"

# -- checkpointer --------------------------------------------------------------------------------


async def test_langgraph_sqlite_checkpointer(make_router: MakeRouter, tmp_path: Path) -> None:
    """With an AsyncSqliteSaver, a run completes and a checkpoint exists for thread_id=run_id."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "cp.db")) as cp:
        router = make_router(ar.Static("billing", "shipping"), checkpointer=cp)
        result = await router.run("charged twice and my parcel is lost")
        assert result.status == "completed"
        assert "[billing]" in (result.answer or "")
        saved = await cp.aget_tuple({"configurable": {"thread_id": result.run_id}})
        assert saved is not None
        assert saved.checkpoint["channel_values"]["answer"] == result.answer
        assert saved.checkpoint["channel_values"]["status"] == "completed"
        other = await cp.aget_tuple({"configurable": {"thread_id": "no-such-run"}})
        assert other is None


async def test_in_memory_checkpointer(make_router: MakeRouter) -> None:
    """LangGraph's InMemorySaver works unchanged, one thread per run."""
    from langgraph.checkpoint.memory import InMemorySaver

    saver = InMemorySaver()
    router = make_router(ar.Static("general"), checkpointer=saver)
    first = await router.run("hi")
    second = await router.run("hello")
    for result in (first, second):
        saved = saver.get_tuple({"configurable": {"thread_id": result.run_id}})
        assert saved is not None
        assert saved.checkpoint["channel_values"]["task"] in ("hi", "hello")


def test_graph_escape_hatch(make_router: MakeRouter) -> None:
    """`router.graph` is the compiled LangGraph graph with the documented nodes."""
    graph = make_router(ar.Static("general")).graph
    assert {"route", "act", "refine", "check"} <= set(graph.get_graph().nodes)


# -- secrets -------------------------------------------------------------------------------------


def _keyed_registry(**params: Any) -> ar.Registry:
    reg = ar.Registry()
    reg.model(
        "keyed",
        "openai/gpt-4o-mini",
        api_key_env=KEY_ENV,
        retry=ar.RetryPolicy(max_attempts=1),
        input_price_per_mtok=0.15,
        output_price_per_mtok=0.6,
        params=params,
    )

    @reg.agent
    async def asker(ctx: ar.AgentContext, task: str) -> str:
        """Asks the keyed model."""
        return await ctx.complete(task)

    return reg


def _everything_recorded(router: ar.Router) -> str:
    return "\n".join(
        json.dumps(rec.model_dump(mode="json"))
        for run_id in router.store.run_ids()
        for rec in router.trace(run_id).records
    )


async def test_api_key_never_reaches_store_or_logs_scripted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a key in `api_key_env`, no record or log line of a run contains it (scripted)."""
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    router = ar.Router(
        _keyed_registry(),
        agent=ar.Static("asker"),
        store="memory://",
        client=ScriptedModelClient(default="fine"),
    )
    with capture_logs() as logs:
        result = await router.run("hello")
    assert result.status == "completed"
    dumped = _everything_recorded(router)
    assert FAKE_KEY not in dumped
    assert FAKE_KEY not in json.dumps(logs, default=str)


async def test_api_key_never_reaches_store_or_logs_litellm(
    monkeypatch: pytest.MonkeyPatch, offline_litellm: ModuleType
) -> None:
    """Through the real LiteLLMClient (LiteLLM mocked): the key is sent, but never stored or logged.

    The second run's provider error echoes the key, as some providers do; the stored error and
    every log line are scrubbed.
    """
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    sent: list[dict[str, Any]] = []
    litellm = offline_litellm
    real = litellm.acompletion

    async def fake(**kwargs: Any) -> Any:
        sent.append(kwargs)
        if "fail" in kwargs["messages"][-1]["content"]:
            raise litellm.AuthenticationError(
                f"Incorrect API key provided: {FAKE_KEY}", "openai", "gpt-4o-mini"
            )
        return await real(**{**kwargs, "mock_response": "mocked answer"})

    monkeypatch.setattr(litellm, "acompletion", fake)
    router = ar.Router(
        _keyed_registry(), agent=ar.Static("asker"), store="memory://", client=ar.LiteLLMClient()
    )
    with capture_logs() as logs:
        ok = await router.run("hello")
        with pytest.raises(ar.AgentError) as info:
            await router.run("please fail")
    assert ok.answer == "mocked answer"
    assert [k["api_key"] for k in sent] == [FAKE_KEY, FAKE_KEY]
    failed = router.trace(info.value.run_id or "")
    assert failed.model_calls[0].error_type == "ModelAuthError"
    dumped = _everything_recorded(router)
    assert FAKE_KEY not in dumped
    assert FAKE_KEY[8:24] not in dumped
    assert FAKE_KEY not in json.dumps(logs, default=str)
    assert FAKE_KEY not in str(info.value)


def test_real_model_calls_are_blocked(registry: ar.Registry) -> None:
    """The suite's guard: a router without a client cannot reach a provider."""
    router = ar.Router(registry, agent=ar.Static("general"), store="memory://")
    with pytest.raises(ar.AgentError, match="real model call"):
        router.run_sync("hi")


# -- graph YAML ----------------------------------------------------------------------------------

GRAPH = """\
name: desk
description: Rules with a static model slot.
agents: [billing, shipping, security, general]
router:
  agent:
    strategy: rules
    params:
      rules:
        - name: hacked
          when: {keywords: [hacked, password]}
          choose: [security]
        - name: both
          when: {all: [{keywords: [charged]}, {keywords: [arrived]}]}
          choose: [billing, shipping]
      default: [general]
  model:
    strategy: static
    params: {choices: [strong]}
  refiner:
    strategy: join
limits: {max_steps: 2, loop_limit: 2}
budget_usd: 0.5
"""


async def test_router_from_graph_yaml(
    registry: ar.Registry, client: ScriptedModelClient, tmp_path: Path
) -> None:
    """`Router.from_graph` builds rules + a static model slot from YAML and routes accordingly."""
    path = tmp_path / "desk.yaml"
    path.write_text(GRAPH, encoding="utf-8")
    router = ar.Router.from_graph(registry, path, store="memory://", client=client)
    assert router.name == "desk"
    assert router.limits.max_steps == 2
    assert router.budget == ar.Budget(usd=0.5)
    both = await router.run("I was charged but it never arrived")
    assert both.agents == (("billing", "shipping"),)
    hacked = await router.run("my account was hacked")
    assert hacked.agents == (("security",),)
    other = await router.run("opening hours?")
    assert other.agents == (("general",),)
    assert {r.model.name for r in client.requests} == {"strong"}
    trace = router.trace(both.run_id)
    assert trace.run.budget_usd == 0.5
    assert trace.run.router["agent"]["strategy"] == "rules"
    assert trace.run.router["model"]["params"] == {"choices": ["strong"], "then": "finish"}
    assert {d.chosen[0] for d in trace.decisions if d.slot == "model"} == {"strong"}
    assert [d.evidence["fired"] for d in trace.decisions if d.slot == "agent"] == [["both"]]


async def test_from_graph_overrides_win(
    registry: ar.Registry, client: ScriptedModelClient, tmp_path: Path
) -> None:
    """Keyword overrides passed to from_graph beat the file."""
    path = tmp_path / "desk.yaml"
    path.write_text(GRAPH, encoding="utf-8")
    router = ar.Router.from_graph(
        registry, path, store="memory://", client=client, agent=ar.Static("billing")
    )
    assert (await router.run("hacked")).agents == (("billing",),)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "strategy: rules",
            "strategy: rulez",
            "router.agent: unknown strategy 'rulez' — did you mean 'rules'",
        ),
        ("strategy: join", "strategy: joni", "unknown refiner 'joni' — did you mean 'join'"),
        ("choose: [security]", "choose: [security]\n          chose: [x]", "chose"),
    ],
)
def test_from_graph_errors_name_the_file(
    registry: ar.Registry, tmp_path: Path, old: str, new: str, message: str
) -> None:
    """Bad strategies in a graph file → ConfigurationError naming the file and the slot."""
    path = tmp_path / "desk.yaml"
    path.write_text(GRAPH.replace(old, new), encoding="utf-8")
    with pytest.raises(ar.ConfigurationError, match=message) as info:
        ar.Router.from_graph(registry, path, store="memory://")
    assert str(path) in str(info.value)


# -- feedback and learning -----------------------------------------------------------------------


class LearningStatic:
    """A static strategy that remembers every outcome it is taught."""

    name: ClassVar[str] = "learning-static"

    def __init__(self, agent: str, *, fail: bool = False) -> None:
        self.agent = agent
        self.fail = fail
        self.outcomes: list[ar.Outcome] = []

    async def route(self, ctx: RoutingContext) -> RouteDecision:
        return RouteDecision.to(self.agent)

    async def learn(self, outcome: ar.Outcome) -> None:
        self.outcomes.append(outcome)
        if self.fail:
            msg = "learning store offline"
            raise RuntimeError(msg)


async def test_feedback_is_chained_and_reaches_learning(make_router: MakeRouter) -> None:
    """feedback(score=0.8) appends a chained record (verify ok) and `learn` gets the score."""
    strategy = LearningStatic("billing")
    assert isinstance(strategy, ar.LearningStrategy)
    router = make_router(strategy)
    result = await router.run("refund please", metadata={"tenant": "acme"})
    assert len(strategy.outcomes) == 1
    at_end = strategy.outcomes[0]
    assert (at_end.run_id, at_end.status, at_end.score) == (result.run_id, "completed", None)
    assert at_end.steps == (("billing",),)
    assert at_end.outputs == {"billing": "Your refund has been issued."}

    record = await router.feedback(result.run_id, score=0.8, label="resolved", comment="great")
    assert (record.kind, record.score, record.label) == ("feedback", 0.8, "resolved")
    trace = router.trace(result.run_id)
    assert trace.records[-1] == record
    assert trace.records[-2].kind == "run_end"
    assert record.prev_hash == trace.records[-2].hash
    assert_chained(trace.records)
    assert router.store.verify(result.run_id).ok

    assert len(strategy.outcomes) == 2
    taught = strategy.outcomes[1]
    assert taught.score == 0.8
    assert taught.run_id == result.run_id
    assert taught.task == "refund please"
    assert taught.status == "completed"
    assert taught.answer == result.answer
    assert taught.steps == (("billing",),)
    assert taught.metadata == {"tenant": "acme"}


async def test_feedback_validation(make_router: MakeRouter) -> None:
    """Feedback needs a score in [0, 1] or a label, and a known run."""
    from agentroute.errors import RunNotFound

    router = make_router(ar.Static("general"))
    result = await router.run("hi")
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        await router.feedback(result.run_id, score=1.5)
    with pytest.raises(ValueError, match="score"):
        await router.feedback(result.run_id)
    with pytest.raises(RunNotFound):
        await router.feedback("nope", score=0.5)
    assert router.trace(result.run_id).feedback == []


async def test_learning_errors_do_not_break_runs(make_router: MakeRouter) -> None:
    """A learn() that raises neither fails the run nor the feedback call; it is logged."""
    strategy = LearningStatic("general", fail=True)
    router = make_router(strategy)
    with capture_logs() as logs:
        result = await router.run("hi")
        await router.feedback(result.run_id, score=0.2)
    assert result.status == "completed"
    assert len(strategy.outcomes) == 2
    failures = [e for e in logs if e["event"] == "learning failed"]
    assert len(failures) == 2
    assert failures[0]["strategy"] == "learning-static"
    assert "learning store offline" in failures[0]["error"]
    assert router.store.verify(result.run_id).ok


def test_from_graph_bad_refiner_params_are_a_configuration_error(
    registry: ar.Registry, tmp_path: Path
) -> None:
    """Unknown refiner parameters in a graph file → ConfigurationError naming the file."""
    path = tmp_path / "desk.yaml"
    path.write_text(
        GRAPH.replace("strategy: join", "strategy: join\n    params: {sep: x}"), encoding="utf-8"
    )
    with pytest.raises(ar.ConfigurationError, match="refiner") as info:
        ar.Router.from_graph(registry, path, store="memory://")
    assert str(path) in str(info.value)
