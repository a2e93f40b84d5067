"""Stacking for the ensemble difficulty scorer: a ridge regression over its members' estimates.

The ensemble's members give, for each prompt, several estimates of both tiers' quality: the kNN
member at several neighbourhood sizes (a small k sees local structure, a large k is stable),
the neighbourhood's density, and the logistic member's prediction. A `Stacker` learns from
out-of-fold estimates (leave-one-out kNN, k-fold logistic) how much to trust each, per tier: two
ridge regressions on the same standardised features, so the predicted gain is linear in them and
each feature's share of it can be reported as evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Stacker", "cross_predict"]

_F = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Stacker:
    """Two ridge regressions (cheap quality, strong quality) over named features.

    Attributes:
        names: Feature names, in column order.
        mean: Feature means (standardisation).
        scale: Feature standard deviations (standardisation).
        coef: `(len(names), 2)` weights on the standardised features (cheap, strong).
        bias: `(2,)` intercepts (cheap, strong).
    """

    names: tuple[str, ...]
    mean: _F
    scale: _F
    coef: _F
    bias: _F

    @classmethod
    def fit(
        cls, names: Sequence[str], features: _F, cheap: _F, strong: _F, alpha: float
    ) -> Stacker:
        """Fit on rows where both tiers were observed; `alpha` is the ridge penalty per row."""
        mean = features.mean(axis=0)
        scale = features.std(axis=0) + 1e-9
        z = (features - mean) / scale
        y = np.stack([cheap, strong], axis=1)
        zc = z - z.mean(axis=0)
        yc = y - y.mean(axis=0)
        gram = zc.T @ zc + alpha * len(z) * np.eye(z.shape[1])
        coef = np.linalg.solve(gram, zc.T @ yc)
        bias = y.mean(axis=0) - z.mean(axis=0) @ coef
        return cls(tuple(names), mean, scale, coef, bias)

    def predict(self, features: _F) -> tuple[_F, _F]:
        """Predicted cheap and strong quality, clipped to [0, 1]."""
        out = np.clip(((features - self.mean) / self.scale) @ self.coef + self.bias, 0.0, 1.0)
        return out[:, 0], out[:, 1]

    def contributions(self, row: _F) -> dict[str, float]:
        """Each feature's share of the predicted gain (strong − cheap) for one prompt."""
        z = (row - self.mean) / self.scale
        gain = z * (self.coef[:, 1] - self.coef[:, 0])
        return {n: round(float(g), 4) for n, g in zip(self.names, gain, strict=True)}


def cross_predict(
    names: Sequence[str],
    features: _F,
    cheap: _F,
    strong: _F,
    *,
    alpha: float,
    folds: int,
    seed: int,
) -> tuple[_F, _F]:
    """Out-of-fold cheap and strong predictions of stackers fitted on the other folds."""
    n = len(features)
    pc, ps = np.zeros(n), np.zeros(n)
    assign = np.random.default_rng(seed).permutation(n) % folds
    for f in range(folds):
        train, test = assign != f, assign == f
        model = Stacker.fit(names, features[train], cheap[train], strong[train], alpha)
        pc[test], ps[test] = model.predict(features[test])
    return pc, ps
