"""Offline cheap/strong evaluation of a difficulty scorer: fit on train, report on test.

Shared by `agentroute eval cheap-strong` and `benchmarks/cheap_strong.py`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from agentroute.errors import ConfigurationError
from agentroute.routing._difficulty import DifficultyScorer, OutcomeRow
from agentroute.routing._difficulty_eval import CheapStrongCurve, cheap_strong_curve

__all__ = ["cheap_strong_report", "split_rows", "summarize_curve"]


def split_rows(
    rows: Sequence[OutcomeRow], seed: int = 0, train_share: float = 0.5
) -> tuple[list[OutcomeRow], list[OutcomeRow]]:
    """Shuffle with `seed` and split into (train, test)."""
    order = np.random.default_rng(seed).permutation(len(rows))
    cut = round(len(rows) * train_share)
    return [rows[i] for i in order[:cut]], [rows[i] for i in order[cut:]]


def _costs(rows: Sequence[OutcomeRow]) -> tuple[list[float], list[float]] | None:
    given = [r.cheap_cost is not None and r.strong_cost is not None for r in rows]
    if not any(given):
        return None
    if not all(given):
        missing = next(r.id for r, g in zip(rows, given, strict=True) if not g)
        msg = (
            f"some lines give cheap_cost and strong_cost and some do not (first without: id "
            f"{missing!r}); give both costs on every line or on none"
        )
        raise ConfigurationError(msg)
    return [float(r.cheap_cost or 0.0) for r in rows], [float(r.strong_cost or 0.0) for r in rows]


def summarize_curve(curve: CheapStrongCurve, *, costs: bool) -> dict[str, Any]:
    """APGR, CPT(50%), CPT(80%) and (with costs) the cost to 95% of all-strong quality."""
    out: dict[str, Any] = {
        "apgr": _r(curve.apgr()),
        "cpt50": _r(curve.cpt(0.5)),
        "cpt80": _r(curve.cpt(0.8)),
        "q_cheap": round(curve.q_cheap, 6),
        "q_strong": round(curve.q_strong, 6),
    }
    if costs:
        out["cost_to_95pct_strong"] = _r(curve.cost_to_quality(0.95))
    return out


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def cheap_strong_report(
    train: Sequence[OutcomeRow],
    test: Sequence[OutcomeRow],
    scorer: DifficultyScorer,
    *,
    seed: int = 0,
    random_repeats: int = 20,
    curve_points: int = 101,
) -> dict[str, Any]:
    """Fit `scorer` on `train`, route `test` by its scores, compare with random and oracle.

    Test rows must carry both scores (the curve needs both tiers' outcomes); train rows may
    miss one.

    Returns:
        `apgr`, `cpt50`, `cpt80`, `random_apgr`, `oracle_apgr`, `oracle_share`, `curve`
        (`[{share, quality, cost}]` on an even grid), `q_cheap`, `q_strong`, sizes, timings,
        the scorer's parameters, and `cost_to_95pct_strong` when costs are given.

    Raises:
        ConfigurationError: Empty splits, test rows missing a score, or costs on some lines only.
    """
    test = list(test)
    if not train or not test:
        msg = f"need labelled rows to train and to test on (got {len(train)} and {len(test)})"
        raise ConfigurationError(msg)
    incomplete = [r.id for r in test if r.cheap is None or r.strong is None]
    if incomplete:
        msg = f"test rows need both 'cheap' and 'strong' scores; missing for ids {incomplete[:5]}"
        raise ConfigurationError(msg)
    costs = _costs(test)
    started = time.perf_counter()
    scorer.fit([r.text for r in train], [r.cheap for r in train], [r.strong for r in train])
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    scores = np.array([s.value for s in scorer.score([r.text for r in test])])
    score_s = time.perf_counter() - started
    cheap = np.array([r.cheap for r in test], dtype=np.float64)
    strong = np.array([r.strong for r in test], dtype=np.float64)
    cost_kw: dict[str, Any] = {}
    if costs is not None:
        cost_kw = {"cheap_cost": costs[0], "strong_cost": costs[1]}
    curve = cheap_strong_curve(scores, cheap, strong, **cost_kw)
    rng = np.random.default_rng(seed)
    randoms = [
        cheap_strong_curve(rng.random(len(test)), cheap, strong, **cost_kw).apgr()
        for _ in range(random_repeats)
    ]
    oracle = cheap_strong_curve(strong - cheap, cheap, strong, **cost_kw)
    out = summarize_curve(curve, costs=costs is not None)
    random_values = [r for r in randoms if r is not None]
    out.update(
        {
            "random_apgr": _r(float(np.mean(random_values))) if random_values else None,
            "oracle_apgr": _r(oracle.apgr()),
            "oracle_share": round(float(np.mean(strong - cheap > 1e-12)), 6),
            "curve": curve.grid(curve_points),
            "train_size": len(train),
            "test_size": len(test),
            "fit_s": round(fit_s, 3),
            "score_ms_per_prompt": round(1000 * score_s / len(test), 4),
            "scorer": scorer.params(),
        }
    )
    return out
