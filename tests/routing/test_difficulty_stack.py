"""The ensemble's stacker: ridge regressions over the members' estimates, chosen on train only."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from agentroute.errors import ConfigurationError
from agentroute.routing import _difficulty
from agentroute.routing._difficulty import EnsembleScorer
from agentroute.routing._difficulty_features import HashingEmbedder
from agentroute.routing._difficulty_stack import Stacker, cross_predict
from agentroute.stores import InMemoryTraceStore
from tests.routing.conftest import difficulty_data as _data


def test_the_stacker_learns_which_feature_predicts_the_gain() -> None:
    """With the gain driven by feature 0 and feature 1 pure noise, feature 0 gets the weight.

    Its contribution dominates the reported evidence, and the out-of-fold predictions rank
    high-gain rows above low-gain rows.
    """
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 2))
    strong = (features[:, 0] > 0).astype(float)
    cheap = np.zeros(400)
    model = Stacker.fit(["signal", "noise"], features, cheap, strong, alpha=0.01)
    share = model.contributions(np.array([2.0, 2.0]))
    assert share["signal"] > 0.3
    assert abs(share["noise"]) < 0.05
    pc, ps = cross_predict(
        ["signal", "noise"], features, cheap, strong, alpha=0.01, folds=5, seed=0
    )
    gain = ps - pc
    assert gain[strong == 1].min() > gain[strong == 0].max() - 0.5
    assert gain[strong == 1].mean() > gain[strong == 0].mean() + 0.5
    assert ((pc >= 0) & (pc <= 1) & (ps >= 0) & (ps <= 1)).all()


def test_a_forced_stacker_scores_with_stack_evidence() -> None:
    """`stack=True` fits the stacker; scores rank hard prompts up and name the top features."""
    scorer = EnsembleScorer(HashingEmbedder(), stack=True).fit(*_data())
    assert scorer.stacker_ is not None
    assert scorer.params()["stack_chosen"] is True
    assert "stack" in scorer.cv_
    hard, easy = scorer.score(["prove the theorem about primes 999", "greet the user 999"])
    assert hard.value > easy.value
    assert 1 <= len(hard.evidence["stack"]) <= 4
    assert hard.evidence["knn"]["neighbours"]
    assert "knn_weight" not in hard.evidence


def test_without_the_stacker_the_weighted_mean_is_used() -> None:
    """`stack=False` keeps the weighted mean: no stacker, the kNN weight in the evidence."""
    scorer = EnsembleScorer(HashingEmbedder(), stack=False).fit(*_data())
    assert scorer.stacker_ is None
    score = scorer.score(["prove the theorem about primes 999"])[0]
    assert score.evidence["knn_weight"] == scorer.weight_
    assert "stack" not in score.evidence


def test_auto_picks_the_blend_with_the_better_out_of_fold_apgr() -> None:
    """`stack="auto"` uses the stacker exactly when its cross-validated APGR beats the blend's."""
    scorer = EnsembleScorer(HashingEmbedder()).fit(*_data())
    blend = max(v for k, v in scorer.cv_.items() if k.startswith("weight="))
    assert (scorer.stacker_ is not None) == (scorer.cv_["stack"] > blend)


def test_a_bad_stack_option_is_refused() -> None:
    """`stack` must be True, False or 'auto'."""
    with pytest.raises(ConfigurationError, match="stack must be"):
        EnsembleScorer(HashingEmbedder(), stack="sometimes")


def test_asking_for_the_stacker_where_it_cannot_be_fitted_is_an_error() -> None:
    """`stack=True` with a fixed weight, or with too few prompts, is refused, never ignored."""
    with pytest.raises(ConfigurationError, match="needs weight='auto'"):
        EnsembleScorer(HashingEmbedder(), stack=True, weight=0.5)
    texts, cheap, strong = _data(30)
    scorer = EnsembleScorer(HashingEmbedder(), stack=True, knn={"k": 5})
    with pytest.raises(ConfigurationError, match="40 or more training prompts"):
        scorer.fit(texts, cheap, strong)


def test_a_refit_on_too_little_data_drops_the_earlier_stacker() -> None:
    """A stacker fitted on earlier data does not outlive a refit too small to choose again."""
    scorer = EnsembleScorer(HashingEmbedder(), stack=True).fit(*_data())
    assert scorer.stacker_ is not None
    scorer.stack = "auto"
    texts, cheap, strong = _data(30)
    scorer.fit(texts, cheap, strong)
    assert scorer.stacker_ is None
    assert scorer.cv_ == {}
    assert scorer.weight_ == 0.5
    assert "stack" not in scorer.score(["prove the theorem about primes 1"])[0].evidence


