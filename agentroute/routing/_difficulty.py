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

import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import structlog

from agentroute._jsonl import json_lines
from agentroute.errors import ConfigurationError
from agentroute.routing._difficulty_eval import cheap_strong_curve
from agentroute.routing._difficulty_features import FEATURE_NAMES, HashingEmbedder, text_features
from agentroute.routing._difficulty_lexical import LexicalNeighbours
from agentroute.routing._difficulty_memory import (
    KnnMemoryBook,
    MemoryItem,
    MemorySnapshot,
    items_for,
    merge_items,
)
from agentroute.routing._difficulty_neighbours import label_mean, shrunk_mean, top_k
from agentroute.routing._difficulty_stack import Stacker, cross_predict
from agentroute.routing.embeddings import Embedder, Matrix, normalize
from agentroute.routing.embeddings._default import default_embedder
from agentroute.stores import TraceStore

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
        ConfigurationError: The file is missing or not UTF-8, or a line is malformed (named by
            number).
    """
    p = Path(path)
    rows: list[OutcomeRow] = []
    for number, data in json_lines(p):
        where = f"{p}:{number}"
        text = data.get("text", data.get("prompt"))
        if not isinstance(text, str):
            msg = f"{where}: 'text' must be a string"
            raise ConfigurationError(msg)
        values = {k: _number(data.get(k), k, where) for k in ("cheap", "strong")}
        costs = {k: _cost(data.get(k), k, where) for k in ("cheap_cost", "strong_cost")}
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


def _cost(value: Any, name: str, where: str) -> float | None:
    # A negative price would make "cost to 95% of strong" negative; a boolean is no price.
    if isinstance(value, bool):
        msg = f"{where}: {name!r} must be a cost in dollars (a number >= 0), got {value!r}"
        raise ConfigurationError(msg)
    cost = _number(value, name, where)
    if cost is not None and cost < 0:
        msg = f"{where}: {name!r} is {value!r}; a cost is dollars, >= 0"
        raise ConfigurationError(msg)
    return cost


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
    memory_version: int | None = None
    """Store version of the kNN online memory the score was computed from (0 = bound, nothing
    stored yet); `None` for a scorer without a stored memory (logistic, or a kNN scorer never
    bound to a store)."""


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


@dataclass(frozen=True)
class _Memory:
    """Everything a kNN query reads, replaced whole (a query never sees half an update)."""

    vectors: Matrix
    texts: list[str]
    cheap: _F
    strong: _F
    version: int | None = None
    """Store version of the online memory in these rows; `None` when no store is bound."""
    unstored: int = 0
    """Online outcomes in these rows that the stored version does not hold yet."""

    @classmethod
    def empty(cls) -> _Memory:
        return cls(np.zeros((0, 0), dtype=np.float32), [], np.zeros(0), np.zeros(0))

    def __len__(self) -> int:
        return len(self.texts)

    @cached_property
    def label_means(self) -> tuple[float, float]:
        """Each tier's mean observed quality (0.5 when none was observed): the kNN prior.

        Computed once per memory: an update replaces the whole object.
        """
        return label_mean(self.cheap), label_mean(self.strong)

    def spliced(
        self, start: int, drop: int, vectors: Matrix, items: Sequence[MemoryItem]
    ) -> _Memory:
        """This memory less rows `start:start + drop`, plus `items` at the end.

        `vectors` are the items' prepared vectors, row-aligned.
        """
        if not drop and not items:
            return self
        end = start + drop
        parts = [p for p in (self.vectors[:start], self.vectors[end:], vectors) if len(p)]
        return _Memory(
            np.vstack(parts) if parts else self.vectors[:0],
            [*self.texts[:start], *self.texts[end:], *(i.text for i in items)],
            np.r_[
                self.cheap[:start],
                self.cheap[end:],
                [np.nan if i.cheap is None else i.cheap for i in items],
            ],
            np.r_[
                self.strong[:start],
                self.strong[end:],
                [np.nan if i.strong is None else i.strong for i in items],
            ],
        )


@dataclass(frozen=True)
class _Neighbours:
    """One neighbour search: each query's nearest rows of `mem`, most similar first."""

    idx: Any
    sims: _F
    mem: _Memory
    """The memory searched: whatever reads these neighbours reads its rows and labels."""

    def first(self, k: int) -> tuple[Any, _F]:
        """The `k` nearest (all found when fewer), as a search for `k` would give them.

        A search for more neighbours ranks the same rows first (ties aside, whose order a
        search does not fix).
        """
        return self.idx[:, :k], self.sims[:, :k]


