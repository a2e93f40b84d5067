"""`BudgetSwitch`: policies, tiers, knobs, scorers, cascade, metrics and the eval command.

A tiny fake embedder keeps these tests fast and free of model files: prompts mentioning
"proof" embed near each other, everything else near a second direction.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import agentroute as ar
from agentroute.errors import ConfigurationError
from agentroute.routing import Static, build_strategy
from agentroute.routing._budget_switch import BudgetSwitch
from agentroute.routing._difficulty import (
    EnsembleScorer,
    KnnScorer,
    LogisticScorer,
    load_outcomes,
)
from agentroute.routing._difficulty_eval import calibrate_threshold, cheap_strong_curve
from agentroute.routing._difficulty_features import HashingEmbedder
from agentroute.stores import InMemoryTraceStore
from agentroute.testing import ScriptedModelClient
from tests.routing.conftest import difficulty_data

from ._switch import model_decision, switch_registry, switch_router


class FakeEmbedder:
    """Two clusters: 'proof' prompts and the rest, with a little per-text jitter."""

    name = "fake:2"

    def embed(self, texts: Sequence[str]) -> Any:
        rows = []
        for t in texts:
            jitter = (hash(t) % 100) / 1000.0
            rows.append([1.0, jitter] if "proof" in t else [jitter, 1.0])
        arr = np.asarray(rows, dtype=np.float32)
        return arr / np.linalg.norm(arr, axis=1, keepdims=True)


def _data(n: int = 60) -> tuple[list[str], list[float], list[float]]:
    return difficulty_data(n, every=2, hard="proof of theorem", easy="say hello")


def _fitted_knn() -> KnnScorer:
    return KnnScorer(FakeEmbedder()).fit(*_data())


def test_threshold_routes_hard_prompts_up_and_records_why() -> None:
    """Hard prompts go strong, easy ones cheap; evidence has score, threshold, budget, cost."""
    router = switch_router(BudgetSwitch.threshold(_fitted_knn(), t=0.6))
    hard = router.run_sync("proof of a new theorem", budget=ar.Budget(usd=1.0))
    easy = router.run_sync("say hello to me", budget=ar.Budget(usd=1.0))
    d_hard, d_easy = model_decision(router, hard.run_id), model_decision(router, easy.run_id)
    assert d_hard.chosen == ["strong"]
    assert d_easy.chosen == ["cheap"]
    ev = d_hard.evidence
    assert ev["policy"] == "threshold"
    assert ev["threshold"] == 0.6
    assert ev["score"] > 0.6
    assert ev["budget_before"]["limit_usd"] == 1.0
    assert ev["budget_after_estimated"]["spent_usd"] == pytest.approx(ev["estimated_cost_usd"])
    assert ev["scorer_evidence"]["neighbours"][0]["text"].startswith("proof")
    call = router.trace(hard.run_id).model_calls[0]
    assert call.estimated_cost_usd >= call.cost_usd > 0


def test_metadata_knob_changes_the_threshold_without_refitting() -> None:
    """Run metadata `budget_switch.t` (or `strong_share`) overrides t for that run only."""
    router = switch_router(BudgetSwitch.threshold(_fitted_knn(), t=0.6))
    res = router.run_sync("proof again", metadata={"budget_switch": {"t": 0.99}})
    decision = model_decision(router, res.run_id)
    assert decision.chosen == ["cheap"]
    assert decision.evidence["threshold_source"] == "metadata.t"


def test_strong_share_knob_uses_calibration_scores() -> None:
    """`strong_share=0` sends nothing up; `strong_share=1` sends everything up."""
    switch = BudgetSwitch.threshold(_fitted_knn(), t=0.6)
    texts, _, _ = _data()
    switch.calibrate(texts, strong_share=0.5)
    router = switch_router(switch)
    low = router.run_sync("proof x", metadata={"budget_switch": {"strong_share": 0.0}})
    high = router.run_sync("say hi", metadata={"budget_switch": {"strong_share": 1.0}})
    assert model_decision(router, low.run_id).chosen == ["cheap"]
    assert model_decision(router, high.run_id).chosen == ["strong"]


def test_first_strong_and_always_policies() -> None:
    """`first_strong(1)`: strong at step 0 then cheap; `always('cheap')`: cheap."""
    switch = BudgetSwitch.first_strong(1)
    ctx = _ctx(switch, step=0)
    assert asyncio.run(switch.route(ctx)).model == "strong"
    assert asyncio.run(switch.route(_ctx(switch, step=1))).model == "cheap"
    always = BudgetSwitch.always("cheap")
    assert asyncio.run(always.route(_ctx(always))).model == "cheap"


def _ctx(switch: BudgetSwitch, reg: ar.Registry | None = None, **fields: Any) -> Any:
    from agentroute.routing import RoutingContext

    reg = reg or switch_registry()
    switch.validate(reg, ["solver"])
    values: dict[str, Any] = {
        "run_id": "r",
        "step": 0,
        "slot": "model",
        "task": "t",
        "registry": reg,
        "candidates": tuple(reg.models),
        "agent": "solver",
    }
    values.update(fields)
    return RoutingContext(**values)


def test_three_tiers_are_ordered_by_price_with_two_thresholds() -> None:
    """Cheap < mid < strong by price; scores between the thresholds pick `mid`."""
    reg = switch_registry(("strong", "cheap", "mid"))
    switch = BudgetSwitch.threshold(_fitted_knn(), t=[0.2, 1.0])
    decision = asyncio.run(switch.route(_ctx(switch, reg, task="proof thing")))
    assert decision.evidence["tiers"] == ["cheap", "mid", "strong"]
    assert decision.model == "mid"


def test_bad_configuration_is_refused() -> None:
    """Unknown tiers, unknown policies, unfitted scorers and missing prices fail clearly."""
    with pytest.raises(ConfigurationError, match="did you mean 'strong'"):
        BudgetSwitch.always("strnog").validate(switch_registry(), [])
    with pytest.raises(ConfigurationError, match="unknown BudgetSwitch policy"):
        BudgetSwitch("sometimes")
    with pytest.raises(ConfigurationError, match="has no data"):
        BudgetSwitch.threshold(KnnScorer(FakeEmbedder())).validate(switch_registry(), [])
    with pytest.raises(ConfigurationError, match="has no data yet"):
        KnnScorer(FakeEmbedder()).score(["x"])
    reg = ar.Registry()
    reg.model("cheap", "nobody/unpriced-model", tier="cheap")
    with pytest.raises(ConfigurationError, match="no price"):
        BudgetSwitch.always("cheap").validate(reg, [])


def test_cold_start_routes_without_a_score_then_learns_from_feedback() -> None:
    """`cold_start='cheap'` compiles unfitted; feedback on runs feeds the kNN memory."""
    scorer = KnnScorer(FakeEmbedder(), k=1)
    router = switch_router(BudgetSwitch.threshold(scorer, t=0.6, cold_start="cheap"))
    res = router.run_sync("proof one")
    assert model_decision(router, res.run_id).evidence["score"] is None
    asyncio.run(router.feedback(res.run_id, score=0.0))
    assert scorer.size == 1


@pytest.mark.parametrize("first_score", [1, 20])
def test_every_scorer_leaves_cold_start_through_feedback(first_score: int) -> None:
    """Started unfitted with `cold_start`, each scorer scores once feedback has come in.

    kNN and the ensemble (kNN alone until fitted) after the first outcome; logistic once it
    has gathered 20 and fitted itself on them. Before, the logistic scorer and the default
    ensemble stayed in cold start forever.
    """
    scorers = {
        "knn": KnnScorer(HashingEmbedder(), k=1),
        "ensemble": EnsembleScorer(HashingEmbedder()),
        "logistic": LogisticScorer(HashingEmbedder()),
    }
    needed = {"knn": 1, "ensemble": 1, "logistic": 20}
    for name, scorer in scorers.items():
        router = switch_router(BudgetSwitch.threshold(scorer, t=0.6, cold_start="cheap"))
        for i in range(first_score):
            res = router.run_sync(f"prove lemma {i}" if i % 2 else f"say hello {i}")
            asyncio.run(router.feedback(res.run_id, score=float(i % 2 == 0)))
        res = router.run_sync("prove lemma 99")
        score = model_decision(router, res.run_id).evidence["score"]
        assert (score is not None) == (first_score >= needed[name]), name
        assert scorer.fitted == (first_score >= needed[name]), name
    scored = scorers["ensemble"].score(["say hello 7"])[0]
    assert scored.evidence["logistic"] == {"fitted": False}
    assert scored.evidence["knn_weight"] == 1.0


def test_a_strong_share_without_calibration_scores_is_said_not_silently_ignored() -> None:
    """`strong_share` needs calibration scores; without them the decision records that.

    The scorer was fitted directly, so the switch has no scores to map a share onto: the
    threshold stays the configured one and `threshold_source` says the knob was ignored.
    After `calibrate(texts)` the same knob moves the threshold.
    """
    texts, cheap, strong = _data()
    scorer = KnnScorer(FakeEmbedder(), k=3).fit(texts, cheap, strong)
    switch = BudgetSwitch.threshold(scorer, t=0.6)
    router = switch_router(switch)
    knob = {"budget_switch": {"strong_share": 1.0}}
    res = router.run_sync("prove lemma 1", metadata=knob)
    evidence = model_decision(router, res.run_id).evidence
    assert evidence["threshold_source"] == "params (strong_share ignored: no calibration scores)"
    switch.calibrate(texts, strong_share=0.5)
    res = router.run_sync("prove lemma 1", metadata=knob)
    assert model_decision(router, res.run_id).evidence["threshold_source"] == (
        "metadata.strong_share"
    )


def test_feedback_reaches_a_switch_that_did_not_route_the_run() -> None:
    """Another router on the same store (another process, or after a restart) learns too.

    Router A routes a run on the strong tier; its feedback goes through router B, whose switch
    never saw the run: B reads what ran from the trace and stores the outcome as a strong one.
    Before, B dropped the feedback.
    """
    store = InMemoryTraceStore()
    texts, cheap, strong = _data()
    scorers = [KnnScorer(FakeEmbedder(), k=3).fit(texts, cheap, strong) for _ in range(2)]
    a, b = (
        switch_router(BudgetSwitch.threshold(s, t=0.0, learn_online=True), store=store)
        for s in scorers
    )
    b.compile()
    res = a.run_sync("prove lemma 77")
    assert model_decision(a, res.run_id).evidence["tier"] == "strong"
    asyncio.run(b.feedback(res.run_id, score=0.25))
    (item,) = scorers[1].online_items
    assert (item.text, item.strong, item.cheap) == ("prove lemma 77", 0.25, None)
    assert scorers[0].online_items == []


def test_a_refused_reservation_downgrades_when_the_prompt_is_longer_than_the_task() -> None:
    """The switch estimates from the task; the agent's long system prompt costs more.

    The strong reservation is refused, the runtime routes the slot again without the refused
    model, and the switch downgrades to the cheap tier, which the budget affords: the run
    completes. Before, the switch picked the refused model again and the run ended
    `budget_exhausted` with the cheap tier affordable.
    """
    reg = ar.Registry()
    for tier, price in (("cheap", 1.0), ("strong", 100.0)):
        reg.model(
            tier,
            f"m/{tier}",
            tier=tier,
            input_price_per_mtok=price,
            output_price_per_mtok=price,
            max_output_tokens=100,
        )

    @reg.agent()
    async def helper(ctx: ar.AgentContext, task: str) -> str:
        """Helps, with a long system prompt."""
        return await ctx.complete(task, system="You are a careful support agent. " * 100)

    router = ar.Router(
        reg,
        agent=Static("helper"),
        model=BudgetSwitch.first_strong(1),
        store=InMemoryTraceStore(),
        client=ScriptedModelClient(default="ok"),
    )
    res = router.run_sync("hi", budget=ar.Budget(usd=0.05))
    assert res.status == "completed"
    first, second = (d for d in router.trace(res.run_id).decisions if d.slot == "model")
    assert (first.evidence["tier"], first.evidence["downgraded"]) == ("strong", False)
    assert (second.evidence["tier"], second.evidence["downgraded"]) == ("cheap", True)
    assert 0 < res.cost_usd < 0.05


def test_yaml_form_builds_and_fits_from_a_file(tmp_path: Path) -> None:
    """`{strategy: budget-switch, params: {...train...}}` builds and fits at compile time."""
    path = tmp_path / "train.jsonl"
    texts, cheap, strong = _data()
    path.write_text(
        "\n".join(
            json.dumps({"text": t, "cheap": c, "strong": s})
            for t, c, s in zip(texts, cheap, strong, strict=True)
        )
    )
    switch = build_strategy(
        {
            "strategy": "budget-switch",
            "params": {"policy": "threshold", "scorer": "knn", "t": 0.6, "train": str(path)},
        }
    )
    assert isinstance(switch, BudgetSwitch)
    switch._embedder = FakeEmbedder()
    router = switch_router(switch)
    res = router.run_sync("proof of it")
    assert model_decision(router, res.run_id).chosen == ["strong"]
    trace = router.trace(res.run_id)
    assert trace.decisions[-1].evidence["policy"] == "threshold"
    assert trace.run.router["model"]["params"]["policy"] == "threshold"


def test_cascade_escalates_when_the_verifier_rejects() -> None:
    """Both answers are model calls in the trace; the verdict is in the agent's metadata."""
    switch = BudgetSwitch.cascade(lambda task, answer: 0.0 if "bad" in answer else 1.0)
    reg = ar.Registry()
    reg.model("cheap", "m/cheap", tier="cheap", input_price_per_mtok=0.1, output_price_per_mtok=1)
    reg.model("strong", "m/strong", tier="strong", input_price_per_mtok=1, output_price_per_mtok=9)

    @reg.agent()
    async def solver(ctx: ar.AgentContext, task: str) -> ar.AgentResult:
        """Cascades."""
        r = await switch.cascade_complete(ctx, task)
        return ar.AgentResult(output=r.answer, metadata={"cascade": r.evidence})

    client = ScriptedModelClient(
        [(lambda req: req.model.name == "cheap", "bad answer")], default="good answer"
    )
    router = ar.Router(
        reg, agent=Static("solver"), model=switch, store=InMemoryTraceStore(), client=client
    )
    res = router.run_sync("question")
    trace = router.trace(res.run_id)
    assert res.answer == "good answer"
    assert [c.model for c in trace.model_calls] == ["cheap", "strong"]
    meta = trace.outputs[0].metadata["cascade"]
    assert meta["verdict"] == 0.0
    assert meta["escalated"] is True


