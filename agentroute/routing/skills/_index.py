"""`SkillIndex`: stage 1 of retrieve-and-rerank — BM25 plus dense vectors, fused by rank.

Layout in memory: one `(rows, dim)` float32 matrix holding, per skill, a head vector
(`name: description`) followed by its body-chunk vectors (`starts[i]:starts[i+1]`), and a
bm25s sparse index over field-weighted lexical text. At 80,000 skills with the static
embedder (one body vector per skill) that is about 160 MB of vectors plus the BM25 matrix.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import structlog

from agentroute.errors import ConfigurationError, MissingExtraError
from agentroute.routing.embeddings import CachedEmbedder, Embedder, Matrix
from agentroute.routing.embeddings._sentence_transformers import EMBEDDINGS_EXTRA
from agentroute.routing.skills._text import QueryTokens, SkillText, TextCaps, tokenize

__all__ = ["IndexReport", "Retrieved", "SkillIndex", "SkillLike", "progress_bar"]

_log = structlog.get_logger(__name__)
_FORMAT = 2
_Mask = npt.NDArray[np.bool_]
_MASK_CACHE_SIZE = 8
"""`allowed` masks an index keeps (least recently used dropped first). At 80,000 skills an
entry holds the 80 KB mask and the key's 640 KB of references to the caller's id strings."""


@runtime_checkable
class SkillLike(Protocol):
    """What the index reads from a skill (`SkillSpec` qualifies, as do plain records)."""

    @property
    def id(self) -> str:
        """Stable id."""
        ...

    @property
    def name(self) -> str:
        """Name."""
        ...

    @property
    def description(self) -> str:
        """Description."""
        ...

    @property
    def body(self) -> str:
        """Full body (may be empty)."""
        ...

    @property
    def tags(self) -> Sequence[str]:
        """Labels."""
        ...


@dataclass(frozen=True, slots=True)
class Retrieved:
    """One stage-1 candidate with its component scores (recorded in the decision)."""

    id: str
    """Skill id."""
    index: int
    """Position in the index."""
    bm25: float
    """BM25 score over the field-weighted text."""
    dense: float
    """Best cosine over the skill's vectors (head and body chunks)."""
    dense_head: float
    """Cosine with the head vector (`name: description`)."""
    dense_body: float
    """Best cosine over body chunks (0 when the body is empty)."""
    fused: float
    """Reciprocal-rank-fusion score."""
    bm25_rank: int | None
    """1-based BM25 rank, `None` when beyond the fusion depth."""
    dense_rank: int | None
    """1-based dense rank, `None` when beyond the fusion depth."""

    def as_detail(self) -> dict[str, Any]:
        """JSON-ready component scores."""
        return {
            "bm25": round(self.bm25, 4),
            "dense": round(self.dense, 4),
            "dense_head": round(self.dense_head, 4),
            "dense_body": round(self.dense_body, 4),
            "fused": round(self.fused, 6),
            "bm25_rank": self.bm25_rank,
            "dense_rank": self.dense_rank,
        }


@dataclass
class IndexReport:
    """What a build or update did."""

    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    retried: int = 0
    """Unchanged skills embedded again because an earlier embedder failure left them out."""
    embedded_texts: int = 0
    """Texts sent to the embedder (cache hits inside a `CachedEmbedder` still count here)."""
    failed: list[str] = field(default_factory=list)
    """Skills indexed lexically only because the embedder failed; `update` retries them."""
    error: str | None = None
    """The embedder's error, when it failed."""
    seconds: float = 0.0