class KnnScorer:
    """Distance-weighted k nearest past prompts.

    k and the weighting are chosen by leave-one-out cross-validation on the training data
    (`k="auto"`).

    Each tier's quality is the weighted mean over the neighbours where it was observed, shrunk
    towards the tier's overall mean by `prior` pseudo-neighbours (so a few far neighbours give a
    cautious score).

    Outcomes learned from feedback (`update`) form the online memory. Once `bind_store` gave it
    a trace store and a key, the online memory lives there, versioned (see
    `agentroute.routing._difficulty_memory`): a new process with the same store and key starts
    with it, and several processes learning at once lose no outcome.

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
        memory_limit: Outcomes learned from feedback kept (the newest; the fitted prompts do not
            count).
    """

    name = "knn"
    _KS = (5, 10, 20, 40, 80, 160, 320)
    # Chosen by nested cross-validation inside the RouteLLM MMLU training halves (seeds 0 and
    # 1): softer-than-uniform weights (0.2–0.3) won there; 0.5 leaves room for embedders whose
    # similarities spread wider.
    _TEMPERATURES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)

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
        memory_limit: int = 2000,
    ) -> None:
        if memory_limit < 1:
            msg = f"KnnScorer: memory_limit must be at least 1, got {memory_limit}"
            raise ConfigurationError(msg)
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
        self.memory_limit = memory_limit
        self._mean: Matrix | None = None
        self._base = _Memory.empty()
        self._mem = _Memory.empty()
        self._online: list[MemoryItem] = []
        self._pending: list[MemoryItem] = []
        self._book: KnnMemoryBook | None = None
        self._memory_version = 0
        self._lock = threading.RLock()
        self.k_: int = 40 if k == "auto" else int(k)
        self.temperature_: float = 0.0 if temperature == "auto" else float(temperature)
        self.cv_: dict[str, float] = {}
        # The leave-one-out search of `fit`'s cross-validation, kept (it can be tens of MB) only
        # for an owner that reads it next (`_fit_neighbours`), as `EnsembleScorer` does.
        self._keep_fit_search = False
        self._fit_search: tuple[Any, _F] | None = None

    @property
    def embedder(self) -> Embedder:
        """The embedder (created on first use)."""
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    @property
    def fitted(self) -> bool:
        """Whether any outcome is stored."""
        return len(self._mem) > 0

    @property
    def size(self) -> int:
        """Stored outcomes (fitted and learned online)."""
        return len(self._mem)

    @property
    def online_items(self) -> list[MemoryItem]:
        """Outcomes learned from feedback (`update`), oldest first."""
        return list(self._online)

    @property
    def memory_version(self) -> int:
        """Store version of the online memory in use (0 = not stored)."""
        return self._memory_version

    @property
    def memory_book(self) -> KnnMemoryBook | None:
        """Where the online memory is stored, once `bind_store` was called."""
        return self._book

    # The memory's parts, as one consistent snapshot.
    @property
    def _vectors(self) -> Matrix:
        return self._mem.vectors

    @property
    def _texts(self) -> list[str]:
        return self._mem.texts

    @property
    def _cheap(self) -> _F:
        return self._mem.cheap

    @property
    def _strong(self) -> _F:
        return self._mem.strong

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
            "online_memory": len(self._online),
            "memory_key": self._book.key if self._book is not None else None,
            "memory_version": self._memory_version,
            "embedder": self._embedder_name(),
        }

    def _embedder_name(self) -> str:
        return self.embedder.name if self._embedder is not None else "minilm"

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
        with self._lock:
            self._mean = raw.mean(axis=0, keepdims=True) if self.center and len(raw) > 1 else None
            self._base = _Memory(self._prep(raw), list(texts), *_unit_labels(cheap, strong))
            self._mem = self._base
            if self.k == "auto" or self.temperature == "auto":
                self._cross_validate()
            # Feedback learned before (or by other processes) stays: it is re-centred on the
            # new fit's mean and appended after the fitted prompts.
            self._set_online(self._online, rebuild=True)
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

    def _estimate_scales(
        self, idx: Any, sims: _F, k: int, temperature: float, mem: _Memory | None = None
    ) -> tuple[_F, _F]:
        scales = [s for s in self._scales(k) if s <= idx.shape[1]] or [idx.shape[1]]
        parts = [self._estimate(idx, sims, s, temperature, mem) for s in scales]
        pc = np.mean([p[0] for p in parts], axis=0)
        ps = np.mean([p[1] for p in parts], axis=0)
        return pc, ps

    def _neighbours(
        self, queries: Matrix, k: int, *, exclude_self: bool, mem: _Memory | None = None
    ) -> tuple[Any, _F]:
        mem = self._mem if mem is None else mem
        n = len(mem)
        k = min(k, n - (1 if exclude_self else 0))
        idx = np.zeros((len(queries), max(k, 0)), dtype=np.int64)
        sims = np.zeros((len(queries), max(k, 0)), dtype=np.float64)
        if k <= 0:
            return idx, sims
        for start in range(0, len(queries), 1024):
            block = queries[start : start + 1024] @ mem.vectors.T
            found = top_k(block, k, start if exclude_self else None)
            idx[start : start + len(block)], sims[start : start + len(block)] = found
        return idx, sims

    def _estimate(
        self, idx: Any, sims: _F, k: int, temperature: float, mem: _Memory | None = None
    ) -> tuple[_F, _F]:
        mem = self._mem if mem is None else mem
        idx, sims = idx[:, :k], sims[:, :k]
        w = np.exp((sims - sims[:, :1]) / temperature) if temperature > 0 else np.ones_like(sims)
        out = []
        for labels, mean in zip((mem.cheap, mem.strong), mem.label_means, strict=True):
            out.append(shrunk_mean(labels[idx], w, self.prior, mean))
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
        self._fit_search = (idx, sims) if self._keep_fit_search else None
        # Multiscale candidates reuse the single-scale estimates (k/2, k and 2k are mostly grid
        # points too), so the grid costs about one estimate per (size, temperature).
        cache: dict[tuple[int, float], tuple[_F, _F]] = {}

        def estimate(size: int, t: float) -> tuple[_F, _F]:
            if (size, t) not in cache:
                cache[size, t] = self._estimate(idx, sims, size, t)
            return cache[size, t]

        best = (-math.inf, ks[0], temps[0], False)
        for multi in multis:
            self.multiscale_ = multi
            for k in ks:
                scales = [s for s in self._scales(k) if s <= idx.shape[1]] or [idx.shape[1]]
                for t in temps:
                    parts = [estimate(s, t) for s in scales]
                    pc = np.mean([p[0] for p in parts], axis=0)
                    ps = np.mean([p[1] for p in parts], axis=0)
                    score = _apgr(_value(pc, ps), self._cheap, self._strong)
                    self.cv_[f"k={k},t={t},multiscale={multi}"] = round(score, 4)
                    if score > best[0] + 1e-9:
                        best = (score, k, t, multi)
        _, self.k_, self.temperature_, self.multiscale_ = best

    def _fit_neighbours(self, k: int) -> tuple[Any, _F]:
        """Leave-one-out neighbours (`k` nearest) of the fitted prompts among themselves.

        Reuses, and releases, the search `fit` kept for its owner when it is wide enough.
        """
        base = self._base
        kept, self._fit_search = self._fit_search, None
        if kept is not None and kept[0].shape[1] >= min(k, len(base) - 1):
            return kept[0][:, :k], kept[1][:, :k]
        return self._neighbours(base.vectors, k, exclude_self=True, mem=base)

    def predict(self, vectors: Matrix) -> tuple[_F, _F, Any, _F]:
        """Predicted cheap and strong quality for embedded queries, with neighbours used."""
        return self._predict(self._search(vectors))

    def _search(self, vectors: Matrix, at_least: int = 0) -> _Neighbours:
        """The neighbours a score needs (`at_least` more for another reader), in one snapshot."""
        mem = self._mem  # read once: an update swaps the object, never edits it
        if not len(mem):
            raise _not_fitted(self.name)
        k = max(*self._scales(self.k_), at_least)
        idx, sims = self._neighbours(self._prep(vectors), k, exclude_self=False, mem=mem)
        return _Neighbours(idx, sims, mem)

    def _predict(self, found: _Neighbours) -> tuple[_F, _F, Any, _F]:
        idx, sims = found.first(max(self._scales(self.k_)))
        pc, ps = self._estimate_scales(idx, sims, self.k_, self.temperature_, found.mem)
        return pc, ps, idx, sims

    def score(self, texts: Sequence[str]) -> list[DifficultyScore]:
        """Score prompts; evidence lists the nearest stored prompts and their outcomes."""
        if not self.fitted:
            raise _not_fitted(self.name)
        return self.score_vectors(self.embedder.embed(list(texts)), texts)

    def score_vectors(self, vectors: Matrix, texts: Sequence[str] = ()) -> list[DifficultyScore]:
        """`score` with precomputed embeddings (`texts` unused: the vectors say it all)."""
        del texts
        return self._scores(self._search(vectors))

    def _scores(self, found: _Neighbours) -> list[DifficultyScore]:
        pc, ps, idx, sims = self._predict(found)
        mem = found.mem
        values = _value(pc, ps)
        out = []
        for i in range(len(values)):
            neighbours = [
                {
                    "text": mem.texts[j][:80],
                    "similarity": round(float(sims[i, r]), 4),
                    "cheap": _round(mem.cheap[j]),
                    "strong": _round(mem.strong[j]),
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
                        "temperature": self.temperature_,
                        "multiscale": self.multiscale_,
                        "neighbours": neighbours,
                        "unstored_outcomes": mem.unstored,
                    },
                    memory_version=mem.version,
                )
            )
        return out

    def update(self, text: str, *, cheap: float | None = None, strong: float | None = None) -> None:
        """Add one observed outcome to the online memory (no refit; k stays as chosen).

        With a store bound (`bind_store`), the outcome is written as the memory's next version
        (re-read and re-applied when another writer got there first), and outcomes other
        processes stored meanwhile are taken in too.

        Raises:
            StateConflict: Too many concurrent writers in a row (the outcome is kept and
                written with the next update).
            StoreError: The store failed (the outcome is kept and written with the next
                update).
        """
        item = MemoryItem.new(text, self.embedder.embed([text])[0], cheap=cheap, strong=strong)
        with self._lock:
            # Pending until a store holds it: learned while unbound, or its write failed.
            self._pending = [*self._pending, item][-self.memory_limit :]
            self._set_online([*self._online, item])
            if self._book is None:
                return
            pending = list(self._pending)
            snapshot = self._book.commit(
                lambda current: self._merge(current, pending),
                note=f"learn {len(pending)} outcome(s)",
            )
            self._pending = []
            self._use(snapshot)

    def bind_store(self, store: TraceStore, key: str) -> None:
        """Keep the online memory in `store` under `key`, and load what is stored there.

        Outcomes learned and not yet stored (while unbound, or whose write failed) are written
        now; if that write fails they stay pending and go with the next update. Binding again
        to the same store and key does nothing.

        Raises:
            StateConflict: Too many concurrent writers in a row.
            StoreError: The store failed.
            ValueError: `key` holds something other than a kNN memory.
        """
        with self._lock:
            book = self._book
            if book is not None and book.store is store and book.key == key:
                return
            book = KnnMemoryBook(store, key)
            snapshot = book.load()  # a key holding something else fails here, before binding
            self._book = book
            self._memory_version = 0
            local = list(self._pending)
            if local:
                snapshot = book.commit(
                    lambda current: self._merge(current, local),
                    note=f"learn {len(local)} outcome(s) from before binding",
                )
                self._pending = []
            if snapshot is not None:
                self._use(snapshot)
            else:
                self._set_online([])  # nothing stored under this key, nothing pending

    def refresh(self) -> bool:
        """Re-read the online memory when another writer stored a newer version.

        Returns:
            Whether a newer version was loaded.

        Raises:
            StoreError: The store failed.
        """
        book = self._book
        if book is None or book.latest_version() <= self._memory_version:
            return False
        snapshot = book.load()
        if snapshot is None:
            return False
        with self._lock:
            if snapshot.version <= self._memory_version:
                return False
            self._use(snapshot)
        return True

    def _embed_texts(self, texts: Sequence[str]) -> Matrix:
        return self.embedder.embed(list(texts))

    def _merge(self, current: MemorySnapshot | None, new: Sequence[MemoryItem]) -> MemorySnapshot:
        return merge_items(
            current,
            new,
            embedder=self._embedder_name(),
            limit=self.memory_limit,
            reembed=self._embed_texts,
        )

    def _use(self, snapshot: MemorySnapshot) -> None:
        items = items_for(snapshot, self._embedder_name(), self._embed_texts)
        # Outcomes not stored yet stay in use until a write takes them.
        stored = {i.id for i in items}
        # Set first: `_set_online` stamps the new rows with it.
        self._memory_version = snapshot.version
        self._set_online([*items, *(i for i in self._pending if i.id not in stored)])

    def _set_online(self, items: Sequence[MemoryItem], *, rebuild: bool = False) -> None:
        """Make `items` the online memory (the newest `memory_limit`), after the fitted rows.

        Rows of outcomes already in use are kept, so an update preps only its new rows, also
        when a full memory drops its oldest: `_prep` maps each row alone, with the mean fixed at
        `fit` (which rebuilds).
        """
        items = list(items)[-self.memory_limit :]
        drop = None if rebuild else _kept_from(self._online, items)
        if drop is None:
            drop, fresh, mem = 0, items, self._base
        else:
            fresh, mem = items[len(self._online) - drop :], self._mem
        vectors = (
            self._prep(np.stack([i.vector for i in fresh]))
            if fresh
            else np.zeros((0, 0), np.float32)
        )
        mem = mem.spliced(len(self._base), drop, vectors, fresh)
        pending = {i.id for i in self._pending}
        self._online = items
        # The version travels in the object a query reads, so a score always names the version
        # of the rows it was computed from, even while an update swaps them.
        self._mem = replace(
            mem,
            version=self._memory_version if self._book is not None else None,
            unstored=sum(i.id in pending for i in items),
        )