def test_the_logistic_replay_set_stays_as_small_as_the_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outcomes reach the logistic member once each; ids that left the memory are forgotten."""
    scorer = EnsembleScorer(HashingEmbedder(), knn={"memory_limit": 3}).fit(*_data(60))
    learned: list[str] = []
    update = scorer.logistic.update

    def counting(text: str, **labels: Any) -> None:
        learned.append(text)
        update(text, **labels)

    monkeypatch.setattr(scorer.logistic, "update", counting)
    for i in range(10):
        scorer.update(f"prove lemma {i}", cheap=0.0, strong=1.0)
    assert learned == [f"prove lemma {i}" for i in range(10)]
    assert scorer._replayed == {item.id for item in scorer.knn.online_items}
    assert len(scorer._replayed) == 3


def test_a_stacked_score_searches_once_and_the_stacker_reads_the_searched_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the stacker on, one neighbour search per scored batch serves the kNN member and it.

    An update landing right after that search does not reach the stacker: it reads the memory
    object the search read, whose version the score records (was: a second search of whatever
    memory was current by then).
    """
    scorer = EnsembleScorer(HashingEmbedder(), stack=True).fit(*_data())
    scorer.bind_store(InMemoryTraceStore(), "budget-switch/test-memory")
    knn = scorer.knn
    searched: list[Any] = []
    read: list[Any] = []
    search, features = knn._neighbours, scorer._stack_features

    def counting_search(queries: Any, k: int, *, exclude_self: bool, mem: Any = None) -> Any:
        searched.append(mem)
        found = search(queries, k, exclude_self=exclude_self, mem=mem)
        if len(searched) == 1:
            knn.update("prove the lemma about squares", cheap=0.0, strong=1.0)
        return found

    def reading_features(idx: Any, sims: Any, members: Any, mem: Any) -> Any:
        read.append(mem)
        return features(idx, sims, members, mem)

    monkeypatch.setattr(knn, "_neighbours", counting_search)
    monkeypatch.setattr(scorer, "_stack_features", reading_features)
    first = scorer.score(["prove the theorem about primes 999", "greet the user 999"])
    assert len(searched) == 1
    assert read[0] is searched[0]
    assert [s.memory_version for s in first] == [searched[0].version] * 2 == [0, 0]
    assert knn.memory_version == 1
    later = scorer.score(["prove the theorem about primes 998", "greet the user 998", "hi"])
    assert len(searched) == 2
    assert read[1] is searched[1]
    assert {s.memory_version for s in later} == {searched[1].version} == {1}


def test_the_knn_label_means_are_computed_once_per_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kNN prior's label means are computed once per memory object, not per estimate.

    A stacked score makes nine kNN estimates (three scales, six stacker sizes); the memory's
    two means (cheap, strong) are computed for the first and reused, and computed again only
    for the memory object an update puts in its place.
    """
    scorer = EnsembleScorer(HashingEmbedder(), stack=True).fit(*_data())
    computed: list[float] = []
    mean = _difficulty.label_mean

    def counting_mean(labels: Any) -> float:
        computed.append(mean(labels))
        return computed[-1]

    monkeypatch.setattr(_difficulty, "label_mean", counting_mean)
    scorer.score(["prove the theorem about primes 999"])
    scorer.score(["greet the user 999", "greet the user 998"])
    assert computed == [pytest.approx(2 / 3), 1.0]
    scorer.update("greet the user 997", cheap=1.0, strong=1.0)
    scorer.score(["greet the user 996"])
    assert computed[2:] == [pytest.approx(81 / 121), 1.0]


def test_fit_reuses_the_knn_search_without_changing_any_choice() -> None:
    """The ensemble reads the kNN member's own leave-one-out search instead of searching again.

    Every cross-validated score, the chosen weights and the stacker's verdict equal those of a
    fit that searches afresh; the kept search is released afterwards (it can be tens of MB).
    """
    texts, cheap, strong = _data(160)
    reused = EnsembleScorer(HashingEmbedder(), lexical=False).fit(texts, cheap, strong)
    fresh = EnsembleScorer(HashingEmbedder(), lexical=False)
    fresh.knn._keep_fit_search = False
    fresh.fit(texts, cheap, strong)
    assert reused.cv_ == fresh.cv_
    assert "stack" in reused.cv_
    assert (reused.weight_, reused.stacker_ is None) == (fresh.weight_, fresh.stacker_ is None)
    assert reused.knn._fit_search is None
    assert fresh.knn._fit_search is None
