"""Fitting `FeatureReranker` weights: listwise softmax loss, then a logistic calibration.

```python
from agentroute.routing.skills import (
    FeatureReranker, fit_feature_reranker, save_weights, training_lists,
)

lists = training_lists(index, [(query, {gold ids}), ...], k=30)
save_weights(fit_feature_reranker(lists), "my-reranker.json")
reranker = FeatureReranker("my-reranker.json")
```
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from agentroute.routing.skills._index import SkillIndex
from agentroute.routing.skills._rerank import FEATURES, candidate_features
from agentroute.routing.skills._text import QueryTokens

__all__ = ["fit_feature_reranker", "save_weights", "training_lists"]

FeatureList = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]


def training_lists(
    index: SkillIndex,
    examples: Iterable[tuple[str, set[str]]],
    *,
    k: int = 30,
) -> list[FeatureList]:
    """Stage-1 candidate lists with features and 0/1 labels, one per query.

    Queries whose gold skills are all missing from the top `k` teach nothing and are skipped.
    """
    out: list[FeatureList] = []
    for query, gold in examples:
        tokens = QueryTokens(query)
        cands = index.search(tokens, k)
        labels = np.array([1.0 if c.id in gold else 0.0 for c in cands])
        if labels.sum() == 0 or labels.sum() == len(labels):
            continue
        out.append((candidate_features(tokens, cands, index), labels))
    return out


def fit_feature_reranker(
    lists: Sequence[FeatureList],
    *,
    l2: float = 1e-3,
    steps: int = 800,
    lr: float = 0.05,
    list_weights: Sequence[float] | None = None,
    version: str = "custom",
    trained_on: str = "",
) -> dict[str, Any]:
    """Fit a linear listwise reranker and its calibration; returns the weights mapping.

    Loss per list: cross-entropy between the softmax of the scores and the uniform
    distribution over the gold candidates (ListNet with one-hot targets, the SkillRouter
    objective), plus `l2` times the squared weights. Adam, full batch.

    Args:
        lists: `(features, labels)` per query, from `training_lists`.
        l2: L2 penalty on the weights.
        steps: Adam steps.
        lr: Adam learning rate.
        list_weights: Relative weight of each list in the loss and in the calibration
            (default equal). To give several datasets equal say whatever their sizes, weight
            each list `1 / (lists in its dataset)`.
        version: Recorded in the weights.
        trained_on: A description of the training data, recorded in the weights.

    Raises:
        ValueError: No lists, or `list_weights` of the wrong length or not positive.
    """
    if not lists:
        msg = "no training list has both a gold and a non-gold candidate"
        raise ValueError(msg)
    wq = np.ones(len(lists)) if list_weights is None else np.asarray(list_weights, dtype=float)
    if wq.shape != (len(lists),) or not bool((wq > 0).all()):
        msg = f"list_weights needs one positive weight per list ({len(lists)})"
        raise ValueError(msg)
    wq = wq / wq.sum()
    x_all = np.concatenate([x for x, _ in lists])
    mean = x_all.mean(axis=0)
    scale = x_all.std(axis=0)
    scale[scale < 1e-9] = 1.0
    # Pad the lists into one (lists, width, features) array so each step is a few matmuls.
    width = max(len(y) for _, y in lists)
    xs = np.zeros((len(lists), width, x_all.shape[1]))
    ys = np.zeros((len(lists), width))
    valid = np.zeros((len(lists), width), dtype=bool)
    for i, (x, y) in enumerate(lists):
        xs[i, : len(y)] = (x - mean) / scale
        ys[i, : len(y)] = y / y.sum()
        valid[i, : len(y)] = True
    w = np.zeros(x_all.shape[1])
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t in range(1, steps + 1):
        s = np.where(valid, xs @ w, -np.inf)
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        grad = np.einsum("lwf,lw->f", xs, (p - ys) * wq[:, None]) + l2 * 2 * w
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        w -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    scores = (xs @ w)[valid]
    labels = ys[valid]
    # Each list's candidates share its weight, so a large dataset does not set the threshold.
    sample = np.broadcast_to((wq * len(lists))[:, None], valid.shape)[valid]
    calibration = _fit_logistic(scores, labels, sample)
    return {
        "version": version,
        "features": list(FEATURES),
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "coef": w.tolist(),
        "calibration": list(calibration),
        "trained_on": trained_on,
        "lists": len(lists),
        "objective": f"listwise softmax cross-entropy, l2={l2:g}"
        + (", weighted lists" if list_weights is not None else ""),
    }


def _fit_logistic(
    scores: npt.NDArray[np.float64],
    labels: npt.NDArray[np.float64],
    sample: npt.NDArray[np.float64] | None = None,
) -> tuple[float, float]:
    """`P(relevant) = sigmoid(a·score + b)` by weighted Newton's method."""
    y = (labels > 0).astype(np.float64)
    sw = np.ones_like(y) if sample is None else sample
    a, b = 1.0, 0.0
    lam = 1e-2
    for _ in range(100):
        z = np.clip(a * scores + b, -30, 30)
        p = 1 / (1 + np.exp(-z))
        g = np.array([(sw * (p - y) * scores).sum() + lam * a, (sw * (p - y)).sum()])
        wgt = sw * p * (1 - p) + 1e-9
        h = np.array(
            [
                [(wgt * scores * scores).sum() + lam, (wgt * scores).sum()],
                [(wgt * scores).sum(), wgt.sum() + 1e-6],
            ]
        )
        step = np.clip(np.linalg.solve(h, g), -1.0, 1.0)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-8:
            break
    # A positive, bounded slope keeps relevance monotone in the score and never saturated
    # (saturated relevances would tie and lose the ranking).
    return float(np.clip(a, 1e-3, 10.0)), float(b)


def save_weights(weights: dict[str, Any], path: str | Path) -> Path:
    """Write weights as indented JSON."""
    target = Path(path)
    target.write_text(json.dumps(weights, indent=2) + "\n", encoding="utf-8")
    return target
