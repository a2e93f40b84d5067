"""The ensemble's lexical member: TF-IDF neighbours over past prompts, weighted on train only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from agentroute.errors import ConfigurationError
from agentroute.routing._difficulty import EnsembleScorer
from agentroute.routing._difficulty_eval import cheap_strong_curve
from agentroute.routing._difficulty_lexical import LexicalNeighbours


class NoiseEmbedder:
    """An embedder that knows nothing: seeded random unit vectors, one per call position."""

    name = "noise"

    def __init__(self) -> None:
        self._rng = np.random.default_rng(0)

    def embed(self, texts: Sequence[str]) -> Any:
        """Random unit vectors, unrelated to the texts."""
        x = self._rng.normal(size=(len(texts), 16)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)


WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]


def _data(n: int, seed: int) -> tuple[list[str], list[float], list[float]]:
    """Prompts whose difficulty shows only in one word (`theorem` vs `message`).

    Same length, same layout, no symbols: the text features cannot tell them apart.
    """
    rng = np.random.default_rng(seed)
    texts, cheap, strong = [], [], []
    for i in range(n):
        hard = i % 3 == 0
        filler = " ".join(rng.choice(WORDS, size=5))
        texts.append(f"write the {'theorem' if hard else 'message'} {filler}")
        cheap.append(0.0 if hard else 1.0)
        strong.append(1.0)
    return texts, cheap, strong


def _apgr(
    scorer: EnsembleScorer, texts: list[str], cheap: list[float], strong: list[float]
) -> float:
    values = np.array([s.value for s in scorer.score(texts)])
    curve = cheap_strong_curve(values, np.array(cheap), np.array(strong))
    value = curve.apgr()
    assert value is not None
    return value


def test_the_lexical_member_carries_a_signal_the_embeddings_miss() -> None:
    """With uninformative embeddings, cross-validation gives the lexical member weight.

    The blend then ranks held-out hard prompts (marked only by one word) above easy ones, far
    better than the same ensemble without it; the decision evidence shows the lexical
    estimate, and the params record the chosen weight and neighbourhood size.
    """
    train, test = _data(150, seed=0), _data(60, seed=1)
    with_lexical = EnsembleScorer(NoiseEmbedder(), stack=False).fit(*train)
    without = EnsembleScorer(NoiseEmbedder(), stack=False, lexical=False).fit(*train)
    assert with_lexical.lexical_weight_ > 0
    assert without.lexical_weight_ == 0
    assert _apgr(with_lexical, *test) > _apgr(without, *test) + 0.2
    hard, easy = with_lexical.score(
        ["write the theorem omega beta", "write the message omega beta"]
    )
    assert hard.value > easy.value
    lexical = hard.evidence["lexical"]
    assert lexical["p_cheap"] < easy.evidence["lexical"]["p_cheap"]
    assert lexical["best_similarity"] > 0
    params = with_lexical.params()
    assert params["lexical_weight_chosen"] == with_lexical.lexical_weight_
    assert params["lexical"]["k_chosen"] in (50, 100)  # sizes below the 150 training prompts
    assert "lexical" not in without.score(["write the theorem"])[0].evidence


def test_leave_one_out_estimates_exclude_the_prompts_own_row() -> None:
    """A prompt that shares no term with any other gets the prior (the memory's mean).

    Its own row is never a neighbour; its label reaches it only through that mean.
    """
    texts = ["apple banana", "apple banana", "cherry apple", "zebra quokka"]
    cheap = np.array([1.0, 1.0, 1.0, 0.0])
    strong = np.ones(4)
    lex = LexicalNeighbours(k=2, prior=2.0, min_df=1)
    loo = lex.fit(texts, cheap, strong)
    pc, _ = loo[2]
    # The lone prompt's neighbours share nothing (similarity 0), so only the prior speaks.
    assert pc[3] == pytest.approx(cheap.mean())
    # The duplicates read each other (label 1), pulled a little towards the mean by the prior.
    assert cheap.mean() < pc[0] < 1.0


@dataclass(frozen=True)
class _Item:
    id: str
    text: str
    cheap: float | None
    strong: float | None


def test_online_rows_are_added_kept_and_dropped_with_the_memory() -> None:
    """Outcomes learned online move estimates; a kept outcome is not vectorised again.

    When the memory drops an outcome, its row leaves the lexical memory too. (Only words known
    at `fit` count: the online prompts reuse the training vocabulary.)
    """
    texts, cheap, strong = _data(60, seed=0)
    lex = LexicalNeighbours(k=5, min_df=1)
    lex.fit(texts, np.array(cheap), np.array(strong))
    query = ["kappa kappa kappa sigma"]
    before = lex.predict(query)[0][0]
    items = [_Item(f"o{i}", "kappa kappa kappa sigma", 0.0, 1.0) for i in range(5)]
    lex.set_online(items)
    after = lex.predict(query)[0][0]
    assert after < before - 0.3
    calls: list[int] = []
    assert lex._state is not None
    vectorizer = lex._state.vectorizer
    original = vectorizer.transform

    def counting(batch: list[str]) -> Any:
        calls.append(len(batch))
        return original(batch)

    vectorizer.transform = counting
    lex.set_online([*items, _Item("o5", "omega omega theta", 0.0, 1.0)])
    assert calls == [1]
    lex.set_online([])
    assert lex.predict(query)[0][0] == pytest.approx(before)
    assert lex.params()["online_memory"] == 0


def test_ensemble_feedback_reaches_the_lexical_member() -> None:
    """`EnsembleScorer.update` adds the outcome to the lexical rows when that member has weight."""
    train = _data(150, seed=0)
    scorer = EnsembleScorer(NoiseEmbedder(), stack=False, lexical_weight=0.9).fit(*train)
    prompt = "kappa kappa kappa sigma sigma"
    before = scorer.score([prompt])[0].evidence["lexical"]["p_cheap"]
    for _ in range(6):
        scorer.update(prompt, cheap=0.0, strong=1.0)
    after = scorer.score([prompt])[0].evidence["lexical"]["p_cheap"]
    assert after < before - 0.15
    assert scorer.lexical is not None
    assert scorer.lexical.params()["online_memory"] == 6


@pytest.mark.parametrize("bad", [-0.1, 1.5, "most", None, True])
def test_a_bad_lexical_weight_is_a_configuration_error(bad: Any) -> None:
    """`lexical_weight` outside [0, 1] (or not `"auto"`, or a bool) is refused by name."""
    with pytest.raises(ConfigurationError, match="lexical_weight"):
        EnsembleScorer(NoiseEmbedder(), lexical_weight=bad)


@pytest.mark.parametrize(
    ("options", "named"),
    [({"k": 0}, "k must"), ({"ks": []}, "ks must"), ({"prior": -1}, "prior"), ({"kk": 5}, "kk")],
)
def test_bad_lexical_options_are_configuration_errors(options: dict[str, Any], named: str) -> None:
    """Bad or unknown lexical options fail at construction, naming what was wrong."""
    with pytest.raises(ConfigurationError, match=named):
        EnsembleScorer(NoiseEmbedder(), lexical=options)


@pytest.mark.parametrize("n", [10, 60])
def test_one_tier_per_prompt_still_fits(n: int) -> None:
    """Feedback-style data (each prompt has one tier's outcome, never both) fits and scores.

    The cheap labels carry the same signal as elsewhere, but no prompt has both outcomes, so
    no gain can be cross-validated and the lexical member keeps weight 0, under the 40-prompt
    minimum (10) and above it (60).
    """
    texts, labels, _ = _data(n, seed=0)
    cheap = [labels[i] if i % 2 == 0 else None for i in range(n)]
    strong = [None if i % 2 == 0 else 1.0 for i in range(n)]
    scorer = EnsembleScorer(NoiseEmbedder()).fit(texts, cheap, strong)
    assert scorer.lexical_weight_ == 0
    assert len(scorer.score(["write the theorem"])) == 1


def test_a_fixed_knn_weight_still_cross_validates_the_lexical_share() -> None:
    """With `weight` fixed, `lexical_weight="auto"` is still chosen by cross-validation."""
    scorer = EnsembleScorer(NoiseEmbedder(), weight=0.5, stack=False).fit(*_data(150, seed=0))
    assert scorer.weight_ == 0.5
    assert scorer.lexical_weight_ > 0


def test_the_stacker_leaves_the_lexical_member_at_zero_weight() -> None:
    """When the stacker is used it reads no lexical feature, so the params say weight 0."""
    scorer = EnsembleScorer(NoiseEmbedder(), stack=True).fit(*_data(150, seed=0))
    assert scorer.stacker_ is not None
    assert scorer.lexical_weight_ == 0
    assert scorer.params()["lexical_weight_chosen"] == 0
    assert "lexical" not in scorer.score(["write the theorem"])[0].evidence


def test_without_scikit_learn_the_default_ensemble_fits_without_its_lexical_member(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A missing scikit-learn drops the lexical member of the default ensemble.

    The ensemble fits as it did before the member existed; asking for the member explicitly
    raises an ImportError naming the extra to install.
    """
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.feature_extraction.text", None)
    data = _data(150, seed=0)
    scorer = EnsembleScorer(NoiseEmbedder(), stack=False).fit(*data)
    assert scorer.lexical_weight_ == 0
    assert len(scorer.score(["write the theorem"])) == 1
    with pytest.raises(ImportError, match="pip install"):
        EnsembleScorer(NoiseEmbedder(), lexical={"k": 50}).fit(*data)


def test_tiny_or_empty_training_data_leaves_the_lexical_member_out() -> None:
    """Under 40 prompts nothing is cross-validated: the lexical weight stays 0 and scoring works.

    Prompts with no word at all (punctuation is a term, whitespace is not) still fit.
    """
    scorer = EnsembleScorer(NoiseEmbedder()).fit(
        ["  ", "?", "hard one"], [1.0, 0.0, 0.0], [1, 1, 1]
    )
    assert scorer.lexical_weight_ == 0
    assert len(scorer.score(["anything"])) == 1
    lone = LexicalNeighbours(min_df=1)
    lone.fit(["   ", " "], np.array([1.0, 0.0]), np.array([1.0, 1.0]))
    pc, _, best = lone.predict(["   "])
    assert pc[0] == pytest.approx(0.5)  # no term anywhere: the prior, the mean of [1, 0]
    assert best[0] == 0.0
