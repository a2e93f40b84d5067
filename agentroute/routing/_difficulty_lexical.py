"""Lexical nearest neighbours over past prompts: the third member of `EnsembleScorer`.

MiniLM neighbours find prompts that *mean* the same; TF-IDF neighbours find prompts that share
their *surface*: formulas, numbers, code, answer-option layouts, rare terms. On RouteLLM's
MMLU outcomes the two disagree usefully: TF-IDF neighbours alone reach an out-of-fold APGR of
0.681 on the training half (MiniLM kNN 0.675 on test), and adding them to the ensemble raised
its out-of-fold APGR from 0.699 to 0.703 (see `benchmarks/cheap_strong.py`).

Text: TF-IDF over word unigrams and bigrams plus single punctuation marks (so `=`, `(`, `$`
count), sublinear term frequency, terms seen in at least two prompts, rows L2-normalised.
Estimate: each tier's quality among the `k` most similar past prompts, weighted by cosine
similarity and shrunk towards the memory's mean by `prior` pseudo-prompts (as `KnnScorer`).
The vocabulary and IDF are fixed at `fit`; online outcomes are added as rows, but words first
seen online are ignored until the next `fit` (new topics reach the ensemble through the
embedding kNN member meanwhile).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from agentroute.routing.embeddings._sentence_transformers import EMBEDDINGS_EXTRA

__all__ = ["LexicalNeighbours"]

_F = npt.NDArray[np.float64]
_TOKENS = r"(?u)\b\w+\b|[^\w\s]"
_CHUNK = 1024
"""Query rows per sparse product (bounds the dense similarity block at 1024 × memory)."""


@dataclass(frozen=True)
class _Rows:
    """The searchable memory: sparse TF-IDF rows and both tiers' labels (NaN = unobserved).

    The rows come in parts (the fitted prompts, then the online ones), searched as one, so an
    online update never copies the fitted rows.
    """

    parts: tuple[Any, ...]
    cheap: _F
    strong: _F

    def __len__(self) -> int:
        return sum(int(p.shape[0]) for p in self.parts)

    def similarities(self, queries: Any) -> _F:
        """Dense `(queries, rows)` cosine similarities."""
        blocks = [(queries @ p.T).toarray() for p in self.parts]
        out: _F = blocks[0] if len(blocks) == 1 else np.hstack(blocks)
        return out

    def means(self) -> tuple[float, float]:
        return _mean(self.cheap), _mean(self.strong)


def _mean(labels: _F) -> float:
    return float(np.nanmean(labels)) if (~np.isnan(labels)).any() else 0.5


class _NoTerms:
    """The vectoriser of a memory without a single term: every prompt is the zero row."""

    def transform(self, texts: Sequence[str]) -> Any:
        from scipy import sparse  # type: ignore[import-untyped]

        return sparse.csr_matrix((len(texts), 1), dtype=np.float64)


class LexicalNeighbours:
    """TF-IDF k nearest past prompts, estimating each tier's quality.

    Args:
        k: Neighbours read per estimate; `"auto"` chooses among `ks` by leave-one-out APGR on
            the training prompts at `fit`.
        ks: Candidate neighbourhood sizes for `"auto"`.
        prior: Pseudo-prompts at the memory's mean quality added to every estimate.
        min_df: Prompts a term must appear in to enter the vocabulary.

    Raises:
        ImportError: scikit-learn is missing (the `embeddings` extra).
    """

    def __init__(
        self,
        *,
        k: int | str = "auto",
        ks: Sequence[int] = (50, 100, 200, 400),
        prior: float = 2.0,
        min_df: int = 2,
    ) -> None:
        self.k = k
        self.ks = tuple(ks)
        self.prior = prior
        self.min_df = min_df
        self.k_: int = int(k) if k != "auto" else self.ks[-1]
        self._vectorizer: Any = None
        self._base: _Rows | None = None
        self._rows: _Rows | None = None
        self._online_ids: list[str] = []
        """Ids of the online rows, in row order."""
        self._online_matrix: Any = None

    @property
    def fitted(self) -> bool:
        """Whether `fit` has run."""
        return self._rows is not None

    def params(self) -> dict[str, Any]:
        """Settings and what `fit` chose, JSON-ready."""
        return {
            "k": self.k,
            "k_chosen": self.k_,
            "prior": self.prior,
            "min_df": self.min_df,
            "online_memory": len(self._online_ids),
        }

    def fit(self, texts: Sequence[str], cheap: _F, strong: _F) -> dict[int, tuple[_F, _F]]:
        """Learn the vocabulary and memorise the prompts; returns leave-one-out estimates.

        Args:
            texts: Training prompts.
            cheap: Cheap-tier quality per prompt in [0, 1] (NaN = unobserved).
            strong: Strong-tier quality per prompt.

        Returns:
            For each neighbourhood size tried, the leave-one-out `(cheap, strong)` estimates of
            every training prompt (each prompt's own row excluded), for blending by the caller.
        """
        try:
            from sklearn.feature_extraction.text import TfidfVectorizer
        except ImportError as exc:
            msg = f"the lexical member of EnsembleScorer needs scikit-learn: {EMBEDDINGS_EXTRA}"
            raise ImportError(msg) from exc
        min_df = self.min_df if len(texts) >= 2 * self.min_df else 1
        self._vectorizer = TfidfVectorizer(
            sublinear_tf=True,
            ngram_range=(1, 2),
            min_df=min_df,
            token_pattern=_TOKENS,
            dtype=np.float64,
        )
        try:
            matrix = self._vectorizer.fit_transform(list(texts))
        except ValueError:  # no term at all (whitespace only): every estimate is the prior
            self._vectorizer = _NoTerms()
            matrix = self._vectorizer.transform(list(texts))
        self._base = _Rows((matrix.tocsr(),), np.asarray(cheap, float), np.asarray(strong, float))
        self._online_ids = []
        self._online_matrix = None
        self._rows = self._base
        if self.k != "auto":
            sizes = [int(self.k)]
        else:
            sizes = [k for k in self.ks if k < len(texts)] or [max(1, len(texts) - 1)]
        loo, _ = self._estimates(self._base.parts[0], self._base, sizes, exclude_self=True)
        if self.k == "auto":
            from agentroute.routing._difficulty_eval import cheap_strong_curve

            best = (-np.inf, sizes[-1])
            seen = ~(np.isnan(self._base.cheap) | np.isnan(self._base.strong))
            for k in sizes:
                pc, ps = loo[k]
                curve = cheap_strong_curve(
                    (ps - pc)[seen], self._base.cheap[seen], self._base.strong[seen]
                )
                value = curve.apgr() if seen.sum() >= 2 else None
                if value is not None and value > best[0] + 1e-9:
                    best = (value, k)
            self.k_ = best[1]
        else:
            self.k_ = int(self.k)
        return loo

    def set_online(self, items: Iterable[Any]) -> None:
        """Make `items` (objects with `id`, `text`, `cheap`, `strong`) the online rows.

        Rows of ids already held are kept; only new texts are vectorised, and the fitted rows
        are never copied.
        """
        base = self._base
        if self._vectorizer is None or base is None:
            return
        items = list(items)
        ids = [i.id for i in items]
        if ids == self._online_ids:
            return
        if not items:
            self._online_ids, self._online_matrix, self._rows = [], None, base
            return
        from scipy import sparse

        held = {id_: j for j, id_ in enumerate(self._online_ids)}
        fresh = [i for i in items if i.id not in held]
        pieces = [m for m in (self._online_matrix,) if m is not None]
        if fresh:
            pieces.append(self._vectorizer.transform([i.text for i in fresh]))
        pool = pieces[0] if len(pieces) == 1 else sparse.vstack(pieces).tocsr()
        at_fresh = {i.id: len(self._online_ids) + j for j, i in enumerate(fresh)}
        order = [held[i.id] if i.id in held else at_fresh[i.id] for i in items]
        matrix = pool[order]
        self._online_ids, self._online_matrix = ids, matrix
        self._rows = _Rows(
            (base.parts[0], matrix),
            np.r_[base.cheap, [np.nan if i.cheap is None else i.cheap for i in items]],
            np.r_[base.strong, [np.nan if i.strong is None else i.strong for i in items]],
        )

    def predict(self, texts: Sequence[str]) -> tuple[_F, _F, _F]:
        """Each tier's estimated quality for `texts`, and each text's best similarity.

        Raises:
            RuntimeError: Not fitted.
        """
        rows = self._rows
        if rows is None or self._vectorizer is None:
            msg = "LexicalNeighbours is not fitted"
            raise RuntimeError(msg)
        queries = self._vectorizer.transform(list(texts))
        found, best = self._estimates(queries, rows, [self.k_], exclude_self=False)
        pc, ps = found[self.k_]
        return pc, ps, best

    def _estimates(
        self, queries: Any, rows: _Rows, sizes: Sequence[int], *, exclude_self: bool
    ) -> tuple[dict[int, tuple[_F, _F]], _F]:
        """Similarity-weighted estimates at each size in `sizes` (one search for all).

        Also returns each query's best similarity (0 when nothing is shared).
        """
        n_q, n_m = queries.shape[0], len(rows)
        mc, ms = rows.means()
        out = {k: (np.empty(n_q), np.empty(n_q)) for k in sizes}
        best = np.zeros(n_q)
        kmax = min(max(sizes), n_m - (1 if exclude_self else 0))
        for start in range(0, n_q, _CHUNK):
            block = rows.similarities(queries[start : start + _CHUNK])
            if exclude_self:
                span = np.arange(block.shape[0])
                block[span, start + span] = -np.inf
            if kmax <= 0:
                idx = np.zeros((block.shape[0], 0), dtype=np.int64)
            elif kmax < n_m:
                idx = np.argpartition(-block, kmax - 1, axis=1)[:, :kmax]
            else:
                idx = np.tile(np.arange(n_m), (block.shape[0], 1))
            sims = np.take_along_axis(block, idx, axis=1)
            order = np.argsort(-sims, axis=1, kind="stable")
            idx = np.take_along_axis(idx, order, axis=1)
            sims = np.maximum(np.take_along_axis(sims, order, axis=1), 0.0)
            if sims.shape[1]:
                best[start : start + _CHUNK] = sims[:, 0]
            for k in sizes:
                i, w = idx[:, :k], sims[:, :k]
                for labels, mean, dest in (
                    (rows.cheap, mc, out[k][0]),
                    (rows.strong, ms, out[k][1]),
                ):
                    y = labels[i]
                    ww = np.where(np.isnan(y), 0.0, w)
                    num = (ww * np.nan_to_num(y)).sum(axis=1) + self.prior * mean
                    den = ww.sum(axis=1) + self.prior
                    safe = np.where(den > 0, den, 1.0)
                    dest[start : start + _CHUNK] = np.where(den > 0, num / safe, mean)
        return out, best