def _kept_from(old: Sequence[MemoryItem], new: Sequence[MemoryItem]) -> int | None:
    """How many of `old`'s first items `new` drops, when it goes on with the rest unchanged.

    `None` when it does not: `new` reorders or changes them (a re-embedded vector, say).
    """
    first = new[0].id if new else None
    drop = next((j for j, item in enumerate(old) if item.id == first), len(old))
    kept = old[drop:]
    if len(new) < len(kept):
        return None
    for a, b in zip(kept, new, strict=False):
        if a is not b and (a.id != b.id or not np.array_equal(a.vector, b.vector)):
            return None
    return drop


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
            0.15 per training row (strong shrinkage: embeddings have many weak dimensions;
            `EnsembleScorer` chooses its member's per-row default by cross-validation).
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
        self._default_row_l2 = self._DEFAULT_ROW_L2
        self._cold: list[tuple[str, float | None, float | None]] = []
        self._cold_lock = threading.Lock()

    _DEFAULT_ROW_L2 = 0.15
    """The penalty per training row when `l2` is not given."""

    _COLD_FIT = 20
    """Online outcomes an unfitted scorer gathers before it fits itself on them."""

    @property
    def embedder(self) -> Embedder:
        """The embedder (created on first use)."""
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    @property
    def fitted(self) -> bool:
        """Whether the model has been fitted (by `fit`, or on its first online outcomes)."""
        return self._fitted

    def params(self) -> dict[str, Any]:
        """Settings."""
        return {
            "scorer": self.name,
            "l2": self.l2,
            "l2_per_row": self._row_l2 if self._fitted else None,
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
        return self._fit_features(self._features(texts, vectors), cheap, strong)

    def _fit_features(
        self, x: _F, cheap: Sequence[float | None], strong: Sequence[float | None]
    ) -> LogisticScorer:
        """Fit on a ready feature matrix (rows aligned with the labels)."""
        self._cold = []
        self._mu = x.mean(axis=0)
        self._sd = x.std(axis=0) + 1e-6
        z = (x - self._mu) / self._sd
        y = np.stack(_unit_labels(cheap, strong), axis=1)
        l2 = self.l2 if self.l2 is not None else self._default_row_l2 * len(x)
        self._row_l2 = l2 / max(1, len(x))
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
        """A few small gradient steps on one observed outcome.

        Before any fit (cold start), outcomes are gathered instead; the scorer fits itself on
        them once it holds `_COLD_FIT` (20), so a switch started without training data leaves
        its cold start.
        """
        if not self._fitted:
            with self._cold_lock:
                self._cold.append((text, cheap, strong))
                if len(self._cold) < self._COLD_FIT or self._fitted:
                    return
                texts, cheaps, strongs = zip(*self._cold, strict=True)
                self._cold = []
                self.fit(list(texts), list(cheaps), list(strongs))
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
    """kNN, logistic and lexical-kNN predictions, blended. The default scorer.

    Two blends are fitted on out-of-fold predictions of the training data (leave-one-out kNN
    over embeddings and over TF-IDF rows, k-fold logistic): a weighted mean of the members'
    predictions (both weights chosen by APGR, then shrunk towards equal shares), and a stacker —
    ridge regressions over the kNN estimates at several neighbourhood sizes, the neighbourhood's
    density and the logistic prediction (see `_difficulty_stack`). With `stack="auto"` the
    stacker is used when its own out-of-fold APGR beats the best weighted mean's; every choice
    is made on the training data only.

    Why shrink: the members are about equally good on their own and the blend gains from their
    disagreement, while the APGR of one set of out-of-fold predictions is a noisy yardstick, so
    the grid point that wins it overfits. On RouteLLM's MMLU outcomes (the training halves of
    split seeds 2–6, 5-fold cross-validation inside each) the weights chosen by APGR and moved
    halfway to equal shares beat the chosen weights on every seed, by +0.0022 APGR (seed sd
    0.0013), and beat equal shares alone (which ignore a weak member) on three-member and
    two-member ensembles alike. The logistic member's penalty is chosen by the same
    cross-validation (see `_logistic_out_of_fold`).

    The lexical member (see `_difficulty_lexical`) reads the prompts' text, not their
    embeddings, and learns online from the same memory as the kNN member.

    Args:
        embedder: Shared by the kNN and logistic members (one embedding per prompt).
        weight: kNN's share of the weighted mean, or `"auto"`.
        knn: Options for the kNN member.
        logistic: Options for the logistic member.
        folds: Folds for the logistic member's and the stacker's out-of-fold predictions.
        seed: Fold assignment seed.
        stack: Use the stacker: `True`, `False`, or `"auto"` (chosen by cross-validation;
            needs `weight="auto"` and 40 or more training prompts).
        stack_alpha: Ridge penalty of the stacker, per training row (standardised features).
        lexical: Options for the lexical member (`LexicalNeighbours`: TF-IDF neighbours, which
            catch prompts that share formulas, numbers and rare terms), or `False` to leave
            it out.
        lexical_weight: The lexical member's share of the weighted mean, or `"auto"` (chosen
            by cross-validation, with `weight` when that is `"auto"` too; 0 with fewer than 40
            training prompts, when the stacker is used — it reads no lexical feature — or when
            scikit-learn is missing and the member was not asked for explicitly).
        shrinkage: How far the weights chosen by cross-validation move towards equal shares
            of the members whose weights were chosen (0 = as chosen, 1 = equal shares; see
            above). Weights given as numbers are never moved, nor weights chosen without a
            single training prompt holding both tiers' outcomes (nothing was measured).
    """

    name = "ensemble"
    _WEIGHTS = (0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    _LEXICAL_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
    _STACK_KS = (10, 20, 40, 80, 160, 320)
    _L2_PER_ROW = (0.15, 0.5, 1.5)
    """Candidate penalties per row of the logistic member (when its `l2` is not given)."""

    def __init__(
        self,
        embedder: Embedder | str | None = None,
        *,
        weight: float | str = "auto",
        knn: Mapping[str, Any] | None = None,
        logistic: Mapping[str, Any] | None = None,
        folds: int = 5,
        seed: int = 0,
        stack: bool | str = "auto",
        stack_alpha: float = 0.01,
        lexical: Mapping[str, Any] | bool = True,
        lexical_weight: float | str = "auto",
        shrinkage: float = 0.5,
    ) -> None:
        if not (isinstance(stack, bool) or stack == "auto"):
            msg = f"EnsembleScorer: stack must be True, False or 'auto', got {stack!r}"
            raise ConfigurationError(msg)
        if stack is True and weight != "auto":
            msg = (
                "EnsembleScorer: stack=True needs weight='auto' (the stacker is fitted on the "
                f"members' cross-validated predictions), got weight={weight!r}"
            )
            raise ConfigurationError(msg)
        self._embedder = _resolve_embedder(embedder)
        self.weight = weight
        self.folds = folds
        self.seed = seed
        self.stack: bool | str = stack
        self.stack_alpha = stack_alpha
        self.stacker_: Stacker | None = None
        self.knn = KnnScorer(self._embedder, **dict(knn or {}))
        self.knn._keep_fit_search = True
        self.logistic = LogisticScorer(self._embedder, **dict(logistic or {}))
        self.weight_: float = 0.5 if weight == "auto" else float(weight)
        if lexical_weight != "auto" and not (
            isinstance(lexical_weight, int | float)
            and not isinstance(lexical_weight, bool)
            and 0.0 <= lexical_weight <= 1.0
        ):
            msg = (
                "EnsembleScorer: lexical_weight must be 'auto' or a number in [0, 1], got "
                f"{lexical_weight!r}"
            )
            raise ConfigurationError(msg)
        options = {} if isinstance(lexical, bool) else dict(lexical)
        try:
            self.lexical: LexicalNeighbours | None = (
                None if lexical is False else LexicalNeighbours(**options)
            )
        except TypeError as exc:
            msg = (
                f"EnsembleScorer: unknown lexical option in {sorted(options)}: {exc}; use k, "
                "ks, prior or min_df"
            )
            raise ConfigurationError(msg) from exc
        # Asked for by name: then a missing scikit-learn is an error, not a silent skip.
        self._lexical_required = not isinstance(lexical, bool) or (
            lexical_weight != "auto" and float(lexical_weight) > 0
        )
        self.lexical_weight = lexical_weight
        if isinstance(shrinkage, bool) or not (
            isinstance(shrinkage, int | float) and 0.0 <= shrinkage <= 1.0
        ):
            msg = f"EnsembleScorer: shrinkage must be a number in [0, 1], got {shrinkage!r}"
            raise ConfigurationError(msg)
        self.shrinkage = float(shrinkage)
        self.blend_cv_: dict[str, float] = {}
        """The weights the cross-validation chose, before shrinkage (empty when none)."""
        self.lexical_weight_: float = self._fixed_lexical_weight()
        self.cv_: dict[str, float] = {}
        self._replayed: set[str] = set()
        self._replay_lock = threading.Lock()

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
        """Whether the kNN member has data (the logistic member joins once it is fitted).

        Started from feedback alone (no `fit`), the ensemble scores with its kNN member until
        it is fitted, so a switch with `cold_start` leaves cold start with its first outcome,
        as with `KnnScorer`.
        """
        return self.knn.fitted

    def params(self) -> dict[str, Any]:
        """Settings of the blend and both members."""
        return {
            "scorer": self.name,
            "weight": self.weight,
            "weight_chosen": self.weight_,
            "stack": self.stack,
            "stack_chosen": self.stacker_ is not None,
            "lexical_weight": self.lexical_weight,
            "lexical_weight_chosen": self.lexical_weight_,
            "shrinkage": self.shrinkage,
            "blend_cv": dict(self.blend_cv_),
            "knn": self.knn.params(),
            "logistic": self.logistic.params(),
            "lexical": self.lexical.params() if self.lexical is not None else None,
        }

    def _fixed_lexical_weight(self) -> float:
        """The lexical share before (or without) cross-validation."""
        if self.lexical is None or self.lexical_weight == "auto":
            return 0.0
        return float(self.lexical_weight)

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
        n = len(texts)
        if self.stack is True and n < 40:
            msg = (
                "EnsembleScorer: stack=True needs 40 or more training prompts with both tiers' "
                f"outcomes, got {n}; pass stack='auto' or more data"
            )
            raise ConfigurationError(msg)
        self.knn.fit_vectors(vectors, texts, cheap, strong)
        # The logistic member's features, built once for the cross-validation and the final fit.
        features = self.logistic._features(texts, vectors)
        # A refit starts from nothing: a stacker (or CV scores) from earlier data must not
        # outlive it when this data is too small to choose again.
        self.stacker_ = None
        self.cv_ = {}
        self.blend_cv_ = {}
        self.logistic._default_row_l2 = LogisticScorer._DEFAULT_ROW_L2
        self.weight_ = 0.5 if self.weight == "auto" else float(self.weight)
        self.lexical_weight_ = self._fixed_lexical_weight()
        yc, ys = _unit_labels(cheap, strong)
        lexical_loo = self._fit_lexical(texts, yc, ys, n)
        if n >= 40 and (
            self.weight == "auto" or (lexical_loo is not None and self.lexical_weight == "auto")
        ):
            base = self.knn._base
            stacking = self.weight == "auto" and self.stack is not False
            # One search of the training prompts serves the kNN member and the stacker.
            idx, sims = self.knn._fit_neighbours(
                max([*self.knn._scales(self.knn.k_), *(self._STACK_KS if stacking else ())])
            )
            kc, ks = self.knn._estimate_scales(idx, sims, self.knn.k_, self.knn.temperature_, base)
            lc, ls = self._logistic_out_of_fold(features, cheap, strong, yc, ys)
            xc, xs = (
                lexical_loo[self.lexical.k_]
                if self.lexical is not None and lexical_loo is not None
                else (np.zeros(n), np.zeros(n))
            )
            if lexical_loo is None:
                shares: Sequence[float] = (0.0,)
            elif self.lexical_weight == "auto":
                shares = self._LEXICAL_WEIGHTS
            else:
                shares = (float(self.lexical_weight),)
            weights = self._WEIGHTS if self.weight == "auto" else (float(self.weight),)
            best = (-math.inf, self.weight_, 0.0)
            for lw in shares:
                for wt in weights:
                    value = _value(
                        (1 - lw) * (wt * kc + (1 - wt) * lc) + lw * xc,
                        (1 - lw) * (wt * ks + (1 - wt) * ls) + lw * xs,
                    )
                    score = _apgr(value, yc, ys)
                    self.cv_[f"weight={wt}" + (f",lexical={lw}" if lw else "")] = round(score, 4)
                    if score > best[0] + 1e-9:
                        best = (score, wt, lw)
            self.weight_, self.lexical_weight_ = best[1], best[2]
            if (~(np.isnan(yc) | np.isnan(ys))).sum() >= 2:
                # Something was measured (prompts with both tiers' outcomes): shrink the choice.
                self.blend_cv_ = {"weight": best[1], "lexical_weight": best[2]}
                self.weight_, self.lexical_weight_ = _shrunk(
                    best[1],
                    best[2],
                    self.shrinkage,
                    knn_chosen=self.weight == "auto",
                    lexical_chosen=len(shares) > 1,
                )
            if stacking:
                self._fit_stacker((idx, sims), (kc, ks, lc, ls), yc, ys, best[0])
                if self.stacker_ is not None:
                    self.lexical_weight_ = 0.0  # the stacker reads no lexical feature
        self.knn._fit_search = None  # not read when the blend is fixed: release it
        self.logistic._fit_features(features, cheap, strong)
        self._replayed = set()
        self._replay()
        return self

    def _logistic_out_of_fold(
        self,
        features: _F,
        cheap: Sequence[float | None],
        strong: Sequence[float | None],
        yc: _F,
        ys: _F,
    ) -> tuple[_F, _F]:
        """The logistic member's k-fold predictions; chooses its penalty when `l2` is unset.

        Each candidate penalty per row (`_L2_PER_ROW`) is fitted in every fold, and the one
        whose out-of-fold predicted gains rank best by APGR becomes the member's default. The
        penalty that fits each tier best (log-loss) is not the one that ranks their
        *difference* best: the difference adds both heads' noise, and on RouteLLM's MMLU
        outcomes (training halves of seeds 2–6) log-loss keeps 0.15 while APGR picks 0.5 or
        more, which ranks held-out prompts better.
        """
        n = len(features)
        per_row: tuple[float | None, ...] = (
            self._L2_PER_ROW if self.logistic.l2 is None else (None,)
        )
        found = {r: (np.zeros(n), np.zeros(n)) for r in per_row}
        folds = np.random.default_rng(self.seed).permutation(n) % self.folds
        for f in range(self.folds):
            sel = [int(i) for i in np.nonzero(folds != f)[0]]
            tsel = np.nonzero(folds == f)[0]
            for r in per_row:
                member = LogisticScorer(
                    self._embedder,
                    l2=self.logistic.l2 if r is None else r * len(sel),
                    epochs=self.logistic.epochs,
                    use_embeddings=self.logistic.use_embeddings,
                )
                member._fit_features(
                    features[sel], [cheap[i] for i in sel], [strong[i] for i in sel]
                )
                pc, ps, _ = member.predict_features(features[tsel])
                found[r][0][tsel], found[r][1][tsel] = pc, ps
        chosen = per_row[0]
        if len(per_row) > 1:
            scores = {r: _apgr(_value(*found[r]), yc, ys) for r in per_row}
            for r, value in scores.items():
                self.cv_[f"logistic_l2_per_row={r}"] = round(value, 4)
            chosen = max(per_row, key=lambda r: scores[r])  # ties: the weaker penalty
        if chosen is not None:
            self.logistic._default_row_l2 = chosen
        return found[chosen]

    def _fit_lexical(
        self, texts: Sequence[str], yc: _F, ys: _F, n: int
    ) -> dict[int, tuple[_F, _F]] | None:
        """Fit the lexical member when it can get weight; its leave-one-out estimates."""
        lexical = self.lexical
        if lexical is None or (self.lexical_weight == "auto" and n < 40):
            self.lexical_weight_ = 0.0
            return None
        if self.lexical_weight != "auto" and float(self.lexical_weight) == 0:
            return None
        try:
            # Serialised with `_replay`'s `set_online`, so online rows always match the
            # vocabulary they were vectorised with.
            with self._replay_lock:
                return lexical.fit(texts, yc, ys)
        except ImportError:
            if self._lexical_required:
                raise
            log.info("ensemble lexical member left out: scikit-learn is not installed")
            self.lexical_weight_ = 0.0
            return None

    def _stack_names(self) -> list[str]:
        names = [f"knn{k}_{tier}" for k in self._STACK_KS for tier in ("cheap", "strong")]
        return [*names, "density", "knn_cheap", "knn_strong", "logistic_cheap", "logistic_strong"]

    def _stack_features(self, idx: Any, sims: _F, members: Sequence[_F], mem: _Memory) -> _F:
        """Stacker inputs: kNN estimates per size, density, the members' predictions."""
        cols: list[_F] = []
        for k in self._STACK_KS:
            cols.extend(self.knn._estimate(idx, sims, min(k, idx.shape[1]), 0.0, mem))
        cols.append(sims[:, :10].mean(axis=1))
        cols.extend(members)
        return np.stack(cols, axis=1)

    def _fit_stacker(
        self,
        loo: tuple[Any, _F],
        members: Sequence[_F],
        yc: _F,
        ys: _F,
        blend_apgr: float,
    ) -> None:
        """Fit the stacker when it beats the best blend; `loo` = leave-one-out neighbours."""
        base = self.knn._base
        k = min(max(self._STACK_KS), len(base) - 1)
        idx, sims = loo[0][:, :k], loo[1][:, :k]
        features = self._stack_features(idx, sims, members, base)
        seen = ~(np.isnan(yc) | np.isnan(ys))
        if seen.sum() < 40:
            if self.stack is True:
                msg = (
                    "EnsembleScorer: stack=True needs 40 or more training prompts with both "
                    f"tiers' outcomes, got {int(seen.sum())}; pass stack='auto' or more data"
                )
                raise ConfigurationError(msg)
            return
        names = self._stack_names()
        f, c, s = features[seen], yc[seen], ys[seen]
        pc, ps = cross_predict(
            names, f, c, s, alpha=self.stack_alpha, folds=self.folds, seed=self.seed + 1
        )
        stack_apgr = _apgr(_value(pc, ps), c, s)
        self.cv_["stack"] = round(stack_apgr, 4)
        if self.stack is True or stack_apgr > blend_apgr + 1e-9:
            self.stacker_ = Stacker.fit(names, f, c, s, self.stack_alpha)

    def score(self, texts: Sequence[str]) -> list[DifficultyScore]:
        """Blend both members' predictions; evidence holds both members' evidence."""
        if not self.fitted:
            raise _not_fitted(self.name)
        return self.score_vectors(self.embedder.embed(list(texts)), texts)

    def score_vectors(self, vectors: Matrix, texts: Sequence[str]) -> list[DifficultyScore]:
        """`score` with precomputed embeddings."""
        # Not fitted (learning from feedback alone): the kNN member scores by itself.
        b = self.logistic.score_vectors(vectors, texts) if self.logistic.fitted else None
        stacker = self.stacker_ if b is not None else None
        features = None
        # One search serves the kNN member and the stacker, so both read one memory version.
        found = self.knn._search(vectors, max(self._STACK_KS) if stacker is not None else 0)
        a = self.knn._scores(found)
        wt, lw = (self.weight_ if b is not None else 1.0), self.lexical_weight_
        pc = wt * np.array([x.p_cheap for x in a])
        ps = wt * np.array([x.p_strong for x in a])
        if b is not None:
            pc += (1 - wt) * np.array([y.p_cheap for y in b])
            ps += (1 - wt) * np.array([y.p_strong for y in b])
        lexical = None
        if self.lexical is not None and self.lexical.fitted and lw > 0 and stacker is None:
            xc, xs, near = self.lexical.predict(list(texts))
            lexical = (self.lexical.k_, xc, xs, _value(xc, xs), near)
            pc = (1 - lw) * pc + lw * xc
            ps = (1 - lw) * ps + lw * xs
        if stacker is not None and b is not None:
            idx, sims = found.first(max(self._STACK_KS))
            members = [
                np.array([getattr(s, attr) for s in scores])
                for scores in (a, b)
                for attr in ("p_cheap", "p_strong")
            ]
            features = self._stack_features(idx, sims, members, found.mem)
            pc, ps = stacker.predict(features)
        values = _value(pc, ps)
        out = []
        for i, x in enumerate(a):
            evidence: dict[str, Any] = {"scorer": "ensemble"}
            if stacker is not None and features is not None:
                share = stacker.contributions(features[i])
                top = sorted(share, key=lambda n: -abs(share[n]))[:4]
                evidence["stack"] = {n: share[n] for n in top}
            else:
                evidence["knn_weight"] = wt
                evidence["lexical_weight"] = lw if lexical is not None else 0.0
            evidence["knn"] = {**x.evidence, "value": round(x.value, 4)}
            evidence["logistic"] = (
                {**b[i].evidence, "value": round(b[i].value, 4)}
                if b is not None
                else {"fitted": False}
            )
            if lexical is not None:
                k, xc, xs, xv, near = lexical
                evidence["lexical"] = {
                    "k": k,
                    "p_cheap": round(float(xc[i]), 4),
                    "p_strong": round(float(xs[i]), 4),
                    "value": round(float(xv[i]), 4),
                    "best_similarity": round(float(near[i]), 4),
                }
            out.append(
                DifficultyScore(
                    value=float(values[i]),
                    p_cheap=float(pc[i]),
                    p_strong=float(ps[i]),
                    evidence=evidence,
                    memory_version=x.memory_version,
                )
            )
        return out

    def update(self, text: str, *, cheap: float | None = None, strong: float | None = None) -> None:
        """Update both members (the logistic member also learns what other processes stored).

        Raises:
            StateConflict: The kNN member's memory could not be written (see `KnnScorer.update`).
            StoreError: The store failed.
        """
        try:
            self.knn.update(text, cheap=cheap, strong=strong)
        finally:
            self._replay()

    def bind_store(self, store: TraceStore, key: str) -> None:
        """Keep the kNN member's online memory in `store` under `key` (see `KnnScorer`).

        The logistic member takes a few gradient steps on every stored outcome it has not seen.

        Raises:
            StoreError: The store failed.
        """
        self.knn.bind_store(store, key)
        self._replay()

    def refresh(self) -> bool:
        """Re-read the kNN member's online memory when a newer version is stored.

        Returns:
            Whether a newer version was loaded.
        """
        fresh = self.knn.refresh()
        self._replay()
        return fresh

    def _replay(self) -> None:
        # Online outcomes (this process's and other processes') reach the logistic member
        # once each, in memory order.
        if not self.logistic.fitted:
            return
        with self._replay_lock:  # feedback arrives from worker threads
            online = self.knn.online_items
            if self.lexical is not None and self.lexical_weight_ > 0:
                self.lexical.set_online(online)
            for item in online:
                if item.id not in self._replayed:
                    self._replayed.add(item.id)
                    self.logistic.update(item.text, cheap=item.cheap, strong=item.strong)
            # Forget ids that left the bounded memory: the set stays as small as the memory.
            self._replayed &= {item.id for item in online}


def _shrunk(
    knn_weight: float,
    lexical_weight: float,
    amount: float,
    *,
    knn_chosen: bool,
    lexical_chosen: bool,
) -> tuple[float, float]:
    """The blend weights moved `amount` of the way towards equal member shares.

    Only weights chosen by cross-validation move (`knn_chosen`: kNN vs logistic;
    `lexical_chosen`: the lexical share). With both chosen, the three members' shares move
    towards a third each; with one, that weight moves towards its equal value (a half for kNN
    vs logistic, a third for the lexical share).

    Returns:
        The kNN share of the kNN + logistic mean, and the lexical share.
    """
    if knn_chosen and lexical_chosen:
        shares = np.array(
            [
                (1 - lexical_weight) * knn_weight,
                (1 - lexical_weight) * (1 - knn_weight),
                lexical_weight,
            ]
        )
        shares = (1 - amount) * shares + amount / 3
        return float(shares[0] / (shares[0] + shares[1])), float(shares[2])
    if knn_chosen:
        return (1 - amount) * knn_weight + amount * 0.5, lexical_weight
    if lexical_chosen:
        return knn_weight, (1 - amount) * lexical_weight + amount / 3
    return knn_weight, lexical_weight


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
