"""ExampleRouter: kNN / linear / ensemble heads, thresholds, growth from feedback, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import agentroute as ar
from agentroute.errors import ConfigurationError
from agentroute.routing import Outcome, build_strategy
from agentroute.routing._example import ExampleRouter, load_examples
from agentroute.routing.embeddings import _default as _default_module
from agentroute.testing import ScriptedModelClient

from ._words import WordsEmbedder as _Words
from ._words import agent_ctx as ctx


class WordsEmbedder(_Words):
    """The shared bag-of-words embedder, with more bins for these larger example sets."""

    dims = 128


EXAMPLES = {
    "billing": [
        "I was charged twice",
        "refund my payment",
        "invoice is wrong",
        "double charge on my card",
        "where is my refund",
        "cancel the charge",
    ],
    "shipping": [
        "where is my parcel",
        "package is late",
        "track my order",
        "delivery never arrived",
        "parcel lost in transit",
        "when will my order ship",
    ],
    "security": [
        "my account was hacked",
        "reset two factor authentication",
        "phishing email received",
        "someone logged into my account",
        "password stolen",
        "suspicious login alert",
    ],
}


@pytest.mark.parametrize("mode", ["knn", "linear", "ensemble"])
async def test_each_head_routes_by_examples(registry: ar.Registry, mode: str) -> None:
    """Every head routes an unseen paraphrase to the agent with similar examples."""
    router = ExampleRouter(EXAMPLES, mode=mode, k=3, threshold=None, embedder=WordsEmbedder())  # type: ignore[arg-type]
    decision = await router.route(ctx(registry, "my parcel is late, track it"))
    assert decision.agents == ("shipping",)
    probs = [c.score for c in decision.candidates]
    assert sum(p or 0 for p in probs) == pytest.approx(1.0, abs=1e-6)
    assert decision.evidence["mode"] == mode
    # `general` has no examples: it is represented by its description.
    assert decision.evidence["described_only"] == ["general"]


async def test_auto_threshold_abstains_on_unrelated_requests(registry: ar.Registry) -> None:
    """`threshold="auto"` is chosen by cross-validation; a request unlike every example abstains."""
    router = ExampleRouter(EXAMPLES, embedder=WordsEmbedder())
    decision = await router.route(ctx(registry, "1234 5678"))  # shares nothing with any example
    assert decision.outcome == "abstain"
    assert decision.evidence["threshold"] is not None
    assert "quantile" in decision.evidence["threshold_method"]
    ok = await router.route(ctx(registry, "I was charged twice, refund my payment"))
    assert ok.agents == ("billing",)


async def test_oos_examples_and_out_of_scope_outcome(registry: ar.Registry) -> None:
    """With out-of-scope examples the threshold targets their recall; outcome is configurable."""
    router = ExampleRouter(
        EXAMPLES,
        oos_examples=["banana smoothie recipe", "football scores", "weather in rome"],
        below_threshold="out_of_scope",
        embedder=WordsEmbedder(),
    )
    decision = await router.route(ctx(registry, "football scores banana"))
    assert decision.outcome == "out_of_scope"
    assert "quantile" not in decision.evidence["threshold_method"]  # the oos examples were used


async def test_multi_agent_requests_pick_several(registry: ar.Registry) -> None:
    """With `max_agents=2`, a request mixing two agents' words routes to both."""
    router = ExampleRouter(
        EXAMPLES,
        mode="knn",
        k=6,
        threshold=None,
        max_agents=2,
        multi_ratio=0.3,
        embedder=WordsEmbedder(),
    )
    decision = await router.route(ctx(registry, "refund my payment and track my order"))
    assert set(decision.agents) == {"billing", "shipping"}


async def test_learns_from_feedback_and_from_the_store(registry: ar.Registry) -> None:
    """Good feedback adds the request as an example; a store label corrects the route."""
    router = ExampleRouter(EXAMPLES, mode="knn", k=1, threshold=None, embedder=WordsEmbedder())
    before = await router.route(ctx(registry, "gift card balance"))
    outcome = Outcome(
        run_id="r1",
        task="gift card balance",
        status="completed",
        answer="x",
        cost_usd=0.0,
        steps=(("general",),),
        score=1.0,
    )
    await router.learn(outcome)
    await router.learn(outcome.model_copy(update={"score": 0.1, "task": "ignored"}))
    after = await router.route(ctx(registry, "gift card balance"))
    assert before.agents != ("general",) or before.evidence["examples"] < after.evidence["examples"]
    assert after.agents == ("general",)
    assert router.examples_for(registry, ["general"])["general"] == ["gift card balance"]

    run_router = ar.Router(
        registry,
        agent=ar.Static("billing"),
        client=ScriptedModelClient(default="ok"),
        store="memory://",
    )
    result = await run_router.run("my two factor code never arrives")
    await run_router.feedback(result.run_id, label="security")
    added = router.grow_from_store(run_router.store)
    assert added == 1
    assert (
        "my two factor code never arrives"
        in router.examples_for(registry, ["security"])["security"]
    )


