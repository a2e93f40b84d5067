"""The ensemble's weighted mean: CV-chosen weights shrunk towards equal shares, tuned penalty."""

from __future__ import annotations

from typing import Any

import pytest

from agentroute.errors import ConfigurationError
from agentroute.routing._difficulty import EnsembleScorer, LogisticScorer, _shrunk
from agentroute.routing._difficulty_features import HashingEmbedder
from tests.routing.conftest import difficulty_data as _data


def _shares(knn_weight: float, lexical_weight: float) -> list[float]:
    rest = 1 - lexical_weight
    return [rest * knn_weight, rest * (1 - knn_weight), lexical_weight]


def test_shrinking_moves_the_three_shares_towards_a_third_each() -> None:
    """Both weights chosen: each member's share moves the given fraction of the way to 1/3.

    0 keeps the chosen weights, 1 gives equal shares, and the shares always sum to one.
    """
    chosen = (1.0, 0.0)  # all weight on kNN
    for amount in (0.0, 0.5, 1.0):
        wt, lw = _shrunk(*chosen, amount, knn_chosen=True, lexical_chosen=True)
        shares = _shares(wt, lw)
        expected = [(1 - amount) * s + amount / 3 for s in _shares(*chosen)]
        assert shares == pytest.approx(expected)
        assert sum(shares) == pytest.approx(1.0)


def test_only_the_weights_chosen_by_cross_validation_move() -> None:
    """A weight the user gave stays; the chosen one moves towards its own equal value."""
    assert _shrunk(0.9, 0.7, 0.5, knn_chosen=True, lexical_chosen=False) == pytest.approx(
        (0.7, 0.7)
    )
    assert _shrunk(0.9, 0.0, 0.5, knn_chosen=False, lexical_chosen=True) == pytest.approx(
        (0.9, 1 / 6)
    )
    assert _shrunk(0.9, 0.7, 0.5, knn_chosen=False, lexical_chosen=False) == (0.9, 0.7)


def test_the_ensemble_records_the_chosen_weights_and_uses_the_shrunk_ones() -> None:
    """`blend_cv_` keeps the cross-validation's choice; `weight_` is it, shrunk by `shrinkage`.

    With `shrinkage=0` the ensemble uses the chosen weights as they are; params report both.
    """
    data = _data()
    plain = EnsembleScorer(HashingEmbedder(), stack=False, lexical=False, shrinkage=0.0)
    plain.fit(*data)
    assert plain.weight_ == plain.blend_cv_["weight"]
    shrunk = EnsembleScorer(HashingEmbedder(), stack=False, lexical=False).fit(*data)
    assert shrunk.blend_cv_ == plain.blend_cv_
    assert shrunk.weight_ == pytest.approx((plain.weight_ + 0.5) / 2)
    params = shrunk.params()
    assert params["shrinkage"] == 0.5
    assert params["blend_cv"] == shrunk.blend_cv_
    assert params["weight_chosen"] == shrunk.weight_


def test_given_weights_are_not_shrunk() -> None:
    """A fixed `weight` (and no lexical member) leaves nothing to choose: the weight is used."""
    scorer = EnsembleScorer(HashingEmbedder(), weight=0.8, lexical=False).fit(*_data())
    assert scorer.weight_ == 0.8
    assert scorer.blend_cv_ == {}


@pytest.mark.parametrize("bad", [-0.1, 1.5, True, "half"])
def test_a_bad_shrinkage_is_a_configuration_error(bad: Any) -> None:
    """`shrinkage` outside [0, 1] (or a bool, or not a number) is refused by name."""
    with pytest.raises(ConfigurationError, match="shrinkage"):
        EnsembleScorer(HashingEmbedder(), shrinkage=bad)


def test_the_logistic_penalty_is_chosen_by_cross_validation_unless_given() -> None:
    """Every candidate penalty per row is scored out of fold and one becomes the member's.

    The final logistic fit uses it (its params report it); a refit too small to
    cross-validate goes back to the plain default, and an `l2` the user gave is kept.
    """
    scorer = EnsembleScorer(HashingEmbedder(), stack=False, lexical=False).fit(*_data())
    tried = {k for k in scorer.cv_ if k.startswith("logistic_l2_per_row=")}
    assert tried == {f"logistic_l2_per_row={r}" for r in EnsembleScorer._L2_PER_ROW}
    chosen = scorer.logistic._default_row_l2
    assert chosen in EnsembleScorer._L2_PER_ROW
    assert scorer.logistic.params()["l2_per_row"] == pytest.approx(chosen)
    scorer.fit(*_data(30))
    assert scorer.logistic._default_row_l2 == LogisticScorer._DEFAULT_ROW_L2
    given = EnsembleScorer(HashingEmbedder(), stack=False, lexical=False, logistic={"l2": 3.0})
    given.fit(*_data())
    assert not any(k.startswith("logistic_l2_per_row=") for k in given.cv_)
    assert given.logistic.params()["l2_per_row"] == pytest.approx(3.0 / 120)