@contextmanager
def progress_bar(
    total: int, description: str, enabled: bool | None = None
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on standard error; silent when `enabled` is false or not a TTY.

    Yields:
        `advance(n)`.
    """
    show = sys.stderr.isatty() if enabled is None else enabled
    if not show or total <= 0:
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def _text_hash(text: SkillText, dense: Sequence[str]) -> str:
    h = hashlib.sha256()
    for part in (text.lexical, *dense):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:24]


def _check(skills: Sequence[SkillLike]) -> None:
    seen: set[str] = set()
    for i, s in enumerate(skills):
        sid = getattr(s, "id", None)
        if not isinstance(sid, str) or not sid.strip():
            msg = f"skill #{i} has no id (got {sid!r}); every skill needs a non-empty string id"
            raise ConfigurationError(msg)
        if sid in seen:
            msg = f"duplicate skill id {sid!r} (skill #{i}); skill ids must be unique"
            raise ConfigurationError(msg)
        seen.add(sid)
        for attr in ("name", "description", "body"):
            if not isinstance(getattr(s, attr, ""), str):
                msg = f"skill {sid!r}: {attr} must be a string"
                raise ConfigurationError(msg)
        tags = getattr(s, "tags", ()) or ()
        if isinstance(tags, str | bytes) or not all(isinstance(t, str) for t in tags):
            msg = (
                f"skill {sid!r}: tags must be a list of strings, got {tags!r}; "
                "write e.g. tags=['billing'] (one tag is a list of one)"
            )
            raise ConfigurationError(msg)


class SkillIndex:
    """Hybrid lexical + dense index over skills. Build, search, update, save, load.

    Args:
        embedder: Dense embedder (wrap it in `CachedEmbedder` to persist vectors).
        caps: Truncation and chunking policy.
        k1: BM25 term-frequency saturation.
        b: BM25 length normalisation.
        ann_rows: Above this many vectors, dense retrieval probes k-means clusters instead of
            scanning every vector (`None` = always exact). Candidates' reported cosines are
            always exact.
        nlist: Clusters; default `2·sqrt(rows)` (at most 1024).
        nprobe: Clusters scored per query.
    """

    def __init__(
        self,
        embedder: Embedder,
        caps: TextCaps | None = None,
        *,
        k1: float = 1.2,
        b: float = 0.75,
        ann_rows: int | None = 50_000,
        nlist: int | None = None,
        nprobe: int = 32,
    ) -> None:
        self.embedder = embedder
        self.ann_rows = ann_rows
        self.nlist = nlist
        self.nprobe = nprobe
        self._centroids: Matrix | None = None
        self._cluster_rows: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._cluster_starts: npt.NDArray[np.int64] = np.zeros(1, dtype=np.int64)
        self._owner: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.caps = caps or TextCaps()
        self.k1, self.b = k1, b
        self.ids: list[str] = []
        self.names: list[str] = []
        self.descriptions: list[str] = []
        self.hashes: list[str] = []
        self.embedded: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self.starts: npt.NDArray[np.int64] = np.zeros(1, dtype=np.int64)
        self.n_head: npt.NDArray[np.int8] = np.zeros(0, dtype=np.int8)
        self.vectors: Matrix = np.zeros((0, 0), dtype=np.float32)
        self.failed: list[str] = []
        self.last_error: str | None = None
        self._bm25: Any = None
        self._vocab: dict[str, int] = {}
        self._postings: tuple[npt.NDArray[Any], npt.NDArray[Any], int] | None = None
        self._pos: dict[str, int] = {}
        self._head_tokens: dict[int, tuple[frozenset[str], frozenset[str]]] = {}
        # `(positions the masks were built from, masks by allowed ids)`. `_pos` is rebound
        # whenever the ids change (`update`, `load`), so its identity versions the cache; a
        # shallow copy shares the cache until its own `update` rebinds `_pos`.
        self._masks: tuple[dict[str, int], OrderedDict[tuple[str, ...], _Mask]] = (
            self._pos,
            OrderedDict(),
        )
        self._masks_lock = threading.Lock()

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        skills: Iterable[SkillLike],
        embedder: Embedder,
        caps: TextCaps | None = None,
        *,
        progress: bool | None = None,
    ) -> SkillIndex:
        """Index `skills` from scratch (see `update` for the report and failure behaviour)."""
        index = cls(embedder, caps)
        index.update(skills, progress=progress)
        return index

    @classmethod
    def from_directory(
        cls,
        path: str | Path,
        embedder: Embedder,
        caps: TextCaps | None = None,
        *,
        progress: bool | None = None,
    ) -> SkillIndex:
        """Index every `<id>/SKILL.md` below `path`.

        Raises:
            ContentError: A file is malformed (no front matter, not UTF-8, duplicate id, ...).
        """
        from agentroute.registry._skill_files import read_skill_dir

        return cls.build(read_skill_dir(Path(path)), embedder, caps, progress=progress)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, skill_id: object) -> bool:
        return skill_id in self._pos

    def head_tokens(self, i: int) -> tuple[frozenset[str], frozenset[str]]:
        """Lexical tokens of skill `i`'s name, and of its name + description (cached)."""
        cached = self._head_tokens.get(i)
        if cached is None:
            name = frozenset(tokenize(self.names[i]))
            cached = (name, name | frozenset(tokenize(self.descriptions[i])))
            self._head_tokens[i] = cached
        return cached

    def position(self, skill_id: str) -> int:
        """Index position of a skill id (`KeyError` when absent)."""
        return self._pos[skill_id]

    def update(self, skills: Iterable[SkillLike], *, progress: bool | None = None) -> IndexReport:
        """Make the index hold exactly `skills`, embedding only what is new or changed.

        Vectors of unchanged skills are reused, so after one skill changes only that skill is
        embedded. The BM25 part is rebuilt from the texts (seconds at 80,000 skills). If the
        embedder fails, the skills it did not embed are indexed lexically only (dense score 0),
        listed in the report and in `failed`, and retried by the next `update`.

        Not thread-safe: searching an index while `update` runs on it may fail or mix the
        old and new skills. To update an index that is serving, update a copy and publish it
        with one assignment, as `RetrieveRerank.build_index` does (`copy(index).update(...)`;
        `update` only rebinds attributes, so the copy shares nothing it changes).

        Raises:
            ConfigurationError: Duplicate or missing ids, a non-string field, or tags that are
                not a list of strings.
        """
        started, items, caps, report = time.perf_counter(), list(skills), self.caps, IndexReport()
        _check(items)
        texts = [
            SkillText(s.name or s.id, s.description or "", s.body or "", tuple(s.tags or ()), caps)
            for s in items
        ]
        dense = [t.dense_texts(caps) for t in texts]
        n_head = np.array([len(t.head_texts(caps)) for t in texts], dtype=np.int8)
        hashes = [_text_hash(t, d) for t, d in zip(texts, dense, strict=True)]
        new_ids = [s.id for s in items]
        counts = np.array([len(d) for d in dense], dtype=np.int64)
        starts = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum(counts, out=starts[1:])
        todo, reuse = self._classify(new_ids, hashes, report)
        embedded = np.zeros(len(items), dtype=bool)
        new_rows, failed_idx, error, dim = self._embed(
            todo, dense, self.vectors.shape[1] if reuse else 0, report, progress
        )
        embedded[list(new_rows)] = True
        if dim == 0:
            dim = 1
        vectors = np.zeros((int(starts[-1]), dim), dtype=np.float32)
        for i, j in reuse:
            vectors[starts[i] : starts[i + 1]] = self.vectors[self.starts[j] : self.starts[j + 1]]
            embedded[i] = True
        for i, rows in new_rows.items():
            vectors[starts[i] : starts[i + 1]] = rows
        self._build_bm25([t.lexical for t in texts])
        self.ids = new_ids
        self.names = [t.name for t in texts]
        self.descriptions = [(s.description or "")[: caps.description_chars] for s in items]
        self.hashes = hashes
        self.embedded = embedded
        self.starts, self.n_head, self.vectors = starts, n_head, vectors
        self._pos = {sid: i for i, sid in enumerate(new_ids)}
        self._head_tokens = {}
        self._build_ann()
        self.failed = [new_ids[i] for i in failed_idx]
        self.last_error = error
        report.failed, report.error = list(self.failed), error
        report.seconds = time.perf_counter() - started
        if error is not None:
            _log.warning(
                "embedding failed; skills indexed lexically only",
                failed=len(self.failed),
                error=error,
            )
        return report

    def _classify(
        self, new_ids: list[str], hashes: list[str], report: IndexReport
    ) -> tuple[list[int], list[tuple[int, int]]]:
        """Positions to embed, and (new, old) positions whose vectors are reused; counts them."""
        old = {sid: i for i, sid in enumerate(self.ids)}
        report.removed = len(set(old) - set(new_ids))
        todo: list[int] = []
        reuse: list[tuple[int, int]] = []
        for i, (sid, h) in enumerate(zip(new_ids, hashes, strict=True)):
            j = old.get(sid)
            if j is not None and self.hashes[j] == h and bool(self.embedded[j]):
                reuse.append((i, j))
                report.unchanged += 1
            else:
                todo.append(i)
                if j is None:
                    report.added += 1
                elif self.hashes[j] != h:
                    report.changed += 1
                else:
                    report.retried += 1
        return todo, reuse

    def _embed(
        self,
        todo: Sequence[int],
        dense: Sequence[Sequence[str]],
        dim: int,
        report: IndexReport,
        progress: bool | None,
    ) -> tuple[dict[int, Matrix], list[int], str | None, int]:
        """Embed the texts of skills `todo` in batches; stop at the first failure.

        Returns the new rows per skill, the skills left unembedded, the error, and the
        dimension (`dim` stays fixed when vectors are being reused).
        """
        new_rows: dict[int, Matrix] = {}
        total = int(sum(len(dense[i]) for i in todo))
        cursor = 0
        with progress_bar(total, "embedding skills", progress) as advance:
            while cursor < len(todo):
                texts: list[str] = []
                owners: list[int] = []
                end = cursor
                while end < len(todo) and len(texts) < 256:
                    texts.extend(dense[todo[end]])
                    owners.append(todo[end])
                    end += 1
                try:
                    vecs = np.asarray(self.embedder.embed(texts), dtype=np.float32)
                    if vecs.ndim != 2 or vecs.shape[0] != len(texts):
                        msg = f"embedder returned {vecs.shape} for {len(texts)} texts"
                        raise ValueError(msg)
                    if dim and vecs.shape[1] != dim:
                        msg = f"embedder changed dimension from {dim} to {vecs.shape[1]}"
                        raise ValueError(msg)
                except Exception as exc:  # any provider failure: keep what we have
                    return new_rows, list(todo[cursor:]), f"{type(exc).__name__}: {exc}", dim
                report.embedded_texts += len(texts)
                dim = vecs.shape[1]
                pos = 0
                for i in owners:
                    n = len(dense[i])
                    new_rows[i] = vecs[pos : pos + n]
                    pos += n
                advance(len(texts))
                cursor = end
        return new_rows, [], None, dim

    def _build_bm25(self, lexical: Sequence[str]) -> None:
        try:
            import bm25s
        except ImportError as exc:
            msg = f"the skills index needs bm25s: {EMBEDDINGS_EXTRA}"
            raise MissingExtraError(msg) from exc
        corpus = [tokenize(t) or ["\x00empty"] for t in lexical]
        model = bm25s.BM25(k1=self.k1, b=self.b)
        if corpus:
            model.index(corpus, show_progress=False)
        self._bm25 = model
        self._vocab = dict(getattr(model, "vocab_dict", {}) or {})
        self._prepare_postings()

    def _prepare_postings(self) -> None:
        """Keep each term's list of skills sorted, so `term_stats` can binary-search it."""
        scores = getattr(self._bm25, "scores", None)
        if not isinstance(scores, dict) or "indptr" not in scores:
            self._postings = None
            return
        indices, indptr = np.asarray(scores["indices"]), np.asarray(scores["indptr"])
        if len(indices) > 1:
            # bm25s writes each term's skills in ascending order; check rather than trust it.
            ascending = indices[1:] >= indices[:-1]
            ends = indptr[1:-1]
            ascending[ends[(ends > 0) & (ends < len(indices))] - 1] = True
            if not bool(ascending.all()):
                term = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
                indices = indices[np.lexsort((indices, term))]
        self._postings = (indices, indptr, int(scores.get("num_docs", len(self.ids))))

    # -- search -------------------------------------------------------------------------------

    def embed_query(self, query: str) -> Matrix:
        """The query's vector (raises whatever the embedder raises).

        Behind a `CachedEmbedder`, queries are cached in its bounded in-memory query cache
        only, never in its file: every distinct query written there would grow it forever.
        """
        text = query[: self.caps.query_chars]
        if isinstance(self.embedder, CachedEmbedder):
            vectors = np.asarray(self.embedder.embed_queries([text]))
        else:
            vectors = np.asarray(self.embedder.embed([text]))
        out: Matrix = vectors[0].astype(np.float32, copy=False)
        return out

    def bm25_scores(self, query: str | QueryTokens) -> npt.NDArray[np.float32]:
        """BM25 score of every skill for `query` (cut at `caps.query_chars`)."""
        cut = QueryTokens.of(query).tokens(self.caps.query_chars)
        tokens = [t for t in cut if t in self._vocab]
        if not tokens or not self.ids:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def term_stats(
        self, query: str | QueryTokens, rows: Sequence[int]
    ) -> tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        """Which of the query's terms each of skills `rows` contains, and how rare the terms are.

        Args:
            query: The task text (cut at `caps.query_chars`), or its shared `QueryTokens`.
            rows: Index positions of the skills to look at (e.g. stage-1 candidates).

        Returns:
            `(terms, idf, present)`: the distinct query terms the index knows, BM25's inverse
            document frequency of each, and a `(len(terms), len(rows))` matrix saying whether
            each skill's lexical text (name, description, tags, body) holds each term. Each
            term costs one binary search over its skill list, whatever the pool size.
        """
        cut = QueryTokens.of(query).tokens(self.caps.query_chars)
        known = [t for t in dict.fromkeys(cut) if t in self._vocab]
        cols = np.asarray(rows, dtype=np.int64)
        if self._postings is None or not known:
            return [], np.zeros(0), np.zeros((0, len(cols)), dtype=bool)
        terms = [self._vocab[t] for t in known]
        indices, indptr, docs = self._postings
        idf = np.zeros(len(terms))
        present = np.zeros((len(terms), len(cols)), dtype=bool)
        for j, term in enumerate(terms):
            skills = indices[int(indptr[term]) : int(indptr[term + 1])]
            df = len(skills)
            idf[j] = np.log(1.0 + (docs - df + 0.5) / (df + 0.5))
            if df and len(cols):
                at = np.minimum(np.searchsorted(skills, cols), df - 1)
                present[j] = skills[at] == cols
        return known, idf, present

    def dense_scores(self, qvec: Matrix) -> npt.NDArray[np.float32]:
        """Per skill, the best cosine over its vectors (0 when dense retrieval is unavailable).

        Above `ann_rows` rows, only the `nprobe` clusters nearest the query are scored
        (an inverted-file index); skills outside them get -1.
        """
        n = len(self.ids)
        if not n or self.vectors.shape[1] != qvec.shape[0]:
            return np.zeros(n, dtype=np.float32)
        # einsum, not BLAS: one matrix-vector product is memory-bound, and BLAS's thread
        # hand-off costs tens of milliseconds on a busy machine.
        if self._centroids is None:
            rows = np.einsum("ij,j->i", self.vectors, qvec)
            best: npt.NDArray[np.float32] = np.maximum.reduceat(rows, self.starts[:-1])
            return best
        near = np.einsum("ij,j->i", self._centroids, qvec)
        probe = np.argpartition(-near, min(self.nprobe, len(near)) - 1)[: self.nprobe]
        rows, bounds = self._cluster_rows, self._cluster_starts
        picked = np.concatenate([rows[bounds[c] : bounds[c + 1]] for c in probe])
        sims = np.einsum("ij,j->i", self.vectors[picked], qvec)
        best = np.full(n, -1.0, dtype=np.float32)
        np.maximum.at(best, self._owner[picked], sims)
        return best

    def _exact(self, i: int, qvec: Matrix) -> tuple[float, float, float]:
        """Exact (best, head, body) cosines of skill `i`."""
        lo, hi = int(self.starts[i]), int(self.starts[i + 1])
        if self.vectors.shape[1] != qvec.shape[0]:
            return 0.0, 0.0, 0.0
        sims = np.einsum("ij,j->i", self.vectors[lo:hi], qvec)
        heads = int(self.n_head[i])
        body = float(sims[heads:].max()) if hi > lo + heads else 0.0
        return float(sims.max()), float(sims[:heads].max()), body

    def _build_ann(self) -> None:
        """Cluster the rows (k-means) when there are more than `ann_rows` of them."""
        self._centroids = None
        rows = self.vectors.shape[0]
        if self.ann_rows is None or rows <= self.ann_rows or self.vectors.shape[1] < 2:
            return
        from sklearn.cluster import MiniBatchKMeans

        nlist = self.nlist or int(min(1024, max(16, 2 * np.sqrt(rows))))
        rng = np.random.default_rng(0)
        sample = self.vectors[rng.choice(rows, size=min(rows, 50 * nlist), replace=False)]
        km = MiniBatchKMeans(n_clusters=nlist, random_state=0, batch_size=4096, n_init=1)
        km.fit(sample)
        centroids = km.cluster_centers_.astype(np.float32)
        labels = np.concatenate(
            [
                np.argmax(self.vectors[s : s + 8192] @ centroids.T, axis=1)
                for s in range(0, rows, 8192)
            ]
        )
        order = np.argsort(labels, kind="stable")
        self._cluster_rows = order.astype(np.int64)
        self._cluster_starts = np.searchsorted(labels[order], np.arange(nlist + 1)).astype(np.int64)
        self._centroids = centroids
        self._owner = np.repeat(np.arange(len(self.ids), dtype=np.int64), np.diff(self.starts))

    def search(
        self,
        query: str | QueryTokens,
        k: int = 30,
        *,
        allowed: Sequence[str] | None = None,
        depth: int | None = None,
        rrf_k: int = 60,
        weights: tuple[float, float] = (1.0, 1.0),
        qvec: Matrix | None = None,
    ) -> list[Retrieved]:
        """Stage 1: the top `k` skills by reciprocal-rank fusion of BM25 and dense ranks.

        Args:
            query: The task text, or its `QueryTokens` to share them with the reranker's
                features (`candidate_features`) instead of tokenising the query again.
            k: Candidates to return.
            allowed: Restrict to these ids (unknown ids are ignored); `None` = all. The mask
                of a recently used `allowed` sequence is reused until the index changes.
            depth: How deep each ranking is read for fusion; default `max(4k, 100)`.
            rrf_k: The RRF constant (`1 / (rrf_k + rank)`).
            weights: Weights of the (BM25, dense) rankings in the fusion.
            qvec: A precomputed query vector; computed here when `None`. A query vector of the
                wrong size (e.g. the embedder failed) means lexical-only retrieval.
        """
        n = len(self.ids)
        if n == 0 or k <= 0:
            return []
        q = QueryTokens.of(query)
        lex = self.bm25_scores(q)
        if qvec is None:
            qvec = self.embed_query(q.text)
        dense = self.dense_scores(qvec)
        mask = None if allowed is None else self._allowed_mask(allowed)
        depth = min(n, depth or max(4 * k, 100))
        bm_top = _top(lex, depth, mask, positive=True)
        de_top = _top(dense, depth, mask, positive=True)
        fused: dict[int, float] = {}
        bm_rank = {int(i): r for r, i in enumerate(bm_top, start=1)}
        de_rank = {int(i): r for r, i in enumerate(de_top, start=1)}
        for ranks, w in ((bm_rank, weights[0]), (de_rank, weights[1])):
            for i, r in ranks.items():
                fused[i] = fused.get(i, 0.0) + w / (rrf_k + r)
        if mask is not None and len(fused) < k:
            for extra in np.flatnonzero(mask).tolist():
                fused.setdefault(int(extra), 0.0)
        order = sorted(fused, key=lambda i: (-fused[i], -dense[i], self.ids[i]))[:k]
        out = []
        for i in order:
            best, head, body = self._exact(i, qvec)
            out.append(
                Retrieved(
                    id=self.ids[i],
                    index=i,
                    bm25=float(lex[i]),
                    dense=best,
                    dense_head=head,
                    dense_body=body,
                    fused=fused[i],
                    bm25_rank=bm_rank.get(i),
                    dense_rank=de_rank.get(i),
                )
            )
        return out

    def _allowed_mask(self, allowed: Sequence[str]) -> _Mask:
        """The read-only mask of `allowed`, from a small per-version cache.

        An agent without declared skills is allowed the whole pool, so each of its decisions
        would otherwise map every id to its position (~20 ms at 80,000 skills); the cache
        makes a repeat cost one hash and one comparison of the id tuple.
        """
        key = allowed if isinstance(allowed, tuple) else tuple(allowed)
        pos = self._pos
        with self._masks_lock:
            owner, masks = self._masks
            if owner is not pos:
                masks = OrderedDict()
                self._masks = (pos, masks)
            mask = masks.get(key)
            if mask is not None:
                masks.move_to_end(key)
                return mask
        mask = self._build_mask(pos, key)
        if _MASK_CACHE_SIZE > 0:
            with self._masks_lock:
                masks[key] = mask
                while len(masks) > _MASK_CACHE_SIZE:
                    masks.popitem(last=False)
        return mask

    @staticmethod
    def _build_mask(pos: dict[str, int], allowed: Sequence[str]) -> _Mask:
        mask = np.zeros(len(pos), dtype=bool)
        mask[[pos[a] for a in allowed if a in pos]] = True
        mask.flags.writeable = False  # shared by every search with the same allowed ids
        return mask

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the index to directory `path`: `meta.json`, `vectors.npy`, `bm25/`, ...

        The files are written to a temporary sibling directory, flushed to disk, and then
        swapped in with renames, so `path` always holds one complete index: a save that fails
        part way leaves the previous index (or nothing) behind, never a mix. Processes serving
        from `load(path, mmap=True)` keep reading the files they opened (the old index) until
        they load again, and an index loaded with `mmap=True` can be saved to its own path.
        Other files in an existing index directory are not kept.

        Raises:
            ConfigurationError: `path` exists and is not a directory, or is a non-empty
                directory that holds no skills index (it would be replaced).
        """
        root = Path(path)
        if root.exists() and (
            not root.is_dir() or (any(root.iterdir()) and not (root / "meta.json").exists())
        ):
            msg = (
                f"{root}: exists and is not a skills index; saving would replace it, so "
                "choose a new or empty directory"
            )
            raise ConfigurationError(msg)
        root.parent.mkdir(parents=True, exist_ok=True)
        tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp = root.parent / f".{root.name}.saving-{tag}"
        try:
            self._write_parts(tmp)
            _fsync_tree(tmp)
            if root.exists():
                # A directory cannot be renamed over a non-empty one: move the old index aside
                # first. Readers with the old files mapped keep their inodes.
                old = root.parent / f".{root.name}.old-{tag}"
                root.rename(old)
                tmp.rename(root)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(root)
            _fsync_dir(root.parent)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return root

    def _write_parts(self, root: Path) -> None:
        """Write every file of the index into the new directory `root`."""
        root.mkdir()
        np.save(root / "vectors.npy", self.vectors)
        np.save(root / "starts.npy", self.starts)
        np.save(root / "n_head.npy", self.n_head)
        np.save(root / "embedded.npy", self.embedded)
        if self._bm25 is not None and self.ids:
            self._bm25.save(str(root / "bm25"), show_progress=False)
        meta = {
            "format": _FORMAT,
            "embedder": self.embedder.name,
            "caps": self.caps.model_dump(),
            "k1": self.k1,
            "b": self.b,
            "ann": {"ann_rows": self.ann_rows, "nlist": self.nlist, "nprobe": self.nprobe},
            "ids": self.ids,
            "names": self.names,
            "descriptions": self.descriptions,
            "hashes": self.hashes,
            "failed": self.failed,
        }
        (root / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path, embedder: Embedder, *, mmap: bool = False) -> SkillIndex:
        """Read an index written by `save`.

        Raises:
            ConfigurationError: Missing or foreign files, or `embedder` is not the one the
                index was built with (its vectors would be meaningless).
        """
        root = Path(path)
        try:
            meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            msg = f"{root}: not a skills index (no readable meta.json): {exc}"
            raise ConfigurationError(msg) from exc
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            meta = meta if isinstance(meta, dict) else {}
            msg = f"{root}: index format {meta.get('format')!r} is not {_FORMAT}; rebuild it"
            raise ConfigurationError(msg)
        if meta.get("embedder") != embedder.name:
            msg = (
                f"{root}: index was built with embedder {meta.get('embedder')!r}, not "
                f"{embedder.name!r}; load it with the same embedder or rebuild"
            )
            raise ConfigurationError(msg)
        try:
            index = cls._read_parts(root, meta, embedder, mmap=mmap)
        except (OSError, KeyError, TypeError, ValueError) as exc:
            msg = f"{root}: skills index is incomplete or damaged ({exc!r}); rebuild it"
            raise ConfigurationError(msg) from exc
        index._build_ann()  # deterministic (seeded) and fast next to loading the vectors
        return index

    @classmethod
    def _read_parts(
        cls, root: Path, meta: dict[str, Any], embedder: Embedder, *, mmap: bool
    ) -> SkillIndex:
        """The arrays, lists and BM25 model of a saved index (before its ANN is built)."""
        index = cls(
            embedder, TextCaps(**meta["caps"]), k1=meta["k1"], b=meta["b"], **meta.get("ann", {})
        )
        index.vectors = np.load(root / "vectors.npy", mmap_mode="r" if mmap else None)
        index.starts = np.load(root / "starts.npy")
        index.n_head = np.load(root / "n_head.npy")
        index.embedded = np.load(root / "embedded.npy")
        index.ids = list(meta["ids"])
        index.names = list(meta["names"])
        index.descriptions = list(meta["descriptions"])
        index.hashes = list(meta["hashes"])
        index.failed = list(meta["failed"])
        index._pos = {sid: i for i, sid in enumerate(index.ids)}
        if index.ids:
            import bm25s

            index._bm25 = bm25s.BM25.load(str(root / "bm25"), mmap=mmap, show_progress=False)
            index._vocab = dict(index._bm25.vocab_dict)
            index._prepare_postings()
        index._check_parts()
        return index

    def _check_parts(self) -> None:
        """Raise `ValueError` unless the loaded parts describe the same skills.

        Each part is well-formed on its own after an interrupted or mixed write; only their
        sizes betray that they come from different indexes.
        """
        n = len(self.ids)
        sizes = {
            "names": len(self.names),
            "descriptions": len(self.descriptions),
            "hashes": len(self.hashes),
            "embedded.npy": len(self.embedded),
            "n_head.npy": len(self.n_head),
            "starts.npy - 1": len(self.starts) - 1,
        }
        if self._postings is not None:
            sizes["bm25 documents"] = self._postings[2]
        wrong = {part: size for part, size in sizes.items() if size != n}
        if wrong:
            msg = f"parts disagree with the {n} skill ids: {wrong}"
            raise ValueError(msg)
        rows = int(self.starts[-1]) if len(self.starts) else -1
        if self.vectors.ndim != 2 or self.vectors.shape[0] != rows:
            msg = f"vectors.npy has shape {self.vectors.shape}, starts.npy expects {rows} rows"
            raise ValueError(msg)
        if len(self.starts) and (
            int(self.starts[0]) != 0 or bool(np.any(np.diff(self.starts) < 0))
        ):
            msg = "starts.npy is not an ascending list of row offsets from 0"
            raise ValueError(msg)

    def memory_bytes(self) -> int:
        """Approximate bytes held by vectors and the BM25 matrix."""
        total = int(self.vectors.nbytes)
        scores = getattr(self._bm25, "scores", None) or {}
        for key in ("data", "indices", "indptr"):
            arr = scores.get(key) if isinstance(scores, dict) else None
            if arr is not None:
                total += int(arr.nbytes)
        return total


def _top(
    scores: npt.NDArray[np.float32],
    depth: int,
    mask: npt.NDArray[np.bool_] | None,
    *,
    positive: bool,
) -> npt.NDArray[np.intp]:
    """Indices of the `depth` best scores (descending), optionally masked, optionally > 0."""
    s = scores if mask is None else np.where(mask, scores, -np.inf)
    if positive:
        s = np.where(s > 0, s, -np.inf)
    depth = min(depth, s.shape[0])
    part = np.argpartition(-s, depth - 1)[:depth] if depth < s.shape[0] else np.arange(s.shape[0])
    part = part[np.isfinite(s[part])]
    return part[np.argsort(-s[part], kind="stable")]


def _fsync_tree(root: Path) -> None:
    """Flush every file below `root`, and the directories holding them, to disk."""
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_file():
            with path.open("rb+") as handle:
                os.fsync(handle.fileno())
        else:
            _fsync_dir(path)
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    """Flush a directory's entries (renames) to disk, where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows, where directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