def test_scorers_separate_the_clusters_and_explain() -> None:
    """kNN, logistic and the ensemble all rank 'proof' prompts above the rest."""
    texts, cheap, strong = _data()
    for scorer in (
        KnnScorer(FakeEmbedder()),
        LogisticScorer(FakeEmbedder(), epochs=200),
        EnsembleScorer(FakeEmbedder()),
    ):
        scorer.fit(texts, cheap, strong)
        hard, easy = scorer.score(["proof of theorem 999", "say hello 999"])
        assert hard.value > 0.6 > easy.value, scorer.name
        assert hard.evidence["scorer"] == scorer.name
    assert (
        "features"
        in LogisticScorer(HashingEmbedder(32)).fit(texts, cheap, strong).score(["x"])[0].evidence
    )


class CircleEmbedder:
    """Texts `"p <angle>"` embed on the unit circle: similarity falls smoothly with distance."""

    name = "circle:2"

    def embed(self, texts: Sequence[str]) -> Any:
        angles = np.array([float(t.split()[1]) for t in texts])
        return np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)


def _arc_data(n: int = 200) -> tuple[list[str], list[float], list[float]]:
    """The strong tier helps only on a narrow arc (about 1/10 of the circle)."""
    angles = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    texts = [f"p {a:.6f}" for a in angles]
    cheap = [0.0 if a < 0.6 else 1.0 for a in angles]
    return texts, cheap, [1.0] * n


