"""Difficulty scorers for cheap/strong routing: kNN, logistic, and their ensemble.

A scorer learns, from prompts with the recorded quality of the cheap and the strong model's
answers, how much the strong model is expected to help on a new prompt. Its score is

    score = (1 + p_strong − p_cheap) / 2        in [0, 1]

where `p_cheap` and `p_strong` are the predicted qualities (0..1). 0.5 means "no expected gain";
0.6 means the strong model is expected to score 0.2 higher. Ranking by this expected gain (not by
"is the prompt hard") sends prompts neither model can answer to the cheap model, as BoPO's
boundary taxonomy recommends. Every score carries the evidence that decided it: the nearest past
prompts (kNN) or the features that weighed most (logistic).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import structlog

from agentroute.errors import ConfigurationError
from agentroute.routing._difficulty_eval import cheap_strong_curve
from agentroute.routing._difficulty_features import FEATURE_NAMES, HashingEmbedder, text_features
from agentroute.routing.embeddings import Embedder, Matrix, normalize
from agentroute.routing.embeddings._default import default_embedder

__all__ = [
    "DifficultyScore",
    "DifficultyScorer",
    "EnsembleScorer",
    "KnnScorer",
    "LogisticScorer",
    "OutcomeRow",
    "build_scorer",
    "default_embedder",
    "load_outcomes",
    "scorer_names",
]

log = structlog.get_logger(__name__)

_F = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """One labelled prompt: how good each tier's answer was (0..1; `None` = not observed)."""

    id: str
    text: str
    cheap: float | None
    strong: float | None
    cheap_cost: float | None = None
    strong_cost: float | None = None


def load_outcomes(path: str | Path) -> list[OutcomeRow]:
    """Read a JSON-lines outcomes file.

    One object per line: `{"id", "text", "cheap", "strong", "cheap_cost"?, "strong_cost"?}`
    (blank lines skipped; `id` defaults to the line number).

    Raises:
        ConfigurationError: The file is missing, or a line is malformed (named by number).
    """
    p = Path(path)
    if not p.is_file():
        msg = f"outcomes file {str(p)!r} does not exist"
        raise ConfigurationError(msg)
    rows: list[OutcomeRow] = []
    with p.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{p}:{number}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                msg = f"{where}: not valid JSON ({exc.msg})"
                raise ConfigurationError(msg) from exc
            if not isinstance(data, dict):
                msg = f"{where}: expected a JSON object with text, cheap and strong"
                raise ConfigurationError(msg)
            text = data.get("text", data.get("prompt"))
            if not isinstance(text, str):
                msg = f"{where}: 'text' must be a string"
                raise ConfigurationError(msg)
            values = {k: _number(data.get(k), k, where) for k in ("cheap", "strong")}
            costs = {k: _number(data.get(k), k, where) for k in ("cheap_cost", "strong_cost")}
            if values["cheap"] is None and values["strong"] is None:
                msg = f"{where}: needs 'cheap' and/or 'strong' scores (0..1)"
                raise ConfigurationError(msg)
            rows.append(
                OutcomeRow(
                    id=str(data.get("id", number)),
                    text=text,
                    cheap=values["cheap"],
                    strong=values["strong"],
                    cheap_cost=costs["cheap_cost"],
                    strong_cost=costs["strong_cost"],
                )
            )
    if not rows:
        msg = f"outcomes file {str(p)!r} has no lines"
        raise ConfigurationError(msg)
    return rows


