"""`RetrieveRerank`: the skills-slot strategy (SkillRouter: hybrid retrieval, then rerank)."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from copy import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import structlog

from agentroute.errors import ConfigurationError, did_you_mean
from agentroute.registry import Registry
from agentroute.routing._protocol import Candidate, Complete, RouteDecision, RoutingContext
from agentroute.routing.embeddings import (
    CachedEmbedder,
    Embedder,
    SentenceTransformerEmbedder,
    default_cache_dir,
    limit_threads,
)
from agentroute.routing.skills._index import Retrieved, SkillIndex
from agentroute.routing.skills._rerank import (
    CrossEncoderReranker,
    FeatureReranker,
    LLMReranker,
    Reranker,
    RerankRequest,
)
from agentroute.routing.skills._static import StaticEmbedder
from agentroute.routing.skills._text import QueryTokens, TextCaps

__all__ = ["Ranked", "RetrieveRerank", "make_embedder", "make_reranker"]

_log = structlog.get_logger(__name__)


def _litellm_embedder(model: str) -> Embedder:
    from agentroute.models._embedding import LiteLLMEmbedder

    return LiteLLMEmbedder(model)


_EMBEDDERS: dict[str, Callable[[str], Embedder]] = {
    "minilm": lambda arg: SentenceTransformerEmbedder(),
    "st": lambda arg: SentenceTransformerEmbedder(arg or None),
    "static": lambda arg: StaticEmbedder(dim=int(arg) if arg else 256),
    "litellm": _litellm_embedder,
}
"""Embedder names usable in YAML: `minilm`, `st:<path>`, `static[:dim]`, `litellm:<model id>`."""

_RERANKERS: dict[str, Callable[[str], Reranker | None]] = {
    "feature": lambda arg: FeatureReranker(arg or None),
    "llm": lambda arg: LLMReranker(arg or None),
    "cross-encoder": CrossEncoderReranker,
    "none": lambda arg: None,
}
"""Reranker names: `feature[:weights.json]`, `llm[:model]`, `cross-encoder:<path>`, `none`."""


def make_embedder(spec: str | Embedder) -> Embedder:
    """Resolve an embedder name (`minilm`, `static`, `st:<path>`, `litellm:<model>`).

    Raises:
        ConfigurationError: Unknown name (with a did-you-mean hint), or a bad argument.
    """
    if not isinstance(spec, str):
        return spec
    kind, _, arg = spec.partition(":")
    if kind not in _EMBEDDERS:
        hint = did_you_mean(kind, _EMBEDDERS)
        msg = f"unknown embedder {spec!r}{hint}"
        raise ConfigurationError(msg)
    if kind == "litellm" and not arg:
        msg = "embedder 'litellm' needs a model id, e.g. 'litellm:openai/text-embedding-3-small'"
        raise ConfigurationError(msg)
    if kind == "static" and arg and not (arg.isdigit() and int(arg) > 0):
        msg = (
            f"embedder {spec!r}: the static dimension must be a positive integer, e.g. 'static:256'"
        )
        raise ConfigurationError(msg)
    return _EMBEDDERS[kind](arg)


def make_reranker(spec: str | Reranker | None) -> Reranker | None:
    """Resolve a reranker name (`feature`, `llm[:model]`, `cross-encoder:<path>`, `none`).

    Raises:
        ConfigurationError: Unknown name, or `cross-encoder` without a model path.
    """
    if spec is None or not isinstance(spec, str):
        return spec
    kind, _, arg = spec.partition(":")
    if kind not in _RERANKERS:
        hint = did_you_mean(kind, _RERANKERS)
        msg = f"unknown reranker {spec!r}{hint}"
        raise ConfigurationError(msg)
    if kind == "cross-encoder" and not arg:
        msg = "reranker 'cross-encoder' needs a model, e.g. 'cross-encoder:/models/ms-marco-MiniLM'"
        raise ConfigurationError(msg)
    return _RERANKERS[kind](arg)


@dataclass(frozen=True)
class Ranked:
    """The outcome of retrieve-and-rerank for one query."""

    chosen: tuple[str, ...]
    """Skill ids that cleared the threshold, best first (at most `n`)."""
    ranking: tuple[str, ...]
    """All `k` candidates in final order (for evaluation)."""
    stage1: tuple[Retrieved, ...]
    """Stage-1 candidates in fused order."""
    relevance: tuple[float, ...] | None
    """Reranker relevance per stage-1 candidate (`None` when the reranker failed or is off)."""
    notes: dict[str, str]
    """Degradations: `dense_error`, `reranker_error`."""
    timings_ms: dict[str, float]


class RetrieveRerank:
    """Skills slot: retrieve `k` skills by BM25 + dense fusion, rerank, keep the best `n`.

    Stage 1 scores every skill lexically (BM25 over name, description and body, names and
    descriptions weighted up) and densely (the best cosine over a head vector and body-chunk
    vectors), and fuses the two rankings by reciprocal rank. Stage 2 rescoring gives each
    candidate a relevance in `[0, 1]`; skills under `min_relevance` are dropped, so the
    decision may be empty: no skill fits. The decision records every stage-1 candidate with
    its lexical, dense and fused scores, and the reranked list.

    The index is built from the registry on first use (and updated incrementally when the
    registry changes); pass `index=` to use one built and saved ahead of time. Query and skill
    vectors are cached by content hash in `<cache>/embeddings.sqlite`.

    Args:
        k: Stage-1 candidates.
        n: Skills returned at most.
        embedder: An `Embedder` or a name: `minilm` (default, bundled, offline), `static`
            (fast distilled model for very large pools), `st:<path>`, `litellm:<model id>`.
        reranker: A `Reranker` or a name: `feature` (default, learned, offline), `llm[:model]`
            (listwise LLM, through the run's traced model calls), `cross-encoder:<path>`,
            `none` (stage-1 order; no threshold is applied).
        min_relevance: Relevance a skill must reach to be given to the agent.
        caps: Truncation and chunking policy (a `TextCaps` or its fields as a mapping).
        index: A `SkillIndex`, or a directory written by `SkillIndex.save`.
        cache: Embedding cache file; `True` = `<cache dir>/embeddings.sqlite`, `False` = none.
        rrf_k: Reciprocal-rank-fusion constant.
        fusion_weights: Weights of the (BM25, dense) rankings in the fusion.
        progress: Progress bar while indexing; `None` = only on a terminal.
        threads: CPU thread cap (see `limit_threads`).
        retry_after: Seconds between attempts to embed skills the embedder failed on (a
            provider outage): while `index.failed` is non-empty, a route at least this long
            after the last attempt starts embedding them again on a background thread (routes
            never wait for it; the new index replaces the current one when done; a failure
            only leaves them lexical-only until the next attempt). Applies to the index built
            from the registry, not to one passed as `index=`.

    Example:
        ```python
        router = ar.Router(registry, agent=..., skills=ar.RetrieveRerank(k=30, n=3))
        ```
    """

    name: ClassVar[str] = "retrieve-rerank"
    version: ClassVar[str] = "1"

    def __init__(
        self,
        k: int = 30,
        n: int = 3,
        *,
        embedder: str | Embedder = "minilm",
        reranker: str | Reranker | None = "feature",
        min_relevance: float = 0.1,
        caps: TextCaps | Mapping[str, Any] | None = None,
        index: SkillIndex | str | Path | None = None,
        cache: str | Path | bool = True,
        rrf_k: int = 60,
        fusion_weights: Sequence[float] = (1.0, 1.0),
        progress: bool | None = None,
        threads: int | None = None,
        retry_after: float = 60.0,
    ) -> None:
        if k < 1 or n < 0 or n > k:
            msg = f"RetrieveRerank needs k >= 1 and 0 <= n <= k, got k={k}, n={n}"
            raise ConfigurationError(msg)
        if not 0.0 <= min_relevance <= 1.0:
            msg = f"min_relevance must be in [0, 1], got {min_relevance}"
            raise ConfigurationError(msg)
        if len(fusion_weights) != 2:
            msg = f"fusion_weights must be two numbers (bm25, dense), got {fusion_weights!r}"
            raise ConfigurationError(msg)
        try:
            self.caps = caps if isinstance(caps, TextCaps) else TextCaps(**dict(caps or {}))
        except ValueError as exc:
            msg = f"RetrieveRerank caps: {exc}"
            raise ConfigurationError(msg) from exc
        self.k, self.n = k, n
        self.min_relevance = min_relevance
        self.rrf_k = rrf_k
        self.fusion_weights = (float(fusion_weights[0]), float(fusion_weights[1]))
        self.progress = progress
        self.threads = threads
        inner = make_embedder(embedder)
        if cache is False or isinstance(inner, CachedEmbedder):
            self.embedder: Embedder = inner
        else:
            path = default_cache_dir() / "embeddings.sqlite" if cache is True else Path(cache)
            self.embedder = CachedEmbedder(inner, path)
        self.reranker = make_reranker(reranker)
        self._index: SkillIndex | None = None
        self._index_source: str | None = None
        if isinstance(index, SkillIndex):
            self._index = index
            self._index_source = "given"
        elif index is not None:
            self._index = SkillIndex.load(index, self.embedder)
            self._index_source = str(index)
        self._built_for: tuple[int, int] | None = None
        self.retry_after = retry_after
        self._last_build = 0.0
        # Builds run one at a time (a route's rebuild may meet a background retry's).
        self._build_lock = threading.Lock()
        self._retrying: threading.Thread | None = None
        self._lock = asyncio.Lock()

    def params(self) -> dict[str, Any]:
        """The parameters recorded with every decision."""
        return {
            "k": self.k,
            "n": self.n,
            "embedder": self.embedder.name,
            "reranker": self.reranker.name if self.reranker else "none",
            "min_relevance": self.min_relevance,
            "caps": (self._index.caps if self._index is not None else self.caps).model_dump(),
            "rrf_k": self.rrf_k,
            "fusion_weights": list(self.fusion_weights),
            "index": self._index_source or "registry",
        }

    @property
    def index(self) -> SkillIndex | None:
        """The index in use (`None` until first built)."""
        return self._index

    def build_index(self, registry: Registry) -> SkillIndex:
        """Build (or incrementally update) the index from the registry's skills, now."""
        limit_threads(self.threads)
        with self._build_lock:
            # Update a copy and publish it with one assignment: runs searching the current
            # index meanwhile never see it half-updated (`update` only rebinds attributes, so a
            # shallow copy shares nothing it changes).
            index = (
                SkillIndex(self.embedder, self.caps) if self._index is None else copy(self._index)
            )
            self._last_build = time.monotonic()
            index.update(registry.skills.values(), progress=self.progress)
            self._index = index
            self._built_for = (id(registry), registry.version)
            return index

    async def _ensure_index(self, registry: Registry) -> SkillIndex:
        async with self._lock:
            if self._index is not None and self._index_source is not None:
                return self._index
            if self._index is None or self._built_for != (id(registry), registry.version):
                return await asyncio.to_thread(self.build_index, registry)
            if self._index.failed and time.monotonic() - self._last_build >= self.retry_after:
                self._retry_failed(registry)
            return self._index

    def _retry_failed(self, registry: Registry) -> None:
        """Embed the skills the embedder failed on again, on a daemon thread of its own.

        An update embeds only them (the others reuse their vectors) and publishes the new
        index with one assignment; routes meanwhile serve the current one and never wait. A
        failure is logged and leaves the skills lexical-only until the next attempt.
        """
        if self._retrying is not None and self._retrying.is_alive():
            return
        self._last_build = time.monotonic()  # the backoff counts from this attempt
        failed = len(self._index.failed) if self._index is not None else 0

        def work() -> None:
            try:
                self.build_index(registry)
            except Exception as exc:
                _log.warning(
                    "retrying failed skill embeddings failed",
                    failed=failed,
                    error=f"{type(exc).__name__}: {exc}",
                )

        self._retrying = threading.Thread(target=work, name="agentroute-skills-retry", daemon=True)
        self._retrying.start()

    async def rank(
        self,
        query: str,
        index: SkillIndex,
        *,
        allowed: Sequence[str] | None = None,
        document: Callable[[str], tuple[str, str, str]] | None = None,
        complete: Complete | None = None,
    ) -> Ranked:
        """Retrieve and rerank for one query on `index` (what `route` and evaluations call).

        Never raises for a failing embedder or reranker: retrieval falls back to lexical only,
        reranking to the stage-1 order, and `Ranked.notes` says what happened.
        """
        notes: dict[str, str] = {}
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        query = query[: self.caps.query_chars]
        # One tokenisation per decision, shared by BM25, the term statistics and the
        # reranker's features (a second one only when the index cuts queries shorter).
        tokens = QueryTokens(query)
        try:
            # Embedding a query takes ~15 ms of CPU: off the event loop, so concurrent runs
            # keep moving.
            qvec = await asyncio.to_thread(index.embed_query, query)
        except Exception as exc:
            notes["dense_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
            qvec = np.zeros(0, dtype=np.float32)
        t1 = time.perf_counter()
        stage1 = index.search(
            tokens,
            self.k,
            allowed=allowed,
            rrf_k=self.rrf_k,
            weights=self.fusion_weights,
            qvec=qvec,
        )
        t2 = time.perf_counter()
        relevance: list[float] | None = None
        if self.reranker is not None and stage1:
            request = RerankRequest(
                query=query,
                candidates=stage1,
                index=index,
                document=document or _index_document(index),
                complete=complete,
                tokens=tokens,
            )
            try:
                relevance = list(await self.reranker.rerank(request))
                if len(relevance) != len(stage1):
                    msg = f"reranker returned {len(relevance)} scores for {len(stage1)} candidates"
                    raise ValueError(msg)
            except Exception as exc:
                notes["reranker_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
                relevance = None
        t3 = time.perf_counter()
        if relevance is None:
            order = list(range(len(stage1)))
            chosen = [stage1[i].id for i in order[: self.n]]
        else:
            order = sorted(range(len(stage1)), key=lambda i: (-relevance[i], i))
            chosen = [stage1[i].id for i in order[: self.n] if relevance[i] >= self.min_relevance]
        timings.update(
            embed_ms=(t1 - t0) * 1e3, retrieve_ms=(t2 - t1) * 1e3, rerank_ms=(t3 - t2) * 1e3
        )
        return Ranked(
            chosen=tuple(chosen),
            ranking=tuple(stage1[i].id for i in order),
            stage1=tuple(stage1),
            relevance=tuple(relevance) if relevance is not None else None,
            notes=notes,
            timings_ms=timings,
        )

    async def route(self, ctx: RoutingContext) -> RouteDecision:
        """Choose up to `n` skills for the branch's agent among `ctx.candidates`."""
        if not ctx.candidates:
            return RouteDecision.with_skills(reason="the agent may receive no skills")
        index = await self._ensure_index(ctx.registry)
        registry = ctx.registry

        def document(skill_id: str) -> tuple[str, str, str]:
            spec = registry.get_skill(skill_id)
            return spec.name, spec.description, spec.body

        ranked = await self.rank(
            ctx.task,
            index,
            allowed=ctx.candidates,
            document=document,
            complete=ctx.complete,
        )
        rel = ranked.relevance
        candidates = [
            Candidate(
                name=c.id,
                score=round(rel[i], 4) if rel is not None else round(c.fused, 6),
                detail={"stage1_rank": i + 1, **c.as_detail()},
            )
            for i, c in enumerate(ranked.stage1)
        ]
        positions = {c.id: i for i, c in enumerate(ranked.stage1)}
        evidence: dict[str, Any] = {
            "query_sha256": hashlib.sha256(ctx.task.encode()).hexdigest()[:16],
            "index_size": len(index),
            "caps": index.caps.model_dump(),
            "embedder": self.embedder.name,
            "reranker": self.reranker.name if self.reranker else "none",
            "stage1": [{"id": c.id, **c.as_detail()} for c in ranked.stage1],
            "reranked": [
                {"id": s, "relevance": round(rel[positions[s]], 4) if rel is not None else None}
                for s in ranked.ranking
            ],
            "min_relevance": self.min_relevance,
            "timings_ms": {key: round(v, 2) for key, v in ranked.timings_ms.items()},
            **ranked.notes,
        }
        if ranked.chosen:
            reason = f"top {len(ranked.chosen)} of {len(ranked.stage1)} retrieved skills"
        elif ranked.stage1:
            best = max(rel) if rel else 0.0
            reason = f"no skill fits: best relevance {best:.3f} < {self.min_relevance}"
        else:
            reason = "no skill fits: nothing retrieved"
        if ranked.notes:
            reason += " (degraded: " + ", ".join(sorted(ranked.notes)) + ")"
        return RouteDecision.with_skills(
            *ranked.chosen, reason=reason, candidates=candidates, evidence=evidence
        )


def _index_document(index: SkillIndex) -> Callable[[str], tuple[str, str, str]]:
    def document(skill_id: str) -> tuple[str, str, str]:
        i = index.position(skill_id)
        return index.names[i], index.descriptions[i], ""

    return document
