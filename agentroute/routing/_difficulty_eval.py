"""Cheap/strong routing metrics: the quality–share–cost curve, APGR, CPT, the oracle.

Definitions follow RouteLLM: route the prompts with the highest difficulty scores to the strong
model; at each strong-call share record quality; PGR = (q − q_cheap) / (q_strong − q_cheap);
APGR is the area under PGR over shares in [0, 1] (random routing ≈ 0.5); CPT(x) is the smallest
share whose PGR reaches x. Tied scores are treated as a random order, so the curve is exact in
expectation and does not depend on how ties happen to be sorted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["CheapStrongCurve", "calibrate_threshold", "cheap_strong_curve"]

_F = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CheapStrongCurve:
    """The routing curve of one scorer on one labelled set.

    Attributes:
        share: Strong-call shares (breakpoints, increasing, from 0 to 1).
        quality: Mean quality at each share.
        cost: Mean cost per prompt at each share (USD when costs were given, else the share).
        q_cheap: Quality of routing everything to the cheap model.
        q_strong: Quality of routing everything to the strong model.
    """

    share: _F
    quality: _F
    cost: _F
    q_cheap: float
    q_strong: float

    @property
    def gap(self) -> float:
        """`q_strong − q_cheap`."""
        return self.q_strong - self.q_cheap

    def pgr(self) -> _F | None:
        """Performance gap recovered at each share; `None` when both models score the same."""
        if abs(self.gap) < 1e-12:
            return None
        out: _F = (self.quality - self.q_cheap) / self.gap
        return out

    def apgr(self) -> float | None:
        """Area under PGR over shares in [0, 1]; `None` when the gap is zero."""
        pgr = self.pgr()
        if pgr is None:
            return None
        return float(np.trapezoid(pgr, self.share))

    def cpt(self, target: float) -> float | None:
        """Smallest strong-call share whose PGR reaches `target` (interpolated)."""
        pgr = self.pgr()
        if pgr is None:
            return None
        return _first_crossing(self.share, pgr, target)

    def quality_at(self, share: float) -> float:
        """Quality at a strong-call share (interpolated)."""
        return float(np.interp(share, self.share, self.quality))

    def cost_at(self, share: float) -> float:
        """Cost at a strong-call share (interpolated)."""
        return float(np.interp(share, self.share, self.cost))

    def cost_to_quality(self, fraction_of_strong: float) -> float | None:
        """Cost where quality first reaches `fraction_of_strong × q_strong`.

        As a fraction of the all-strong cost; `None` when never reached or all-strong is free.
        """
        target = fraction_of_strong * self.q_strong
        share = _first_crossing(self.share, self.quality, target)
        all_strong = float(self.cost[-1])
        if share is None or all_strong <= 0:
            return None
        return self.cost_at(share) / all_strong

    def grid(self, points: int = 101) -> list[dict[str, float]]:
        """The curve on an even grid of shares: `[{share, quality, cost}, ...]`."""
        out = []
        for s in np.linspace(0.0, 1.0, points):
            out.append(
                {
                    "share": round(float(s), 6),
                    "quality": round(self.quality_at(float(s)), 6),
                    "cost": round(self.cost_at(float(s)), 9),
                }
            )
        return out


def _first_crossing(x: _F, y: _F, target: float) -> float | None:
    hits = np.nonzero(y >= target - 1e-12)[0]
    if hits.size == 0:
        return None
    i = int(hits[0])
    if i == 0:
        return float(x[0])
    x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
    if y1 == y0:
        return float(x1)
    return float(x0 + (target - y0) * (x1 - x0) / (y1 - y0))


def cheap_strong_curve(
    scores: Sequence[float] | npt.ArrayLike,
    cheap: Sequence[float] | npt.ArrayLike,
    strong: Sequence[float] | npt.ArrayLike,
    *,
    cheap_cost: Sequence[float] | npt.ArrayLike | None = None,
    strong_cost: Sequence[float] | npt.ArrayLike | None = None,
) -> CheapStrongCurve:
    """Route prompts to the strong model in decreasing score order and trace the curve.

    Args:
        scores: Difficulty score per prompt (higher = route to strong first).
        cheap: Quality of the cheap model's answer per prompt (any real scale, e.g. 0..1).
        strong: Quality of the strong model's answer per prompt.
        cheap_cost: Cost of the cheap call per prompt (optional, with `strong_cost`).
        strong_cost: Cost of the strong call per prompt.

    Raises:
        ValueError: Empty input, lengths that differ, or non-finite values.
    """
    s = np.asarray(scores, dtype=np.float64)
    c = np.asarray(cheap, dtype=np.float64)
    g = np.asarray(strong, dtype=np.float64)
    n = s.size
    if n == 0 or c.size != n or g.size != n:
        msg = f"need equally many scores, cheap and strong values (got {n}, {c.size}, {g.size})"
        raise ValueError(msg)
    if not (np.isfinite(s).all() and np.isfinite(c).all() and np.isfinite(g).all()):
        msg = "scores and outcomes must be finite numbers"
        raise ValueError(msg)
    if (cheap_cost is None) != (strong_cost is None):
        msg = "give both cheap_cost and strong_cost, or neither"
        raise ValueError(msg)
    if cheap_cost is not None and strong_cost is not None:
        cc = np.asarray(cheap_cost, dtype=np.float64)
        sc = np.asarray(strong_cost, dtype=np.float64)
        if cc.size != n or sc.size != n or not (np.isfinite(cc).all() and np.isfinite(sc).all()):
            msg = "costs must be finite numbers, one per prompt"
            raise ValueError(msg)
    else:
        cc, sc = np.zeros(n), np.ones(n)
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    gain_q = (g - c)[order]
    gain_c = (sc - cc)[order]
    # Breakpoints at the end of each block of tied scores: within a block the expected curve
    # is linear, so interpolating between block ends gives the curve of a random tie order.
    ends = np.nonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])[0] + 1
    cum_q = np.r_[0.0, np.cumsum(gain_q)[ends - 1]]
    cum_c = np.r_[0.0, np.cumsum(gain_c)[ends - 1]]
    share = np.r_[0.0, ends / n]
    q_cheap, q_strong = float(c.mean()), float(g.mean())
    return CheapStrongCurve(
        share=share,
        quality=q_cheap + cum_q / n,
        cost=float(cc.mean()) + cum_c / n,
        q_cheap=q_cheap,
        q_strong=q_strong,
    )


def calibrate_threshold(
    scores: Sequence[float] | npt.ArrayLike,
    *,
    strong_share: float | None = None,
    budget_usd: float | None = None,
    cheap_cost: float = 0.0,
    strong_cost: float = 1.0,
) -> float:
    """Pick the threshold `t` (route up when score > t) on held-out scores.

    Give a target strong-call share, or a mean budget per prompt with per-call costs; the
    threshold chosen keeps the share (or the mean cost) at or below the target.

    Args:
        scores: Scores of held-out prompts.
        strong_share: Target share of strong calls, in [0, 1].
        budget_usd: Target mean cost per prompt.
        cheap_cost: Cost of one cheap call (with `budget_usd`).
        strong_cost: Cost of one strong call (with `budget_usd`).

    Raises:
        ValueError: Neither or both targets given, an empty score list, or a target out of range.
    """
    s = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if s.size == 0:
        msg = "calibrate_threshold needs at least one held-out score"
        raise ValueError(msg)
    if (strong_share is None) == (budget_usd is None):
        msg = "give exactly one of strong_share=... or budget_usd=..."
        raise ValueError(msg)
    if budget_usd is not None:
        if strong_cost <= cheap_cost:
            return float(-np.inf)
        strong_share = (budget_usd - cheap_cost) / (strong_cost - cheap_cost)
    assert strong_share is not None
    if not np.isfinite(strong_share):
        msg = f"target share must be finite, got {strong_share}"
        raise ValueError(msg)
    share = min(1.0, max(0.0, strong_share))
    allowed = int(np.floor(share * s.size + 1e-9))
    if allowed <= 0:
        return float(s[0])
    if allowed >= s.size:
        return float(np.nextafter(s[-1], -np.inf))
    # Scores above t go strong: t is the first score that must stay cheap (ties stay cheap).
    return float(s[allowed])
