"""Stage 2 and the strategy: rerankers, thresholds, degradations, YAML, a Router end to end."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import agentroute as ar
from agentroute.errors import ConfigurationError
from agentroute.routing import RoutingContext, build_strategy
from agentroute.routing.skills import (
    FEATURES,
    CrossEncoderReranker,
    FeatureReranker,
    LLMReranker,
    QueryTokens,
    RerankRequest,
    RetrieveRerank,
    SkillIndex,
    SkillRecord,
    TextCaps,
    candidate_features,
    fit_feature_reranker,
    parse_ranking,
    tokenize,
    training_lists,
)
from agentroute.routing.skills import _index as skills_index
from agentroute.routing.skills import _rerank as skills_rerank
from agentroute.routing.skills import _strategy as skills_strategy
from agentroute.routing.skills import _text as skills_text
from agentroute.routing.skills import _train as skills_train
from agentroute.testing import ScriptedModelClient, capture_traces

from .conftest import FakeEmbedder, count_mask_builds, no_mask_cache


def test_parse_ranking_is_robust_to_malformed_output() -> None:
    """JSON, fenced JSON, bare lists, prose and 'none' parse; garbage gives None."""
    assert parse_ranking('{"ranking": [2, 1]}', 3) == [1, 0]
    assert parse_ranking('```json\n{"ranking": [3, 3, 9, "1"]}\n```', 3) == [2, 0]
    assert parse_ranking("I think [2, 3] are best", 3) == [1, 2]
    assert parse_ranking("3 > 1", 3) == [2, 0]
    assert parse_ranking('{"ranking": []}', 3) == []
    assert parse_ranking("None of them.", 3) == []
    assert parse_ranking("I cannot tell.", 3) is None


def test_shipped_feature_reranker_loads_and_scores(
    pool: list[SkillRecord], fake_embedder: FakeEmbedder
) -> None:
    """The packaged weights load, cover FEATURES, and give relevances in [0, 1]."""
    reranker = FeatureReranker()
    assert reranker.data["features"] == list(FEATURES)
    index = SkillIndex.build(pool, fake_embedder)
    cands = index.search("refund my money", 5)
    scores = reranker.rerank_sync("refund my money", cands, index)
    assert len(scores) == len(cands)
    assert all(0.0 <= s <= 1.0 for s in scores)
    with pytest.raises(ConfigurationError, match="features"):
        FeatureReranker({"features": ["x"]})


def test_fit_feature_reranker_learns_to_promote_gold(fake_embedder: FakeEmbedder) -> None:
    """A listwise fit on lists where gold has the best head cosine learns a positive weight."""
    rng = np.random.default_rng(0)
    lists = []
    for _ in range(40):
        x = rng.normal(size=(10, len(FEATURES)))
        y = np.zeros(10)
        gold = int(np.argmax(x[:, 1]))
        y[gold] = 1.0
        lists.append((x, y))
    weights = fit_feature_reranker(lists, steps=200)
    assert weights["coef"][1] > 0.5
    assert 0 < weights["calibration"][0] <= 10


def test_list_weights_decide_which_dataset_the_fit_follows() -> None:
    """Two groups of lists want opposite signs on feature 0; the weighted-up group wins."""
    rng = np.random.default_rng(1)

    def group(sign: float, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for _ in range(size):
            x = rng.normal(size=(8, len(FEATURES)))
            y = np.zeros(8)
            y[int(np.argmax(sign * x[:, 0]))] = 1.0
            out.append((x, y))
        return out

    big, small = group(1.0, 60), group(-1.0, 20)
    plain = fit_feature_reranker(big + small, steps=200)
    balanced = [0.1 / 60] * 60 + [0.9 / 20] * 20
    weighted = fit_feature_reranker(big + small, steps=200, list_weights=balanced)
    assert plain["coef"][0] > 0
    assert weighted["coef"][0] < 0
    assert "weighted lists" in weighted["objective"]
    with pytest.raises(ValueError, match="one positive weight per list"):
        fit_feature_reranker(big, list_weights=[1.0])


def test_features_ignore_the_cosine_level_of_the_embedder(
    pool: list[SkillRecord], fake_embedder: FakeEmbedder
) -> None:
    """Shifting all cosines by a constant (another embedder's range) changes no feature.

    So weights fitted on one embedder's pool do not depend on its cosine level.
    """
    index = SkillIndex.build(pool, fake_embedder)
    query = "refund the money for my lost parcel"
    cands = index.search(query, 5)
    shifted = [
        dataclasses.replace(c, dense=c.dense + 0.3, dense_head=c.dense_head + 0.3) for c in cands
    ]
    before = candidate_features(query, cands, index)
    after = candidate_features(query, shifted, index)
    np.testing.assert_allclose(after, before, atol=1e-9)
    names = list(FEATURES)
    assert before[:, names.index("idf_coverage")].max() > 0
    assert np.all(before[:, names.index("dense_gap")] <= 0)


def test_training_lists_skip_queries_without_gold_in_top_k(
    pool: list[SkillRecord], fake_embedder: FakeEmbedder
) -> None:
    """Queries whose gold is not retrieved are skipped; others give (features, labels)."""
    index = SkillIndex.build(pool, fake_embedder)
    lists = training_lists(index, [("refund money", {"refund-policy"}), ("x", {"nope"})], k=4)
    assert len(lists) == 1
    x, y = lists[0]
    assert x.shape[1] == len(FEATURES)
    assert y.sum() == 1


def _registry() -> ar.Registry:
    reg = ar.Registry()
    reg.model(
        "cheap",
        "openai/gpt-4o-mini",
        tier="cheap",
        input_price_per_mtok=0.15,
        output_price_per_mtok=0.6,
    )
    reg.skill(
        "refund-policy",
        name="Refund policy",
        description="Money back rules.",
        body="REFUND-BODY: refunds within 5-10 business days.",
    )
    reg.skill(
        "lost-package",
        name="Lost package",
        description="A parcel never arrived.",
        body="LOST-BODY: open a carrier trace for the lost parcel.",
    )
    reg.skill(
        "two-factor",
        name="Two-factor auth",
        description="Reset authenticator codes.",
        body="2FA-BODY: use backup codes.",
    )
    seen: dict[str, Any] = {}

    @reg.agent(tier="cheap")
    async def helper(ctx: ar.AgentContext, task: str) -> str:
        """Answers anything."""
        seen["skills"] = ctx.skills.as_prompt()
        seen["ids"] = ctx.skills.ids
        return "done"

    reg.seen = seen  # type: ignore[attr-defined]
    return reg


def test_router_end_to_end_gives_agent_the_right_bodies() -> None:
    """A Router with RetrieveRerank hands the agent the relevant skill's full body.

    The trace's decision records stage-1 BM25/dense/fused scores and the reranked list.
    """
    reg = _registry()
    strategy = RetrieveRerank(k=3, n=1, embedder=FakeEmbedder(), cache=False, min_relevance=0.0)
    router = ar.Router(
        reg,
        agent=ar.Static("helper"),
        skills=strategy,
        store="memory://",
        client=ScriptedModelClient(),
    )
    with capture_traces() as records:
        router.run_sync("My parcel was lost and never arrived")
    assert reg.seen["ids"] == ["lost-package"]  # type: ignore[attr-defined]
    assert "LOST-BODY" in reg.seen["skills"]  # type: ignore[attr-defined]
    decisions = [r for r in records if getattr(r, "slot", None) == "skills"]
    assert decisions, "no skills decision was recorded"
    evidence = decisions[0].evidence
    assert evidence["stage1"][0]["id"] == "lost-package"
    assert {"bm25", "dense", "fused"} <= set(evidence["stage1"][0])
    assert evidence["reranked"][0]["id"] == "lost-package"
    assert evidence["caps"]["body_chars"] == strategy.caps.body_chars
    # The strategy's parameters are recorded once per run, in the run's start record.
    run = next(r for r in records if getattr(r, "kind", None) == "run")
    assert run.router["skills"]["params"]["k"] == 3
    assert decisions[0].params == {}


def _ctx(reg: ar.Registry, task: str, **kw: Any) -> RoutingContext:
    return RoutingContext(
        run_id="r",
        step=0,
        slot="skills",
        task=task,
        registry=reg,
        candidates=tuple(reg.skills),
        agent="helper",
        **kw,
    )


async def test_no_skill_fits_when_nothing_clears_threshold() -> None:
    """An unrelated task gets an empty choice and a reason saying no skill fits."""
    reg = _registry()
    strategy = RetrieveRerank(k=3, n=2, embedder=FakeEmbedder(), cache=False, min_relevance=0.9)
    decision = await strategy.route(_ctx(reg, "compose a haiku about autumn leaves"))
    assert decision.skills == ()
    assert "no skill fits" in decision.reason
    assert decision.candidates  # what was considered is still recorded


async def test_llm_reranker_goes_through_ctx_complete_and_survives_garbage() -> None:
    """The LLM reranker calls ctx.complete with the bodies; garbage falls back to stage 1."""
    reg = _registry()
    prompts: list[str] = []

    async def good(prompt: str, **kw: Any) -> str:
        prompts.append(prompt)
        return '{"ranking": [2]}'

    strategy = RetrieveRerank(
        k=3, n=2, embedder=FakeEmbedder(), cache=False, reranker=LLMReranker("cheap")
    )
    ctx = _ctx(reg, "parcel lost", complete=good)
    decision = await strategy.route(ctx)
    stage1 = decision.evidence["stage1"]
    assert decision.skills == (stage1[1]["id"],)
    assert "BODY" in prompts[0]

    async def garbage(prompt: str, **kw: Any) -> str:
        return "I am not sure what you mean"

    decision = await strategy.route(_ctx(reg, "parcel lost", complete=garbage))
    assert "reranker_error" in decision.evidence
    assert decision.skills == tuple(s["id"] for s in decision.evidence["stage1"][:2])


async def test_failing_query_embedding_falls_back_to_lexical() -> None:
    """If the embedder fails at query time the decision is lexical-only and says so."""
    reg = _registry()
    embedder = FakeEmbedder()
    strategy = RetrieveRerank(k=3, n=1, embedder=embedder, cache=False, min_relevance=0.0)
    strategy.build_index(reg)
    embedder.fail_after = 0
    decision = await strategy.route(_ctx(reg, "refund my money"))
    assert decision.skills == ("refund-policy",)
    assert "dense_error" in decision.evidence


def test_yaml_construction_and_bad_params() -> None:
    """`retrieve-rerank` builds from graph YAML params; bad values are ConfigurationErrors."""
    strategy = build_strategy(
        {
            "strategy": "retrieve-rerank",
            "params": {
                "k": 20,
                "n": 2,
                "embedder": "static",
                "reranker": "none",
                "caps": {"body_chars": 3000},
                "cache": False,
            },
        }
    )
    assert isinstance(strategy, RetrieveRerank)
    assert strategy.params()["caps"]["body_chars"] == 3000
    with pytest.raises(ConfigurationError, match="k >= 1"):
        RetrieveRerank(k=2, n=3)
    with pytest.raises(ConfigurationError, match="unknown embedder 'minilmm'"):
        RetrieveRerank(embedder="minilmm")
    with pytest.raises(ConfigurationError, match="did you mean"):
        RetrieveRerank(reranker="featur")
    with pytest.raises(ConfigurationError, match="caps"):
        RetrieveRerank(caps={"body_chars": -1}, cache=False)
    with pytest.raises(ConfigurationError, match="static dimension must be a positive integer"):
        RetrieveRerank(embedder="static:abc", cache=False)


def test_bad_reranker_weights_are_configuration_errors(tmp_path: Path) -> None:
    """Weights that are not a mapping, lack a field, or have the wrong length fail clearly."""
    good = dict(FeatureReranker().data)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(ConfigurationError, match="are for features list"):
        FeatureReranker(listed)
    with pytest.raises(ConfigurationError, match="lack or garble"):
        FeatureReranker({k: v for k, v in good.items() if k != "mean"})
    with pytest.raises(ConfigurationError, match="values each in mean, scale and coef"):
        FeatureReranker({**good, "coef": good["coef"][:-1]})
    assert FeatureReranker(good).coef.shape == (len(good["features"]),)


def test_a_rebuild_publishes_a_new_index_and_leaves_the_old_one_whole() -> None:
    """After the registry changes, `build_index` swaps in an updated copy.

    Runs that were searching the previous index keep a complete one: it is never half-updated.
    """
    reg = _registry()
    strategy = RetrieveRerank(k=3, n=1, embedder=FakeEmbedder(), cache=False)
    first = strategy.build_index(reg)
    ids_before = list(first.ids)
    reg.skill("gift-cards", name="Gift cards", description="Buying gift cards.", body="GIFT")
    second = strategy.build_index(reg)
    assert second is not first
    assert strategy.index is second
    assert "gift-cards" in second.ids
    assert first.ids == ids_before
    assert len(first.vectors) == int(first.starts[-1])


def _comparable(decision: ar.RouteDecision) -> tuple[Any, ...]:
    """A decision without its timings (which differ from run to run)."""
    evidence = {k: v for k, v in decision.evidence.items() if k != "timings_ms"}
    return decision.skills, decision.reason, decision.candidates, evidence


async def test_routes_with_the_same_candidates_build_the_allowed_mask_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An undeclared agent's whole-pool mask is built once, not per decision.

    Decisions equal those made with the mask cache off. After a registry change (a rebuilt
    index) even an unchanged candidate list gets a new mask, and decisions equal a fresh
    strategy's.
    """
    tasks = ["My parcel was lost", "refund my money", "compose a haiku", "reset my codes"]
    declared = ("lost-package", "two-factor")

    async def decide(strategy: RetrieveRerank, reg: ar.Registry) -> list[tuple[Any, ...]]:
        # `_ctx` builds a new candidates tuple per decision, as the runtime does.
        out = []
        for task in tasks:
            ctx = _ctx(reg, task)
            out.append(_comparable(await strategy.route(ctx)))
            subset = dataclasses.replace(ctx, candidates=tuple(declared))
            out.append(_comparable(await strategy.route(subset)))
        return out

    def strategy() -> RetrieveRerank:
        return RetrieveRerank(k=3, n=2, embedder=FakeEmbedder(), cache=False)

    reg = _registry()
    with no_mask_cache():
        uncached = await decide(strategy(), reg)
    built = count_mask_builds(monkeypatch)
    cached = strategy()
    assert await decide(cached, reg) == uncached
    assert built == [3, 2]

    reg.skill("gift-cards", name="Gift cards", description="Buying gift cards.", body="GIFT")
    after = await decide(cached, reg)
    assert built == [3, 2, 4, 2]
    assert after == await decide(strategy(), reg)


def _count_query_tokenisations(monkeypatch: pytest.MonkeyPatch, task: str) -> list[str]:
    """Record every `tokenize` call the skills modules make on a prefix of `task`.

    Every module's own `tokenize` binding is wrapped, so a stage that went back to
    tokenising the query itself would be counted too. Skill names and descriptions (the
    index's head tokens) are not prefixes of the task, so they are not counted.
    """
    seen: list[str] = []

    def counting(text: str) -> list[str]:
        if text and task.startswith(text):
            seen.append(text)
        return tokenize(text)

    for module in (skills_text, skills_index, skills_rerank, skills_strategy, skills_train):
        if hasattr(module, "tokenize"):
            monkeypatch.setattr(module, "tokenize", counting)
    return seen


@pytest.mark.parametrize(
    ("task", "index_chars", "texts"),
    [
        ("my parcel was lost, refund my money", 2000, 1),
        ("refund the lost parcel " * 200, 2000, 1),
        ("refund the lost parcel " * 4, 32, 2),
    ],
    ids=["short", "longer-than-the-cap", "index-cuts-shorter"],
)
async def test_a_decision_tokenises_each_distinct_query_text_once(
    monkeypatch: pytest.MonkeyPatch, task: str, index_chars: int, texts: int
) -> None:
    """One decision tokenises the query once: BM25, term statistics and features share it.

    When the index cuts queries shorter than the strategy (an index built with other caps),
    retrieval reads the shorter text and the reranker the strategy's: two texts, two calls.
    """
    reg = _registry()
    embedder = FakeEmbedder()
    index = SkillIndex.build(reg.skills.values(), embedder, TextCaps(query_chars=index_chars))
    strategy = RetrieveRerank(k=3, n=2, embedder=embedder, cache=False, index=index)
    seen = _count_query_tokenisations(monkeypatch, task)
    decision = await strategy.route(_ctx(reg, task))
    assert decision.candidates
    query = task[: strategy.caps.query_chars]
    assert len(seen) == texts
    assert set(seen) == {query, query[:index_chars]}


def test_search_and_features_share_one_query_tokens(
    monkeypatch: pytest.MonkeyPatch, pool: list[SkillRecord], fake_embedder: FakeEmbedder
) -> None:
    """Through the public functions, a shared `QueryTokens` costs one call per distinct text.

    A query within the index's cut is one text; a longer one is two (the cut text for
    retrieval and term statistics, the whole query for the overlap features).
    """
    index = SkillIndex.build(pool, fake_embedder, TextCaps(query_chars=40))
    for task, texts in (
        ("refund my lost parcel", 1),
        ("refund my lost parcel and reset two-factor authentication codes", 2),
    ):
        with monkeypatch.context() as m:
            seen = _count_query_tokenisations(m, task)
            tokens = QueryTokens(task)
            candidates = index.search(tokens, 4)
            candidate_features(tokens, candidates, index)
            FeatureReranker().rerank_sync(tokens, candidates, index)
            assert len(seen) == texts, seen
    shared = QueryTokens("refund")
    assert QueryTokens.of(shared) is shared
    assert shared.tokens(100) is shared.tokens()


@pytest.mark.parametrize(
    "task",
    [
        "My parcel was lost and never arrived",
        "refund my money " * 300,
        "Reset my two-factor codes 北京的天气怎么样 ＡＢＣ",
        "the and of",
    ],
    ids=["short", "longer-than-the-cap", "cjk-fullwidth", "stop-words-only"],
)
@pytest.mark.parametrize("index_chars", [2000, 24], ids=["same-cut", "index-cuts-shorter"])
async def test_shared_tokens_give_the_decision_of_the_separate_public_calls(
    task: str, index_chars: int
) -> None:
    """`RetrieveRerank.rank` equals search + features + reranker called with plain strings.

    Each public call tokenises its own query text, so this pins that sharing the tokens
    changes no candidate, score or order; the overlap features are also checked against
    `tokenize` of the whole (strategy-cut) query, the term features against the index's cut.
    """
    reg = _registry()
    embedder = FakeEmbedder()
    index = SkillIndex.build(reg.skills.values(), embedder, TextCaps(query_chars=index_chars))
    strategy = RetrieveRerank(k=3, n=2, embedder=embedder, cache=False, index=index)
    query = task[: strategy.caps.query_chars]
    for allowed in (None, ("lost-package", "two-factor")):
        ranked = await strategy.rank(task, index, allowed=allowed)
        stage1 = index.search(
            query,
            strategy.k,
            allowed=allowed,
            rrf_k=strategy.rrf_k,
            weights=strategy.fusion_weights,
            qvec=index.embed_query(query),
        )
        assert ranked.stage1 == tuple(stage1)
        relevance = FeatureReranker().rerank_sync(query, stage1, index)
        assert ranked.relevance == (tuple(relevance) if stage1 else None)
        features = candidate_features(query, stage1, index)
        np.testing.assert_array_equal(
            candidate_features(QueryTokens(query), stage1, index), features
        )
        q_set = set(tokenize(query))
        known = index.term_stats(query[:index_chars], [c.index for c in stage1])[0]
        assert known == index.term_stats(QueryTokens(query), [c.index for c in stage1])[0]
        for row, c in enumerate(stage1):
            _name, head = index.head_tokens(c.index)
            coverage = len(q_set & head) / len(q_set) if q_set else 0.0
            assert features[row, list(FEATURES).index("query_coverage")] == coverage


def test_rerank_request_refuses_tokens_of_another_text(
    pool: list[SkillRecord], fake_embedder: FakeEmbedder
) -> None:
    """Tokens built from another string than the request's query are a ConfigurationError."""
    index = SkillIndex.build(pool, fake_embedder)
    with pytest.raises(ConfigurationError, match="another text than its query"):
        RerankRequest(
            query="refund",
            candidates=[],
            index=index,
            document=lambda _id: ("", "", ""),
            tokens=QueryTokens("refund my money"),
        )


class _Sigmoid:
    """Stands in for `torch.nn.Sigmoid` (matched by class name, as the real one is)."""


class _Identity:
    """Stands in for `torch.nn.Identity`."""


_Sigmoid.__name__ = "Sigmoid"
_Identity.__name__ = "Identity"


def _fake_cross_encoder(
    monkeypatch: pytest.MonkeyPatch, scores: dict[str, float], **attrs: Any
) -> list[str]:
    """Install a fake `sentence_transformers.CrossEncoder` whose output per document is fixed.

    `attrs` become attributes of the loaded model (e.g. `activation_fn`). Returns the list of
    model ids loaded.
    """
    loaded: list[str] = []

    class FakeCrossEncoder:
        def __init__(self, model: str, *, max_length: int) -> None:
            loaded.append(model)
            for key, value in attrs.items():
                setattr(self, key, value)

        def predict(
            self, pairs: list[tuple[str, str]], *, batch_size: int, show_progress_bar: bool
        ) -> npt.NDArray[np.float32]:
            return np.array([scores[doc] for _, doc in pairs], dtype=np.float32)

    module = types.ModuleType("sentence_transformers")
    module.CrossEncoder = FakeCrossEncoder  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", module)
    return loaded


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.float64(np.float32(x)))))


