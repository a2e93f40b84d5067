"""The nearest-neighbour arithmetic both kNN difficulty members share.

`KnnScorer` (embedding cosines) and `LexicalNeighbours` (TF-IDF cosines) differ in how they
measure similarity, not in what they do with it: take each query's `k` most similar past
prompts, and estimate each tier's quality as a weighted mean of their observed outcomes, shrunk
towards the memory's mean.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["label_mean", "shrunk_mean", "top_k"]

_F = npt.NDArray[np.float64]


def label_mean(labels: _F) -> float:
    """Mean observed quality (NaN = unobserved); 0.5 when nothing was observed."""
    return float(np.nanmean(labels)) if (~np.isnan(labels)).any() else 0.5


def top_k(block: Any, k: int, self_offset: int | None = None) -> tuple[Any, Any]:
    """Columns of the `k` largest similarities in each row of `block`, most similar first.

    Args:
        block: Dense `(queries, memory)` similarities; edited when `self_offset` is given.
        k: Neighbours per row, `1 <= k <= ` the columns left to choose from.
        self_offset: Row `r` is memory row `r + self_offset`, which is excluded (leave-one-out).

    Returns:
        `(indices, similarities)`, each `(queries, k)`.
    """
    if self_offset is not None:
        rows = np.arange(block.shape[0])
        block[rows, rows + self_offset] = -np.inf
    part = np.argpartition(-block, k - 1, axis=1)[:, :k]
    part_sims = np.take_along_axis(block, part, axis=1)
    order = np.argsort(-part_sims, axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_sims, order, axis=1)


def shrunk_mean(labels: _F, weights: _F, prior: float, mean: float) -> _F:
    """Per row, the weighted mean of the observed `labels` with `prior` pseudo-rows at `mean`.

    `labels` and `weights` are `(queries, k)`; a NaN label (that tier unobserved) weighs 0.
    A row with no weight and no prior gets `mean`.
    """
    w = np.where(np.isnan(labels), 0.0, weights)
    num = (w * np.nan_to_num(labels)).sum(axis=1) + prior * mean
    den = w.sum(axis=1) + prior
    out: _F = np.where(den > 0, num / np.where(den > 0, den, 1.0), mean)
    return out