def test_knn_cross_validation_picks_the_best_weighting_and_reports_it() -> None:
    """With a sharp, local signal the leave-one-out grid prefers similarity-weighted neighbours.

    The chosen setting is the grid's best leave-one-out APGR, its temperature is above 0
    (uniform weights over 40 neighbours blur the arc's edges), and every score's evidence
    reports the temperature used.
    """
    scorer = KnnScorer(CircleEmbedder(), k=40, center=False, multiscale=False)
    scorer.fit(*_arc_data())
    chosen = f"k=40,t={scorer.temperature_},multiscale=False"
    assert scorer.cv_[chosen] == max(scorer.cv_.values())
    assert scorer.temperature_ > 0.0
    assert scorer.cv_[chosen] > scorer.cv_["k=40,t=0.0,multiscale=False"]
    (score,) = scorer.score(["p 0.3"])
    assert score.evidence["temperature"] == scorer.temperature_


def test_knn_cross_validated_apgr_matches_a_direct_leave_one_out() -> None:
    """Every grid entry's recorded APGR equals leave-one-out APGR recomputed for that setting.

    The grid reuses single-scale estimates across multiscale candidates; this pins that the
    reuse never mixes up a size or a temperature.
    """
    texts, cheap, strong = _arc_data(120)
    scorer = KnnScorer(CircleEmbedder(), center=False).fit(texts, cheap, strong)
    vectors = scorer._prep(CircleEmbedder().embed(texts))
    idx, sims = scorer._neighbours(vectors, 2 * max(scorer._KS), exclude_self=True)
    yc, ys = np.asarray(cheap), np.asarray(strong)
    for key, recorded in scorer.cv_.items():
        parts = dict(part.split("=") for part in key.split(","))
        scorer.multiscale_ = parts["multiscale"] == "True"
        pc, ps = scorer._estimate_scales(idx, sims, int(parts["k"]), float(parts["t"]))
        direct = cheap_strong_curve((1 + ps - pc) / 2, yc, ys).apgr()
        assert direct is not None
        assert recorded == pytest.approx(direct, abs=1e-4), key