def _number(value: Any, name: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    msg = f"{where}: {name!r} must be a finite number, got {value!r}"
    raise ConfigurationError(msg)


@dataclass(frozen=True, slots=True)
class DifficultyScore:
    """One prompt's score and what decided it."""

    value: float
    """`(1 + p_strong − p_cheap) / 2`, in [0, 1]; higher = the strong tier helps more."""
    p_cheap: float
    """Predicted quality of the cheap tier's answer."""
    p_strong: float
    """Predicted quality of the strong tier's answer."""
    evidence: dict[str, Any] = field(default_factory=dict)
    """Neighbours or features that decided, JSON-ready."""


@runtime_checkable
class DifficultyScorer(Protocol):
    """Scores how much the strong tier is expected to help on a prompt."""

    name: str

    @property
    def fitted(self) -> bool:
        """Whether the scorer has data to score with."""
        ...

    def fit(
        self,
        texts: Sequence[str],
        cheap: Sequence[float | None],
        strong: Sequence[float | None],
    ) -> DifficultyScorer:
        """Learn from labelled prompts (`None` = that tier was not observed); returns self."""
        ...

    def score(self, texts: Sequence[str]) -> list[DifficultyScore]:
        """Score prompts.

        Raises:
            ConfigurationError: The scorer has no data yet.
        """
        ...

    def update(self, text: str, *, cheap: float | None = None, strong: float | None = None) -> None:
        """Learn from one more observed outcome (online, e.g. feedback on a run)."""
        ...

    def params(self) -> dict[str, Any]:
        """The scorer's settings, JSON-ready (recorded with every decision)."""
        ...


_EMBEDDERS: dict[str, Callable[[], Embedder]] = {
    "minilm": default_embedder,
    "hashing": HashingEmbedder,
}


def _resolve_embedder(embedder: Embedder | str | None) -> Embedder | None:
    if embedder is None or not isinstance(embedder, str):
        return embedder
    try:
        return _EMBEDDERS[embedder]()
    except KeyError:
        msg = f"unknown embedder {embedder!r}; use one of {sorted(_EMBEDDERS)} or an Embedder"
        raise ConfigurationError(msg) from None


def _labels(values: Sequence[float | None]) -> _F:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _unit_labels(cheap: Sequence[float | None], strong: Sequence[float | None]) -> tuple[_F, _F]:
    """Both tiers' labels, rescaled together to [0, 1] when they fall outside it.

    Ratings on another scale (e.g. 0..10) keep the meaning of predicted gains and scores.
    """
    c, s = _labels(cheap), _labels(strong)
    both = np.concatenate([c, s])
    seen = both[~np.isnan(both)]
    if seen.size and (seen.min() < 0.0 or seen.max() > 1.0):
        lo, hi = float(seen.min()), float(seen.max())
        span = hi - lo if hi > lo else 1.0
        c, s = (c - lo) / span, (s - lo) / span
    return c, s


def _check_lengths(texts: Sequence[str], cheap: Sequence[Any], strong: Sequence[Any]) -> None:
    if not (len(texts) == len(cheap) == len(strong)):
        msg = f"fit needs as many labels as texts ({len(texts)}, {len(cheap)}, {len(strong)})"
        raise ConfigurationError(msg)
    if not texts:
        msg = "fit needs at least one labelled prompt"
        raise ConfigurationError(msg)


def _not_fitted(name: str) -> ConfigurationError:
    msg = (
        f"difficulty scorer {name!r} has no data yet: fit it on labelled outcomes "
        "(scorer.fit(texts, cheap, strong), or BudgetSwitch(train='outcomes.jsonl')), or set "
        "cold_start='cheap' to route without a score until feedback arrives"
    )
    return ConfigurationError(msg)


def _value(pc: _F, ps: _F) -> _F:
    out: _F = np.clip((1.0 + ps - pc) / 2.0, 0.0, 1.0)
    return out


def _apgr(scores: _F, cheap: _F, strong: _F) -> float:
    ok = ~(np.isnan(cheap) | np.isnan(strong))
    if ok.sum() < 2:
        return 0.0
    value = cheap_strong_curve(scores[ok], cheap[ok], strong[ok]).apgr()
    return -1.0 if value is None else value


# -- kNN -----------------------------------------------------------------------------------------


class KnnScorer:
    """Distance-weighted k nearest past prompts.

    k and the weighting are chosen by leave-one-out cross-validation on the training data
    (`k="auto"`).

    Each tier's quality is the weighted mean over the neighbours where it was observed, shrunk
    towards the tier's overall mean by `prior` pseudo-neighbours (so a few far neighbours give a
    cautious score).

    Args:
        embedder: Texts → unit vectors; default the bundled MiniLM with a persistent cache.
            `"minilm"` or `"hashing"` by name.
        k: Neighbours per query, or `"auto"`.
        temperature: Softmax temperature over cosine similarity (0 = uniform weights), or
            `"auto"`.
        prior: Weight of the overall mean, in neighbours.
        center: Subtract the training prompts' mean vector before cosine similarity (sentence
            embeddings share a common direction that blurs neighbourhoods).
        multiscale: Average the estimates at k/2, k and 2k, or `"auto"` (cross-validated).
        evidence_neighbours: How many neighbours each score reports.
    """

    name = "knn"
    _KS = (5, 10, 20, 40, 80, 160, 320)
    _TEMPERATURES = (0.0, 0.1)

    def __init__(
        self,
        embedder: Embedder | str | None = None,
        *,
        k: int | str = "auto",
        temperature: float | str = "auto",
        prior: float = 2.0,
        center: bool = True,
        multiscale: bool | str = "auto",
        evidence_neighbours: int = 5,
    ) -> None:
        if (isinstance(k, str) and k != "auto") or (isinstance(k, int) and k < 1):
            msg = f"KnnScorer: k must be a positive integer or 'auto', got {k!r}"
            raise ConfigurationError(msg)
        self._embedder = _resolve_embedder(embedder)
        self.k: int | str = k
        self.temperature: float | str = temperature
        self.prior = prior
        self.center = center
        self.multiscale: bool | str = multiscale
        self.multiscale_: bool = multiscale is True
        self.evidence_neighbours = evidence_neighbours
        self._mean: Matrix | None = None
        self._vectors: Matrix = np.zeros((0, 0), dtype=np.float32)
        self._texts: list[str] = []
        self._cheap: _F = np.zeros(0)
        self._strong: _F = np.zeros(0)
        self.k_: int = 40 if k == "auto" else int(k)
        self.temperature_: float = 0.0 if temperature == "auto" else float(temperature)
        self.cv_: dict[str, float] = {}

    @property
    def embedder(self) -> Embedder:
        """The embedder (created on first use)."""
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    @property
    def fitted(self) -> bool:
        """Whether any outcome is stored."""
        return len(self._texts) > 0

    @property
    def size(self) -> int:
        """Stored outcomes."""
        return len(self._texts)

    def params(self) -> dict[str, Any]:
        """Settings (chosen k and temperature included)."""
        return {
            "scorer": self.name,
            "k": self.k,
            "temperature": self.temperature,
            "k_chosen": self.k_,
            "temperature_chosen": self.temperature_,
            "prior": self.prior,
            "center": self.center,
            "multiscale": self.multiscale_,
            "memory": self.size,
            "embedder": self.embedder.name if self._embedder is not None else "minilm",
        }

    def fit(
        self,
        texts: Sequence[str],
        cheap: Sequence[float | None],
        strong: Sequence[float | None],
    ) -> KnnScorer:
        """Store the outcomes and pick k and the weighting by leave-one-out APGR."""
        _check_lengths(texts, cheap, strong)
        return self.fit_vectors(self.embedder.embed(list(texts)), texts, cheap, strong)

    def fit_vectors(
        self,
        vectors: Matrix,
        texts: Sequence[str],
        cheap: Sequence[float | None],
        strong: Sequence[float | None],
    ) -> KnnScorer:
        """`fit` with precomputed embeddings (rows aligned with `texts`)."""
        _check_lengths(texts, cheap, strong)
        raw = np.asarray(vectors, dtype=np.float32)
        self._mean = raw.mean(axis=0, keepdims=True) if self.center and len(raw) > 1 else None
        self._vectors = self._prep(raw)
        self._texts = list(texts)
        self._cheap, self._strong = _unit_labels(cheap, strong)
        if self.k == "auto" or self.temperature == "auto":
            self._cross_validate()
        return self

    def _prep(self, vectors: Matrix) -> Matrix:
        arr = np.asarray(vectors, dtype=np.float32)
        if self._mean is not None:
            arr = normalize(arr - self._mean)
        return arr

    def _scales(self, k: int) -> list[int]:
        if not self.multiscale_:
            return [k]
        return sorted({max(1, k // 2), k, 2 * k})

    def _estimate_scales(self, idx: Any, sims: _F, k: int, temperature: float) -> tuple[_F, _F]:
        scales = [s for s in self._scales(k) if s <= idx.shape[1]] or [idx.shape[1]]
        parts = [self._estimate(idx, sims, s, temperature) for s in scales]
        pc = np.mean([p[0] for p in parts], axis=0)
        ps = np.mean([p[1] for p in parts], axis=0)
        return pc, ps

    def _neighbours(self, queries: Matrix, k: int, *, exclude_self: bool) -> tuple[Any, _F]:
        n = len(self._texts)
        k = min(k, n - (1 if exclude_self else 0))
        idx = np.zeros((len(queries), max(k, 0)), dtype=np.int64)
        sims = np.zeros((len(queries), max(k, 0)), dtype=np.float64)
        if k <= 0:
            return idx, sims
        for start in range(0, len(queries), 1024):
            block = queries[start : start + 1024] @ self._vectors.T
            if exclude_self:
                rows = np.arange(block.shape[0])
                block[rows, rows + start] = -np.inf
            part = np.argpartition(-block, k - 1, axis=1)[:, :k]
            part_sims = np.take_along_axis(block, part, axis=1)
            order = np.argsort(-part_sims, axis=1)
            idx[start : start + len(block)] = np.take_along_axis(part, order, axis=1)
            sims[start : start + len(block)] = np.take_along_axis(part_sims, order, axis=1)
        return idx, sims

    def _estimate(self, idx: Any, sims: _F, k: int, temperature: float) -> tuple[_F, _F]:
        idx, sims = idx[:, :k], sims[:, :k]
        w = np.exp((sims - sims[:, :1]) / temperature) if temperature > 0 else np.ones_like(sims)
        out = []
        for labels in (self._cheap, self._strong):
            y = labels[idx]
            seen = ~np.isnan(y)
            mean = float(np.nanmean(labels)) if (~np.isnan(labels)).any() else 0.5
            ww = np.where(seen, w, 0.0)
            num = (ww * np.nan_to_num(y)).sum(axis=1) + self.prior * mean
            out.append(num / (ww.sum(axis=1) + self.prior))
        return out[0], out[1]

    def _cross_validate(self) -> None:
        n = len(self._texts)
        ks = [k for k in self._KS if k < n] or [max(1, n - 1)]
        if self.k != "auto":
            ks = [int(self.k)]
        temps = (
            list(self._TEMPERATURES)
            if isinstance(self.temperature, str)
            else [float(self.temperature)]
        )
        if n < 20:
            self.k_, self.temperature_ = min(ks[0], max(1, n - 1)), temps[0]
            return
        multis = [False, True] if self.multiscale == "auto" else [bool(self.multiscale)]
        idx, sims = self._neighbours(self._vectors, 2 * max(ks), exclude_self=True)
        best = (-math.inf, ks[0], temps[0], False)
        for multi in multis:
            self.multiscale_ = multi
            for k in ks:
                for t in temps:
                    pc, ps = self._estimate_scales(idx, sims, k, t)
                    score = _apgr(_value(pc, ps), self._cheap, self._strong)
                    self.cv_[f"k={k},t={t},multiscale={multi}"] = round(score, 4)
                    if score > best[0] + 1e-9:
                        best = (score, k, t, multi)
        _, self.k_, self.temperature_, self.multiscale_ = best

    def predict(self, vectors: Matrix) -> tuple[_F, _F, Any, _F]:
        """Predicted cheap and strong quality for embedded queries, with neighbours used."""
        if not self.fitted:
            raise _not_fitted(self.name)
        idx, sims = self._neighbours(
            self._prep(vectors), max(self._scales(self.k_)), exclude_self=False
        )
        pc, ps = self._estimate_scales(idx, sims, self.k_, self.temperature_)
        return pc, ps, idx, sims

    def score(self, texts: Sequence[str]) -> list[DifficultyScore]:
        """Score prompts; evidence lists the nearest stored prompts and their outcomes."""
        if not self.fitted:
            raise _not_fitted(self.name)
        return self.score_vectors(self.embedder.embed(list(texts)), texts)

    def score_vectors(self, vectors: Matrix, texts: Sequence[str] = ()) -> list[DifficultyScore]:
        """`score` with precomputed embeddings (`texts` unused: the vectors say it all)."""
        del texts
        pc, ps, idx, sims = self.predict(vectors)
        values = _value(pc, ps)
        out = []
        for i in range(len(values)):
            neighbours = [
                {
                    "text": self._texts[j][:80],
                    "similarity": round(float(sims[i, r]), 4),
                    "cheap": _round(self._cheap[j]),
                    "strong": _round(self._strong[j]),
                }
                for r, j in enumerate(idx[i, : self.evidence_neighbours])
            ]
            out.append(
                DifficultyScore(
                    value=float(values[i]),
                    p_cheap=float(pc[i]),
                    p_strong=float(ps[i]),
                    evidence={
                        "scorer": "knn",
                        "k": self.k_,
                        "multiscale": self.multiscale_,
                        "neighbours": neighbours,
                    },
                )
            )
        return out

    def update(self, text: str, *, cheap: float | None = None, strong: float | None = None) -> None:
        """Add one observed outcome to the memory (no refit; k stays as chosen)."""
        vec = self._prep(self.embedder.embed([text]))
        self._vectors = vec if not self._texts else np.vstack([self._vectors, vec])
        self._texts.append(text)
        self._cheap = np.r_[self._cheap, np.nan if cheap is None else cheap]
        self._strong = np.r_[self._strong, np.nan if strong is None else strong]


def _round(v: float) -> float | None:
    return None if np.isnan(v) else round(float(v), 4)


# -- logistic ------------------------------------------------------------------------------------


class LogisticScorer:
    """Two L2-regularised logistic regressions: cheap and strong quality (soft labels).

    Features: the prompt embedding plus cheap text features (length, digits, maths symbols,
    layout).

    Args:
        embedder: As for `KnnScorer`; `use_embeddings=False` uses text features only.
        l2: Regularisation strength on the summed loss over standardised features; default
            0.15 per training row (strong shrinkage: embeddings have many weak dimensions).
        epochs: Newton iterations at most.
        use_embeddings: Include the embedding in the features.
        evidence_features: How many named features each score reports.
    """

    name = "logistic"

    def __init__(
        self,
        embedder: Embedder | str | None = None,
        *,
        l2: float | None = None,
        epochs: int = 12,
        use_embeddings: bool = True,
        evidence_features: int = 3,
    ) -> None:
        self._embedder = _resolve_embedder(embedder)
        self.l2 = l2
        self.epochs = epochs
        self.use_embeddings = use_embeddings
        self.evidence_features = evidence_features
        self._mu: _F = np.zeros(0)
        self._sd: _F = np.zeros(0)
        self._w: _F = np.zeros((0, 2))
        self._b: _F = np.zeros(2)
        self._fitted = False
        self._row_l2 = 0.0

    @property
    def embedder(self) -> Embedder:
        """The embedder (created on first use)."""
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    @property
    def fitted(self) -> bool:
        """Whether the model has been fitted."""
        return self._fitted

    def params(self) -> dict[str, Any]:
        """Settings."""
        return {
            "scorer": self.name,
            "l2": self.l2,
            "epochs": self.epochs,
            "use_embeddings": self.use_embeddings,
            "embedder": self.embedder.name
            if self._embedder is not None
            else ("minilm" if self.use_embeddings else None),
        }

    def _features(self, texts: Sequence[str], vectors: Matrix | None = None) -> _F:
        feats = text_features(texts).astype(np.float64)
        if not self.use_embeddings:
            return feats
        if vectors is None:
            vectors = self.embedder.embed(list(texts))
        return np.hstack([feats, np.asarray(vectors, dtype=np.float64)])

    def fit(
        self,
        texts: Sequence[str],
        cheap: Sequence[float | None],
        strong: Sequence[float | None],
    ) -> LogisticScorer:
        """Fit both regressions (rows where a tier is unobserved are skipped for that tier)."""
        _check_lengths(texts, cheap, strong)
        return self.fit_vectors(
            self.embedder.embed(list(texts)) if self.use_embeddings else None, texts, cheap, strong
        )

    def fit_vectors(
        self,
        vectors: Matrix | None,
        texts: Sequence[str],
        cheap: Sequence[float | None],
        strong: Sequence[float | None],
    ) -> LogisticScorer:
        """`fit` with precomputed embeddings."""
        _check_lengths(texts, cheap, strong)
        x = self._features(texts, vectors)
        self._mu = x.mean(axis=0)
        self._sd = x.std(axis=0) + 1e-6
        z = (x - self._mu) / self._sd
        y = np.stack(_unit_labels(cheap, strong), axis=1)
        l2 = self.l2 if self.l2 is not None else 0.15 * len(texts)
        self._row_l2 = l2 / max(1, len(texts))
        self._w, self._b = _fit_logistic(z, y, l2, self.epochs)
        self._fitted = True
        return self

    def predict_features(self, x: _F) -> tuple[_F, _F, _F]:
        """Predicted cheap and strong quality from raw features, and standardised features."""
        z = (x - self._mu) / self._sd
        p = _sigmoid(z @ self._w + self._b)
        return p[:, 0], p[:, 1], z

    def score(self, texts: Sequence[str]) -> list[DifficultyScore]:
        """Score prompts; evidence names the text features that pushed the score most."""
        if not self._fitted:
            raise _not_fitted(self.name)
        return self.score_vectors(
            self.embedder.embed(list(texts)) if self.use_embeddings else None, texts
        )

    def score_vectors(self, vectors: Matrix | None, texts: Sequence[str]) -> list[DifficultyScore]:
        """`score` with precomputed embeddings."""
        if not self._fitted:
            raise _not_fitted(self.name)
        pc, ps, z = self.predict_features(self._features(texts, vectors))
        values = _value(pc, ps)
        delta = self._w[:, 1] - self._w[:, 0]
        out = []
        nf = len(FEATURE_NAMES)
        for i in range(len(values)):
            contrib = z[i] * delta
            named = sorted(range(nf), key=lambda j: -abs(contrib[j]))[: self.evidence_features]
            features = {FEATURE_NAMES[j]: round(float(contrib[j]), 4) for j in named}
            if z.shape[1] > nf:
                features["embedding"] = round(float(contrib[nf:].sum()), 4)
            out.append(
                DifficultyScore(
                    value=float(values[i]),
                    p_cheap=float(pc[i]),
                    p_strong=float(ps[i]),
                    evidence={"scorer": "logistic", "features": features},
                )
            )
        return out

    def update(self, text: str, *, cheap: float | None = None, strong: float | None = None) -> None:
        """A few small gradient steps on one observed outcome."""
        if not self._fitted:
            return
        z = (self._features([text]) - self._mu) / self._sd
        y = np.array([[np.nan if cheap is None else cheap, np.nan if strong is None else strong]])
        for _ in range(5):
            p = _sigmoid(z @ self._w + self._b)
            err = np.nan_to_num(p - y) * ~np.isnan(y)
            self._w -= 0.01 * (z.T @ err + self._row_l2 * self._w)
            self._b -= 0.01 * err.sum(axis=0)


def _sigmoid(x: _F) -> _F:
    out: _F = 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))
    return out


def _fit_logistic(z: _F, y: _F, l2: float, iterations: int) -> tuple[_F, _F]:
    """Newton's method (IRLS) on the summed soft-label cross-entropy plus `l2/2 · |w|²`.

    One model per output column, skipping rows whose label is NaN; the bias is not penalised.
    """
    n, d = z.shape
    z1 = np.hstack([z, np.ones((n, 1))])
    penalty = np.full(d + 1, l2)
    penalty[-1] = 1e-6
    weights = np.zeros((d + 1, y.shape[1]))
    for col in range(y.shape[1]):
        seen = ~np.isnan(y[:, col])
        zc, yc = z1[seen], y[seen, col]
        if yc.size == 0:
            continue
        base = float(np.clip(yc.mean(), 1e-3, 1 - 1e-3))
        w = np.zeros(d + 1)
        w[-1] = math.log(base / (1 - base))
        for _ in range(iterations):
            p = _sigmoid(zc @ w)
            grad = zc.T @ (p - yc) + penalty * w
            hess = (zc * (p * (1 - p))[:, None]).T @ zc + np.diag(penalty)
            step = np.linalg.solve(hess, grad)
            w -= step
            if float(np.abs(step).max()) < 1e-6:
                break
        weights[:, col] = w
    return weights[:-1], weights[-1]


# -- ensemble ------------------------------------------------------------------------------------


class EnsembleScorer:
    """kNN and logistic predictions, blended. The default scorer.

    The blend weight is chosen by cross-validation: leave-one-out kNN and 5-fold logistic
    predictions on the training data.

    Args:
        embedder: Shared by both members (one embedding per prompt).
        weight: kNN's share of the blend, or `"auto"`.
        knn: Options for the kNN member.
        logistic: Options for the logistic member.
        folds: Folds for the logistic member's out-of-fold predictions.
        seed: Fold assignment seed.
    """

    name = "ensemble"
    _WEIGHTS = (0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

    def __init__(
        self,
        embedder: Embedder | str | None = None,
        *,
        weight: float | str = "auto",
        knn: Mapping[str, Any] | None = None,
        logistic: Mapping[str, Any] | None = None,
        folds: int = 5,
        seed: int = 0,
    ) -> None:
        self._embedder = _resolve_embedder(embedder)
        self.weight = weight
        self.folds = folds
        self.seed = seed
        self.knn = KnnScorer(self._embedder, **dict(knn or {}))
        self.logistic = LogisticScorer(self._embedder, **dict(logistic or {}))
        self.weight_: float = 0.5 if weight == "auto" else float(weight)
        self.cv_: dict[str, float] = {}

    @property
    def embedder(self) -> Embedder:
        """The shared embedder (created on first use)."""
        if self._embedder is None:
            self._embedder = default_embedder()
            self.knn._embedder = self._embedder
            self.logistic._embedder = self._embedder
        return self._embedder

    @property
    def fitted(self) -> bool:
        """Whether both members are fitted."""
        return self.knn.fitted and self.logistic.fitted

    def params(self) -> dict[str, Any]:
        """Settings of the blend and both members."""
        return {
            "scorer": self.name,
            "weight": self.weight,
            "weight_chosen": self.weight_,
            "knn": self.knn.params(),
            "logistic": self.logistic.params(),
        }

    def fit(
        self,
        texts: Sequence[str],
        cheap: Sequence[float | None],
        strong: Sequence[float | None],
    ) -> EnsembleScorer:
        """Fit both members and choose the blend weight on out-of-fold predictions."""
        _check_lengths(texts, cheap, strong)
        return self.fit_vectors(self.embedder.embed(list(texts)), texts, cheap, strong)

    def fit_vectors(
        self,
        vectors: Matrix,
        texts: Sequence[str],
        cheap: Sequence[float | None],
        strong: Sequence[float | None],
    ) -> EnsembleScorer:
        """`fit` with precomputed embeddings."""
        _check_lengths(texts, cheap, strong)
        self.knn.fit_vectors(vectors, texts, cheap, strong)
        n = len(texts)
        if self.weight == "auto" and n >= 40:
            yc, ys = _unit_labels(cheap, strong)
            idx, sims = self.knn._neighbours(
                self.knn._prep(vectors), max(self.knn._scales(self.knn.k_)), exclude_self=True
            )
            kc, ks = self.knn._estimate_scales(idx, sims, self.knn.k_, self.knn.temperature_)
            lc, ls = np.zeros(n), np.zeros(n)
            folds = np.random.default_rng(self.seed).permutation(n) % self.folds
            for f in range(self.folds):
                train, test = folds != f, folds == f
                member = LogisticScorer(
                    self._embedder,
                    l2=self.logistic.l2,
                    epochs=self.logistic.epochs,
                    use_embeddings=self.logistic.use_embeddings,
                )
                sel = [int(i) for i in np.nonzero(train)[0]]
                member.fit_vectors(
                    np.asarray(vectors)[sel],
                    [texts[i] for i in sel],
                    [cheap[i] for i in sel],
                    [strong[i] for i in sel],
                )
                tsel = [int(i) for i in np.nonzero(test)[0]]
                x = member._features([texts[i] for i in tsel], np.asarray(vectors)[tsel])
                lc[tsel], ls[tsel], _ = member.predict_features(x)
            best = (-math.inf, 0.5)
            for wt in self._WEIGHTS:
                value = _value(wt * kc + (1 - wt) * lc, wt * ks + (1 - wt) * ls)
                score = _apgr(value, yc, ys)
                self.cv_[f"weight={wt}"] = round(score, 4)
                if score > best[0] + 1e-9:
                    best = (score, wt)
            self.weight_ = best[1]
        self.logistic.fit_vectors(vectors, texts, cheap, strong)
        return self

    def score(self, texts: Sequence[str]) -> list[DifficultyScore]:
        """Blend both members' predictions; evidence holds both members' evidence."""
        if not self.fitted:
            raise _not_fitted(self.name)
        return self.score_vectors(self.embedder.embed(list(texts)), texts)

    def score_vectors(self, vectors: Matrix, texts: Sequence[str]) -> list[DifficultyScore]:
        """`score` with precomputed embeddings."""
        a = self.knn.score_vectors(vectors, texts)
        b = self.logistic.score_vectors(vectors, texts)
        wt = self.weight_
        out = []
        for x, y in zip(a, b, strict=True):
            pc = wt * x.p_cheap + (1 - wt) * y.p_cheap
            ps = wt * x.p_strong + (1 - wt) * y.p_strong
            out.append(
                DifficultyScore(
                    value=float(_value(np.array([pc]), np.array([ps]))[0]),
                    p_cheap=pc,
                    p_strong=ps,
                    evidence={
                        "scorer": "ensemble",
                        "knn_weight": wt,
                        "knn": {**x.evidence, "value": round(x.value, 4)},
                        "logistic": {**y.evidence, "value": round(y.value, 4)},
                    },
                )
            )
        return out

    def update(self, text: str, *, cheap: float | None = None, strong: float | None = None) -> None:
        """Update both members."""
        self.knn.update(text, cheap=cheap, strong=strong)
        self.logistic.update(text, cheap=cheap, strong=strong)


_SCORERS: dict[str, Callable[..., DifficultyScorer]] = {
    "knn": KnnScorer,
    "logistic": LogisticScorer,
    "ensemble": EnsembleScorer,
}


def scorer_names() -> list[str]:
    """Names `build_scorer` accepts."""
    return sorted(_SCORERS)


def build_scorer(
    scorer: str | DifficultyScorer, *, embedder: Embedder | str | None = None, **options: Any
) -> DifficultyScorer:
    """A scorer by name (`knn`, `logistic`, `ensemble`) or a scorer object as is.

    Raises:
        ConfigurationError: Unknown name.
    """
    if not isinstance(scorer, str):
        return scorer
    try:
        factory = _SCORERS[scorer]
    except KeyError:
        from agentroute.errors import did_you_mean

        msg = f"unknown difficulty scorer {scorer!r}{did_you_mean(scorer, _SCORERS)}"
        raise ConfigurationError(msg) from None
    return factory(embedder, **options)


def fit_from_rows(scorer: DifficultyScorer, rows: Iterable[OutcomeRow]) -> DifficultyScorer:
    """Fit a scorer on outcome rows."""
    items = list(rows)
    return scorer.fit([r.text for r in items], [r.cheap for r in items], [r.strong for r in items])