def test_cross_encoder_maps_logits_the_same_way_for_every_query(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A logit model that does not name its activation gets a sigmoid on every query.

    The first batch holds logits outside [0, 1], so it decides; a later batch whose logits all
    fall inside [0, 1] is still mapped through the sigmoid (it used to be taken as relevance
    as-is, so `min_relevance` meant something else for that query).
    """
    scores = {"far": -2.0, "near": 3.0, "weak": 0.2, "fair": 0.8}
    loaded = _fake_cross_encoder(monkeypatch, scores)
    reranker = CrossEncoderReranker("/models/fake-ce")
    assert reranker.score_pairs("q1", ["far", "near"]) == [_sigmoid(-2.0), _sigmoid(3.0)]
    assert reranker.score_pairs("q2", ["weak", "fair"]) == [_sigmoid(0.2), _sigmoid(0.8)]
    assert (reranker.applied_activation, reranker.activation_source) == ("sigmoid", "first batch")
    assert loaded == ["/models/fake-ce"]


def test_cross_encoder_does_not_decide_from_a_batch_without_finite_outputs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A first batch of NaN outputs decides nothing; the next batch with real logits does."""
    scores = {"bad": float("nan"), "far": -2.0, "near": 3.0}
    _fake_cross_encoder(monkeypatch, scores)
    reranker = CrossEncoderReranker("/models/nan-ce")
    reranker.score_pairs("q0", ["bad"])
    assert reranker.applied_activation is None
    assert reranker.score_pairs("q1", ["far", "near"]) == [_sigmoid(-2.0), _sigmoid(3.0)]
    assert (reranker.applied_activation, reranker.activation_source) == ("sigmoid", "first batch")


def test_cross_encoder_follows_the_models_configured_activation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In "auto", the model's `activation_fn` decides at load time, before any output is seen.

    An identity activation (raw logits) gets a sigmoid even when the first batch lies in
    [0, 1]; a sigmoid activation (probabilities) is used as-is.
    """
    scores = {"weak": 0.2, "fair": 0.8}
    _fake_cross_encoder(monkeypatch, scores, activation_fn=_Identity())
    logits = CrossEncoderReranker("/models/identity-ce")
    assert logits.score_pairs("q", ["weak", "fair"]) == [_sigmoid(0.2), _sigmoid(0.8)]
    assert (logits.applied_activation, logits.activation_source) == ("sigmoid", "model")

    _fake_cross_encoder(monkeypatch, scores, activation_fn=_Sigmoid())
    probabilities = CrossEncoderReranker("/models/sigmoid-ce")
    got = probabilities.score_pairs("q", ["weak", "fair"])
    assert got == [float(np.float32(0.2)), float(np.float32(0.8))]
    assert (probabilities.applied_activation, probabilities.activation_source) == ("none", "model")


def test_cross_encoder_explicit_activation_and_bad_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An explicit activation overrides the model's; "none" refuses outputs outside [0, 1].

    An unknown activation is a ConfigurationError with a did-you-mean hint, and an
    out-of-range output under "none" is a ValueError (the strategy's reranker fallback).
    """
    scores = {"weak": 0.2, "fair": 0.8, "logit": 4.0}
    _fake_cross_encoder(monkeypatch, scores, activation_fn=_Sigmoid())
    forced = CrossEncoderReranker("/models/ce", activation="sigmoid")
    assert forced.score_pairs("q", ["weak"]) == [_sigmoid(0.2)]
    assert (forced.applied_activation, forced.activation_source) == ("sigmoid", "configured")
    raw = CrossEncoderReranker("/models/ce", activation="none")
    assert raw.score_pairs("q", ["fair"]) == [float(np.float32(0.8))]
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*activation='sigmoid'"):
        raw.score_pairs("q", ["fair", "logit"])
    with pytest.raises(ConfigurationError, match="did you mean 'sigmoid'"):
        CrossEncoderReranker("/models/ce", activation="sigmiod")  # type: ignore[arg-type]


# -- listwise answers that are not plain position lists -----------------------------------------


def test_parse_ranking_reads_none_wording_before_numbers() -> None:
    """Prose saying none fits means `[]`, even when it mentions how many candidates there were."""
    assert parse_ranking("None of the 5 candidates helps.", 5) == []
    assert parse_ranking("None of candidates 1-10 fit the task.", 10) == []
    assert parse_ranking("No skill applies here.", 3) == []
    assert parse_ranking("3 > 1 > 2", 3) == [2, 0, 1]


def test_parse_ranking_rejects_lists_without_a_valid_position() -> None:
    """Names, objects or out-of-range numbers are unparseable (`None`), not "no skill fits"."""
    assert parse_ranking('{"ranking": ["web-search", "calculator"]}', 5) is None
    assert parse_ranking('{"ranking": [{"id": 2}, {"id": 1}]}', 5) is None
    assert parse_ranking('{"ranking": [7, 9]}', 5) is None
    assert parse_ranking('{"ranking": [true]}', 5) is None
    assert parse_ranking('{"ranking": []}', 5) == []


def test_parse_ranking_accepts_integer_floats_and_candidate_labels() -> None:
    """`2.0` is candidate 2; an exact candidate id or name maps to its position."""
    assert parse_ranking('{"ranking": [2.0, 1.0, 1.5]}', 3) == [1, 0]
    labels = {"web-search": 0, "Calculator": 1}
    assert parse_ranking('{"ranking": ["Calculator", "web-search"]}', 2, labels=labels) == [1, 0]
    assert parse_ranking('{"ranking": ["calculator"]}', 2, labels=labels) is None


async def test_llm_reranker_maps_returned_skill_ids_to_candidates(
    pool: list[SkillRecord],
) -> None:
    """An LLM answering with skill ids or names ranks those skills; garbage falls back."""
    index = SkillIndex.build(pool, FakeEmbedder())
    stage1 = index.search("my parcel was lost, I want a refund", k=4)
    ids = [c.id for c in stage1]
    assert {"lost-package", "refund-policy"} <= set(ids)
    answers = iter(['{"ranking": ["refund-policy", "Lost package"]}', '{"ranking": [{"x": 1}]}'])

    async def complete(*_: Any, **__: Any) -> str:
        return next(answers)

    def document(skill_id: str) -> tuple[str, str, str]:
        spec = next(s for s in pool if s.id == skill_id)
        return spec.name, spec.description, spec.body

    request = RerankRequest(
        query="my parcel was lost",
        candidates=stage1,
        index=index,
        document=document,
        complete=complete,
    )
    scores = await LLMReranker().rerank(request)
    assert scores[ids.index("refund-policy")] == 1.0
    assert 0.0 < scores[ids.index("lost-package")] < 1.0
    with pytest.raises(ValueError, match="no ranking"):
        await LLMReranker().rerank(request)


# -- retrying skills the embedder failed on --------------------------------------------------------


async def test_failed_skills_are_retried_after_the_backoff() -> None:
    """Skills left unembedded by an outage are embedded again, in the background, after backoff.

    Within the backoff nothing is retried; after it, a route starts the retry on a thread of
    its own, serves the current index meanwhile, and the retried index replaces it when done.
    """
    reg = _registry()
    embedder = FakeEmbedder(fail_after=2)
    strategy = RetrieveRerank(
        k=3, n=2, embedder=embedder, cache=False, min_relevance=0.0, retry_after=3600
    )
    await strategy.route(_ctx(reg, "lost parcel"))
    before = strategy.index
    assert before is not None
    assert before.failed
    embedder.fail_after = None  # the provider is back
    await strategy.route(_ctx(reg, "lost parcel"))
    assert strategy.index is before  # within the backoff: no retry yet
    assert strategy._retrying is None
    strategy.retry_after = 0.0
    await strategy.route(_ctx(reg, "lost parcel"))
    retry = strategy._retrying
    assert retry is not None
    await asyncio.to_thread(retry.join, 10.0)
    assert strategy.index is not None
    assert strategy.index is not before
    assert strategy.index.failed == []
    assert bool(strategy.index.embedded.all())


async def test_a_retry_that_fails_again_does_not_fail_the_route() -> None:
    """While the provider stays down, retries keep the skills lexical-only and routes work."""
    reg = _registry()
    embedder = FakeEmbedder(fail_after=2)
    strategy = RetrieveRerank(
        k=3, n=2, embedder=embedder, cache=False, min_relevance=0.0, retry_after=0.0
    )
    await strategy.route(_ctx(reg, "lost parcel"))
    decision = await strategy.route(_ctx(reg, "lost parcel"))
    retry = strategy._retrying
    assert retry is not None
    await asyncio.to_thread(retry.join, 10.0)
    assert strategy.index is not None
    assert strategy.index.failed
    assert decision.candidates


async def test_decisions_record_the_caps_of_a_loaded_index(tmp_path: Path) -> None:
    """A strategy serving a saved index records that index's caps, not its own defaults."""
    reg = _registry()
    caps = TextCaps(body_chars=50, name_weight=0)
    SkillIndex.build(reg.skills.values(), FakeEmbedder(), caps).save(tmp_path / "idx")
    strategy = RetrieveRerank(embedder=FakeEmbedder(), cache=False, index=tmp_path / "idx")
    decision = await strategy.route(_ctx(reg, "lost parcel"))
    assert decision.evidence["caps"]["body_chars"] == 50
    assert decision.evidence["caps"]["name_weight"] == 0
    assert strategy.params()["caps"]["body_chars"] == 50