def test_curve_metrics_random_oracle_and_ties() -> None:
    """Oracle ≫ random ≈ 0.5; all-tied scores give exactly the random diagonal (APGR 0.5)."""
    rng = np.random.default_rng(0)
    cheap = (rng.random(400) < 0.6).astype(float)
    strong = (rng.random(400) < 0.8).astype(float)
    oracle = cheap_strong_curve(strong - cheap, cheap, strong)
    tied = cheap_strong_curve(np.zeros(400), cheap, strong)
    assert tied.apgr() == pytest.approx(0.5)
    assert (oracle.apgr() or 0) > 0.8
    assert (oracle.cpt(0.5) or 1) < (tied.cpt(0.5) or 0)
    same = cheap_strong_curve([1, 2], [0.5, 0.5], [0.5, 0.5])
    assert same.apgr() is None  # no gap to recover: reported as null, never a division error


def test_calibrate_threshold_meets_a_share_or_a_budget() -> None:
    """The chosen t sends at most the target share up (or keeps the mean cost in budget)."""
    scores = np.linspace(0, 1, 101)
    t = calibrate_threshold(scores, strong_share=0.3)
    assert (scores > t).mean() <= 0.3
    t2 = calibrate_threshold(scores, budget_usd=0.2, cheap_cost=0.0, strong_cost=1.0)
    assert (scores > t2).mean() <= 0.2


