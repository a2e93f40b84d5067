"""Shared pieces of the offline agent routers: the default embedder, calibration, thresholds.

`DescriptionRouter` and `ExampleRouter` both turn a query into a probability per agent and
abstain (say "out of scope") when the top probability is below a threshold. This module holds
what they share: the process-wide default embedder, temperature scaling, and
`choose_threshold`, which picks the abstain threshold on validation data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from agentroute.routing.embeddings._default import default_embedder

__all__ = [
    "ThresholdChoice",
    "choose_threshold",
    "default_embedder",
    "fit_temperature",
    "softmax",
]

FloatArray = npt.NDArray[np.float64]


def softmax(logits: npt.ArrayLike, temperature: float = 1.0) -> FloatArray:
    """Row-wise softmax of `logits / temperature` (numerically stable)."""
    z = np.asarray(logits, dtype=np.float64) / max(temperature, 1e-6)
    if z.ndim == 1:
        z = z[None, :]
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: FloatArray = e / e.sum(axis=1, keepdims=True)
    return out


def fit_temperature(logits: npt.ArrayLike, labels: Sequence[int] | npt.ArrayLike) -> float:
    """The temperature that minimises held-out negative log-likelihood (temperature scaling).

    Args:
        logits: `(n, classes)` scores of held-out examples.
        labels: The true class index of each row.

    Returns:
        A temperature in [0.01, 100]; 1.0 when there is nothing to fit on.
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if z.ndim != 2 or len(z) == 0:
        return 1.0
    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        p = softmax(z, float(np.exp(log_t)))
        return float(-np.mean(np.log(p[rows, y] + 1e-12)))

    # Golden-section search on log T: the NLL is unimodal in T; no scipy needed.
    lo, hi = np.log(0.01), np.log(100.0)
    g = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = nll(b)
    return float(np.exp((lo + hi) / 2.0))


@dataclass(frozen=True, slots=True)
class ThresholdChoice:
    """An abstain threshold and what it achieved on the data it was chosen on."""

    threshold: float
    """Abstain when the router's confidence is below this."""
    in_scope_accuracy: float
    """Share of in-scope queries routed correctly and not abstained on."""
    oos_recall: float | None
    """Share of out-of-scope queries abstained on; `None` without out-of-scope data."""
    in_scope_kept: float
    """Share of in-scope queries not abstained on."""
    method: str
    """How the threshold was chosen (for the trace and the docs)."""
    detail: dict[str, Any] = field(default_factory=dict)


def choose_threshold(
    in_scope_confidence: npt.ArrayLike,
    in_scope_correct: npt.ArrayLike,
    oos_confidence: npt.ArrayLike | None = None,
    *,
    target_oos_recall: float = 0.8,
    confidence: float = 0.9,
    max_in_scope_loss: float = 0.05,
) -> ThresholdChoice:
    """Choose the abstain threshold of a router on validation data.

    With out-of-scope validation queries, the threshold is the smallest one at which a one-sided
    `confidence` lower bound (Wilson score) of the out-of-scope recall reaches
    `target_oos_recall`: with 100 validation queries, about 0.85 observed recall for a 0.80
    target. The margin is there because a threshold tuned to exactly 0.80 on a small
    validation set lands below 0.80 on new traffic about half the time. Larger thresholds
    only lose in-scope accuracy, so the smallest one is taken.

    Without out-of-scope data (only examples of what each agent handles), the threshold keeps
    `1 - max_in_scope_loss` of the in-scope queries that were routed correctly: it is the
    `max_in_scope_loss` quantile of their confidence. Use cross-validated (out-of-fold)
    confidences, never those of the training examples themselves.

    Args:
        in_scope_confidence: The router's confidence on each in-scope validation query.
        in_scope_correct: Whether its top choice was right, per in-scope query.
        oos_confidence: Its confidence on out-of-scope validation queries, if any.
        target_oos_recall: Out-of-scope recall to reach.
        confidence: Confidence level of the recall lower bound (0.5 = the observed recall).
        max_in_scope_loss: Without out-of-scope data: share of correct in-scope queries the
            threshold may reject.

    Returns:
        The threshold and what it achieves on this data.
    """
    conf = np.asarray(in_scope_confidence, dtype=np.float64).ravel()
    correct = np.asarray(in_scope_correct, dtype=bool).ravel()
    oos = (
        np.asarray(oos_confidence, dtype=np.float64).ravel()
        if oos_confidence is not None
        else np.zeros(0)
    )
    n_in = max(len(conf), 1)

    def acc_at(t: float) -> float:
        return float(np.sum(correct & (conf >= t)) / n_in)

    def kept_at(t: float) -> float:
        return float(np.sum(conf >= t) / n_in)

    if len(oos) == 0:
        good = np.sort(conf[correct]) if correct.any() else np.sort(conf)
        t = float(np.quantile(good, max_in_scope_loss)) if len(good) else 0.0
        return ThresholdChoice(
            threshold=t,
            in_scope_accuracy=acc_at(t),
            oos_recall=None,
            in_scope_kept=kept_at(t),
            method=f"quantile {max_in_scope_loss:g} of correct in-scope confidences",
        )

    def rec_at(t: float) -> float:
        return float(np.mean(oos < t))

    # Candidate thresholds: midpoints just above each out-of-scope confidence (and 0).
    cands = np.unique(np.concatenate([[0.0], np.nextafter(oos, np.inf)]))
    n_oos = len(oos)
    z = NormalDist().inv_cdf(confidence) if confidence > 0.5 else 0.0
    lower = np.array([_wilson_lower(rec_at(t), n_oos, z) for t in cands])
    reach = cands[lower >= target_oos_recall]
    best_bal = max(cands, key=lambda t: acc_at(float(t)) + rec_at(float(t)))
    if len(reach):
        t = float(reach.min())
        method = (
            f"smallest threshold whose out-of-scope recall (lower bound at {confidence:g}) "
            f">= {target_oos_recall:g}"
        )
        met = True
    else:  # pragma: no cover - only with very few out-of-scope queries
        t = float(best_bal)
        method = "best balanced accuracy (target recall unreachable)"
        met = False
    return ThresholdChoice(
        threshold=t,
        in_scope_accuracy=acc_at(t),
        oos_recall=rec_at(t),
        in_scope_kept=kept_at(t),
        method=method,
        detail={
            "target_met": met,
            "balanced_threshold": float(best_bal),
            "balanced_in_scope_accuracy": acc_at(float(best_bal)),
            "balanced_oos_recall": rec_at(float(best_bal)),
        },
    )


def _wilson_lower(p: float, n: int, z: float) -> float:
    """Wilson score lower bound of a proportion `p` observed on `n` trials."""
    if n == 0:
        return 0.0
    denom = 1.0 + z * z / n
    centre = p + z * z / (2 * n)
    spread = z * float(np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)))
    return (centre - spread) / denom