def test_examples_file_forms(tmp_path: Path) -> None:
    """Examples load from a JSON mapping or JSON lines; a bad line names itself."""
    mapping = tmp_path / "ex.json"
    mapping.write_text(json.dumps({"billing": ["refund"]}))
    lines = tmp_path / "ex.jsonl"
    lines.write_text(
        '{"name": "shipping", "examples": ["parcel"]}\n{"agent": "billing", "text": "fee"}\n'
    )
    assert load_examples(mapping) == {"billing": ["refund"]}
    assert load_examples(lines) == {"shipping": ["parcel"], "billing": ["fee"]}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"x": 1}\n')
    with pytest.raises(ConfigurationError, match=r"bad\.jsonl:1"):
        load_examples(bad)


def test_validate_rejects_examples_for_unknown_agents(registry: ar.Registry) -> None:
    """Compile-time check: examples naming an unregistered agent fail with its name."""
    router = ExampleRouter({"biling": ["x"]}, embedder=WordsEmbedder())
    with pytest.raises(ConfigurationError, match="biling"):
        router.validate(registry, tuple(registry.agents))


async def test_calibrate_on_validation(registry: ar.Registry) -> None:
    """`calibrate` replaces the threshold with one chosen on labelled validation requests."""
    router = ExampleRouter(EXAMPLES, threshold=None, embedder=WordsEmbedder())
    choice = router.calibrate(
        registry,
        ["refund my card", "parcel late", "hacked account", "banana recipe", "football tonight"],
        [["billing"], ["shipping"], ["security"], [], []],
        target_oos_recall=0.5,
    )
    assert router.fitted_threshold == choice.threshold


def test_yaml_constructible() -> None:
    """The catalog name `example` builds the router from YAML params."""
    strategy = build_strategy({"strategy": "example", "params": {"mode": "knn", "k": 5}})
    assert isinstance(strategy, ExampleRouter)
    assert strategy.k == 5
    with pytest.raises(ConfigurationError):
        ExampleRouter(mode="forest")  # type: ignore[arg-type]


def test_eval_agents_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`agentroute eval agents --json` prints one object with every required key."""
    from agentroute.cli import _app

    monkeypatch.setitem(_default_module._DEFAULT, "default", WordsEmbedder())
    agents = tmp_path / "agents.jsonl"
    agents.write_text(
        "\n".join(
            json.dumps({"name": n, "description": f"{n} questions", "examples": ex})
            for n, ex in EXAMPLES.items()
        )
        + "\n"
    )
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        "\n".join(
            json.dumps(q)
            for q in [
                {"text": "refund my double charge", "gold": ["billing"]},
                {"text": "my parcel is late", "gold": ["shipping"]},
                {"text": "account hacked", "gold": ["security"]},
                {"text": "banana smoothie recipe", "gold": []},
            ]
        )
    )
    runner = CliRunner()
    for strategy in ("example", "description"):
        result = runner.invoke(
            _app.app,
            [
                "eval",
                "agents",
                "--agents",
                str(agents),
                "--queries",
                str(queries),
                "--strategy",
                strategy,
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout.strip().splitlines()[-1])
        for key in (
            "accuracy",
            "precision",
            "recall",
            "f1",
            "oos_precision",
            "oos_recall",
            "p50_ms",
            "queries",
        ):
            assert key in data
        assert data["queries"] == 4
    result = runner.invoke(
        _app.app,
        [
            "eval",
            "agents",
            "--agents",
            str(agents),
            "--queries",
            str(queries),
            "--strategy",
            "reasoning",
        ],
    )
    assert result.exit_code != 0
    assert "--model" in result.output


def test_a_malformed_examples_mapping_is_a_configuration_error(tmp_path: Path) -> None:
    """A broken `.json` mapping, or one whose values are not lists, fails naming the file."""
    broken = tmp_path / "broken.json"
    broken.write_text('{"billing": ["refund"')
    with pytest.raises(ConfigurationError, match=r"broken\.json: not a valid"):
        load_examples(broken)
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"billing": "refund"}))
    with pytest.raises(ConfigurationError, match=r"flat\.json: expected a JSON object"):
        load_examples(flat)
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_examples(tmp_path / "missing.json")
    text = tmp_path / "text.jsonl"
    text.write_text('{"name": "billing", "examples": "refund"}\n')
    with pytest.raises(ConfigurationError, match=r"text\.jsonl:1: 'examples' must be a list"):
        load_examples(text)


async def test_eval_agents_llm_complete_bills_one_ledger(monkeypatch: pytest.MonkeyPatch) -> None:
    """`eval agents --model`'s completion function bills every call to one ledger.

    It sends string and message prompts to the model through the shared call path, adds every
    call's cost to the ledger it reports, and refuses to start without the provider's API key.
    """
    from agentroute import models
    from agentroute.cli._eval_agents import llm_complete

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        llm_complete("openai/gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    client = ScriptedModelClient([("billing", "agent: billing")], default="agent: none")
    monkeypatch.setattr(models, "LiteLLMClient", lambda: client)
    complete, spent = llm_complete("openai/gpt-4o-mini")
    assert await complete("route: billing question", max_tokens=20) == "agent: billing"
    first = spent()
    assert first > 0
    reply = await complete([{"role": "user", "content": "hello"}], model="ignored")
    assert reply == "agent: none"
    assert spent() > first
    assert [r.messages[-1].content for r in client.requests] == [
        "route: billing question",
        "hello",
    ]
    assert client.requests[0].max_tokens == 20
