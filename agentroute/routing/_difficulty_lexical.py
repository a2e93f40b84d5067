"""Lexical nearest neighbours over past prompts: the third member of `EnsembleScorer`.

MiniLM neighbours find prompts that *mean* the same; TF-IDF neighbours find prompts that share
their *surface*: formulas, numbers, code, answer-option layouts, rare terms. On RouteLLM's
MMLU outcomes the two disagree usefully: on the seed-0 training half (5-fold cross-validation)
TF-IDF neighbours alone reach an APGR of 0.681 against the kNN + logistic ensemble's 0.699, and
blending them into the ensemble gives 0.703 (see `benchmarks/cheap_strong.py` for test numbers).

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

from agentroute.errors import ConfigurationError, MissingExtraError
from agentroute.routing._difficulty_neighbours import label_mean, shrunk_mean, top_k
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
        return label_mean(self.cheap), label_mean(self.strong)


@dataclass(frozen=True)
class _State:
    """Everything a search reads, replaced whole (never edited) so readers need no lock."""

    vectorizer: Any
    base: _Rows
    rows: _Rows
    k: int
    online_ids: tuple[str, ...] = ()
    online_matrix: Any = None


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
        def whole(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and v >= 1

        problems = []
        if not (k == "auto" or whole(k)):
            problems.append(f"k must be 'auto' or an integer >= 1, got {k!r}")
        if not (ks and all(whole(v) for v in ks)):
            problems.append(f"ks must be integers >= 1, got {ks!r}")
        if isinstance(prior, bool) or not (isinstance(prior, int | float) and prior >= 0):
            problems.append(f"prior must be a number >= 0, got {prior!r}")
        if not whole(min_df):
            problems.append(f"min_df must be an integer >= 1, got {min_df!r}")
        if problems:
            msg = "LexicalNeighbours: " + "; ".join(problems)
            raise ConfigurationError(msg)
        self.k = k
        self.ks = tuple(ks)
        self.prior = float(prior)
        self.min_df = min_df
        self.k_: int = int(k) if k != "auto" else self.ks[-1]
        self._state: _State | None = None

    @property
    def fitted(self) -> bool:
        """Whether `fit` has run."""
        return self._state is not None

    def params(self) -> dict[str, Any]:
        """Settings and what `fit` chose, JSON-ready."""
        return {
            "k": self.k,
            "k_chosen": self.k_,
            "prior": self.prior,
            "min_df": self.min_df,
            "online_memory": len(self._state.online_ids) if self._state is not None else 0,
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
            raise MissingExtraError(msg) from exc
        min_df = self.min_df if len(texts) >= 2 * self.min_df else 1
        vectorizer: Any = TfidfVectorizer(
            sublinear_tf=True,
            ngram_range=(1, 2),
            min_df=min_df,
            token_pattern=_TOKENS,
            dtype=np.float64,
        )
        try:
            matrix = vectorizer.fit_transform(list(texts))
        except ValueError:  # no term at all (whitespace only): every estimate is the prior
            vectorizer = _NoTerms()
            matrix = vectorizer.transform(list(texts))
        base = _Rows((matrix.tocsr(),), np.asarray(cheap, float), np.asarray(strong, float))
        if self.k != "auto":
            sizes = [int(self.k)]
        else:
            sizes = [k for k in self.ks if k < len(texts)] or [max(1, len(texts) - 1)]
        loo, _ = self._estimates(base.parts[0], base, sizes, exclude_self=True)
        k_chosen = int(self.k) if self.k != "auto" else sizes[-1]
        seen = ~(np.isnan(base.cheap) | np.isnan(base.strong))
        if self.k == "auto" and seen.sum() >= 2:
            from agentroute.routing._difficulty_eval import cheap_strong_curve

            best = -np.inf
            for k in sizes:
                pc, ps = loo[k]
                value = cheap_strong_curve(
                    (ps - pc)[seen], base.cheap[seen], base.strong[seen]
                ).apgr()
                if value is not None and value > best + 1e-9:
                    best, k_chosen = value, k
        # One assignment: a concurrent `predict` sees the old state or the new, never a mix.
        self.k_ = k_chosen
        self._state = _State(vectorizer, base, base, k_chosen)
        return loo

    def set_online(self, items: Iterable[Any]) -> None:
        """Make `items` (objects with `id`, `text`, `cheap`, `strong`) the online rows.

        Rows of ids already held are kept; only new texts are vectorised, and the fitted rows
        are never copied. Callers serialise calls (and `fit`); `predict` may run meanwhile.
        """
        state = self._state
        if state is None:
            return
        items = list(items)
        ids = tuple(i.id for i in items)
        if ids == state.online_ids:
            return
        if not items:
            self._state = _State(state.vectorizer, state.base, state.base, state.k)
            return
        from scipy import sparse

        held = {id_: j for j, id_ in enumerate(state.online_ids)}
        fresh = [i for i in items if i.id not in held]
        pieces = [m for m in (state.online_matrix,) if m is not None]
        if fresh:
            pieces.append(state.vectorizer.transform([i.text for i in fresh]))
        pool = pieces[0] if len(pieces) == 1 else sparse.vstack(pieces).tocsr()
        at_fresh = {i.id: len(state.online_ids) + j for j, i in enumerate(fresh)}
        matrix = pool[[held[i.id] if i.id in held else at_fresh[i.id] for i in items]]
        base = state.base
        rows = _Rows(
            (base.parts[0], matrix),
            np.r_[base.cheap, [np.nan if i.cheap is None else i.cheap for i in items]],
            np.r_[base.strong, [np.nan if i.strong is None else i.strong for i in items]],
        )
        self._state = _State(state.vectorizer, base, rows, state.k, ids, matrix)

    def predict(self, texts: Sequence[str]) -> tuple[_F, _F, _F]:
        """Each tier's estimated quality for `texts`, and each text's best similarity.

        Raises:
            RuntimeError: Not fitted.
        """
        state = self._state  # read once: `fit` and `set_online` replace it whole
        if state is None:
            msg = "LexicalNeighbours is not fitted"
            raise RuntimeError(msg)
        queries = state.vectorizer.transform(list(texts))
        found, best = self._estimates(queries, state.rows, [state.k], exclude_self=False)
        pc, ps = found[state.k]
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
            if kmax <= 0:
                for pc, ps in out.values():
                    pc[start : start + _CHUNK], ps[start : start + _CHUNK] = mc, ms
                continue
            idx, sims = top_k(block, kmax, start if exclude_self else None)
            sims = np.maximum(sims, 0.0)
            best[start : start + _CHUNK] = sims[:, 0]
            for k, (pc, ps) in out.items():
                i, w = idx[:, :k], sims[:, :k]
                pc[start : start + _CHUNK] = shrunk_mean(rows.cheap[i], w, self.prior, mc)
                ps[start : start + _CHUNK] = shrunk_mean(rows.strong[i], w, self.prior, ms)
        return out, best