def test_eval_command_prints_one_json_object(tmp_path: Path) -> None:
    """`agentroute eval cheap-strong --json` gives APGR, CPTs, references, curve and cost."""
    from agentroute.cli import app

    path = tmp_path / "outcomes.jsonl"
    rng = np.random.default_rng(1)
    lines = []
    for i in range(120):
        hard = i % 3 == 0
        lines.append(
            json.dumps(
                {
                    "id": i,
                    "text": f"{'integral proof' if hard else 'hello there'} {i}",
                    "cheap": float(rng.random() < (0.2 if hard else 0.9)),
                    "strong": round(float(rng.random()), 3),
                    "cheap_cost": 0.001,
                    "strong_cost": 0.02,
                }
            )
        )
    path.write_text("\n".join(lines))
    result = CliRunner().invoke(
        app,
        ["eval", "cheap-strong", "--outcomes", str(path), "--embedder", "hashing", "--json"],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    for key in ("apgr", "cpt50", "cpt80", "random_apgr", "oracle_share", "curve"):
        assert key in out
    assert out["curve"][0]["share"] == 0.0
    assert out["curve"][-1]["share"] == 1.0
    assert "cost_to_95pct_strong" in out
    assert load_outcomes(path)[0].cheap_cost == 0.001


def _pair(strong: str = "b/large") -> ar.Registry:
    return switch_registry(models={"cheap": "a/mini", "strong": strong})


def test_default_memory_key_separates_model_pairs_and_shares_one_pair() -> None:
    """Without `key`, switches over the same two models share a memory; other pairs don't.

    Outcomes are facts about a cheap/strong pair: mixing another pair's feedback in would route
    on the wrong model's strengths.
    """
    store = InMemoryTraceStore()

    def switch_on(reg: ar.Registry) -> tuple[BudgetSwitch, KnnScorer]:
        scorer = KnnScorer(FakeEmbedder(), k=1)
        switch = BudgetSwitch.threshold(scorer, t=0.6, cold_start="cheap")
        switch.bind_store(store)
        switch.validate(reg, [])
        return switch, scorer

    first, first_scorer = switch_on(_pair())
    assert first.memory_key == f"budget-switch/memory/a/mini..b/large/{FakeEmbedder().name}"
    assert first.params()["key"] == first.memory_key
    first_scorer.update("proof of it", cheap=0.0, strong=1.0)
    same, same_scorer = switch_on(_pair())
    other, other_scorer = switch_on(_pair("c/huge"))
    assert same.memory_key == first.memory_key
    assert same_scorer.size == 1
    assert other.memory_key == f"budget-switch/memory/a/mini..c/huge/{FakeEmbedder().name}"
    assert other_scorer.size == 0
    explicit = BudgetSwitch.threshold(KnnScorer(FakeEmbedder(), k=1), cold_start="cheap", key="k")
    explicit.bind_store(store)
    explicit.validate(_pair(), [])
    assert explicit.memory_key == "k"
    ensemble = BudgetSwitch.threshold(EnsembleScorer(HashingEmbedder()), cold_start="cheap")
    ensemble.bind_store(store)
    ensemble.validate(_pair(), [])
    assert ensemble.memory_key == f"budget-switch/memory/a/mini..b/large/{HashingEmbedder().name}"


def test_a_key_holding_something_else_is_a_configuration_error() -> None:
    """A memory key that holds another kind of state fails compile clearly and binds nothing."""
    store = InMemoryTraceStore()
    store.put_state("taken", {"format": "agentroute.ant-colony/2"}, expected_version=None)
    scorer = KnnScorer(FakeEmbedder(), k=1)
    switch = BudgetSwitch.threshold(scorer, cold_start="cheap", key="taken")
    switch.bind_store(store)
    with pytest.raises(ConfigurationError, match="'taken' is not a usable kNN memory"):
        switch.validate(_pair(), [])
    assert scorer.memory_book is None
    assert switch.memory_key is None
    scorer.update("proof of it", cheap=0.0, strong=1.0)
    assert scorer.size == 1


async def test_a_score_computed_across_a_learning_update_is_not_cached() -> None:
    """A score that was being computed while feedback changed the memory is used, not kept."""
    import threading

    release = threading.Event()
    scorer = _fitted_knn()
    real_score = scorer.score

    def slow_score(texts: Any) -> Any:
        release.wait(5)
        return real_score(texts)

    scorer.score = slow_score  # type: ignore[method-assign]
    switch = BudgetSwitch.threshold(scorer, t=0.6)
    pending = asyncio.create_task(switch._score("proof of it"))
    await asyncio.sleep(0.01)
    switch._clear_scores()  # what `learn` does once an outcome is in the memory
    release.set()
    assert (await pending).value > 0.5
    assert "proof of it" not in switch._score_cache
    await switch._score("proof of it")
    assert "proof of it" in switch._score_cache
