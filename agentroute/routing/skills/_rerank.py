"""Stage 2: rerankers. One protocol; a learned offline reranker, an LLM one, a cross-encoder.

Every reranker returns one *relevance* per candidate in `[0, 1]`, so the strategy's
`min_relevance` threshold means the same thing whichever reranker is used: below it, a skill is
not given to the agent, and when no candidate clears it the router says "no skill fits".
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import structlog

from agentroute.errors import ConfigurationError, MissingExtraError, did_you_mean
from agentroute.routing._protocol import Complete
from agentroute.routing.embeddings._sentence_transformers import EMBEDDINGS_EXTRA
from agentroute.routing.skills._index import Retrieved, SkillIndex
from agentroute.routing.skills._text import QueryTokens

__all__ = [
    "FEATURES",
    "CrossEncoderReranker",
    "FeatureReranker",
    "LLMReranker",
    "RerankRequest",
    "Reranker",
    "candidate_features",
    "parse_ranking",
]

_log = structlog.get_logger(__name__)

FEATURES = (
    "dense_gap",
    "head_gap",
    "dense_z",
    "head_z",
    "bm25_rel",
    "bm25_z",
    "bm25_log_rank",
    "bm25_query_norm",
    "idf_coverage",
    "idf_coverage_head",
    "idf_coverage_name",
    "name_overlap",
    "query_coverage",
    "terms_x_bm25_rel",
    "terms_x_dense_z",
)
"""Names of the features `FeatureReranker` reads, in order (see `candidate_features`)."""


@dataclass(frozen=True)
class RerankRequest:
    """What a reranker sees.

    Attributes:
        query: The task text (already capped).
        candidates: Stage-1 candidates, best fused first.
        index: The index they came from (names, descriptions, vectors).
        document: `id → (name, description, body)`, for rerankers that read full text.
        complete: Model access (the routing context's `complete`), for LLM rerankers.
        tokens: The lexical tokens retrieval already computed for `query`, for rerankers
            that read them; `None` = tokenise `query` when needed.

    Raises:
        ConfigurationError: `tokens` are of another text than `query`.
    """

    query: str
    candidates: Sequence[Retrieved]
    index: SkillIndex
    document: Callable[[str], tuple[str, str, str]]
    complete: Complete | None = None
    tokens: QueryTokens | None = None

    def __post_init__(self) -> None:
        if self.tokens is not None and self.tokens.text != self.query:
            msg = (
                "RerankRequest tokens are of another text than its query; build them with "
                "QueryTokens(query) from the same string"
            )
            raise ConfigurationError(msg)


@runtime_checkable
class Reranker(Protocol):
    """Scores stage-1 candidates; returns one relevance in `[0, 1]` per candidate, in order."""

    @property
    def name(self) -> str:
        """Identifies the reranker and its model (recorded in the trace)."""
        ...

    async def rerank(self, request: RerankRequest) -> list[float]:
        """Return relevances aligned with `request.candidates`."""
        ...


# -- the learned offline reranker ------------------------------------------------------------


_RANK_SCALE = float(np.log(30.0))
"""Divides log-ranks, so a rank-30 candidate gets -1 whatever `k` is."""


def _zscore(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = (values - values.mean()) / (values.std() + 1e-6)
    return out


def candidate_features(
    query: str | QueryTokens, candidates: Sequence[Retrieved], index: SkillIndex
) -> npt.NDArray[np.float64]:
    """The `(len(candidates), len(FEATURES))` feature matrix of one query's candidate list.

    `query` is the task text or its `QueryTokens` (pass the one given to `SkillIndex.search`
    to reuse retrieval's tokens). The term features read the query cut at the index's
    `TextCaps.query_chars`, as retrieval does; `name_overlap` and `query_coverage` read the
    query as given.

    Every feature is relative to the list or normalised by the query, never an absolute
    score, so that weights fitted on one pool carry over to another (another embedder's cosine
    range, another corpus's BM25 scale, short descriptions or long API docs):

    - `dense_gap`, `head_gap`: best cosine (and head cosine) minus the list's best;
    - `dense_z`, `head_z`, `bm25_z`: z-scores within the list;
    - `bm25_rel`: BM25 over the list's best; `bm25_log_rank`: `-log(rank)/log(30)` of the
      candidate's BM25 rank in the list (-1 without a lexical match);
    - `bm25_query_norm`: BM25 over the most any skill could score for this query
      (`Σ idf · (k1 + 1)`);
    - `idf_coverage`, `idf_coverage_head`, `idf_coverage_name`: the IDF-weighted share of the
      query's terms found in the skill's whole text, in its name + description, in its name;
    - `name_overlap`: share of the name's tokens in the query; `query_coverage`: share of the
      query's tokens in the name + description;
    - `terms_x_bm25_rel`, `terms_x_dense_z`: `log(1 + query terms)` times `bm25_rel` and
      `dense_z`, so how much lexical evidence counts can depend on how much the query says.
    """
    n = len(candidates)
    x = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if n == 0:
        return x
    dense = np.array([c.dense for c in candidates], dtype=np.float64)
    head = np.array([c.dense_head for c in candidates], dtype=np.float64)
    bm25 = np.array([c.bm25 for c in candidates], dtype=np.float64)
    best_bm25 = float(bm25.max())
    bm25_rel = bm25 / best_bm25 if best_bm25 > 0 else np.zeros(n)
    lex_rank = np.empty(n)
    lex_rank[np.argsort(-bm25, kind="stable")] = np.arange(1, n + 1)
    q = QueryTokens.of(query)
    known, idf, present = index.term_stats(q, [c.index for c in candidates])
    total_idf = float(idf.sum())
    q_set = set(q.tokens())
    terms = float(np.log1p(len(idf)))
    dense_z = _zscore(dense)
    x[:, 0] = dense - dense.max()
    x[:, 1] = head - head.max()
    x[:, 2] = dense_z
    x[:, 3] = _zscore(head)
    x[:, 4] = bm25_rel
    x[:, 5] = _zscore(bm25)
    x[:, 6] = np.where(bm25 > 0, -np.log(lex_rank) / _RANK_SCALE, -1.0)
    if total_idf > 0:
        x[:, 7] = bm25 / (total_idf * (index.k1 + 1.0))
        x[:, 8] = idf @ present / total_idf
    x[:, 13] = terms * bm25_rel
    x[:, 14] = terms * dense_z
    for r, c in enumerate(candidates):
        name_tokens, head_tokens = index.head_tokens(c.index)
        if total_idf > 0:
            x[r, 9] = sum(w for t, w in zip(known, idf, strict=True) if t in head_tokens)
            x[r, 10] = sum(w for t, w in zip(known, idf, strict=True) if t in name_tokens)
        x[r, 11] = len(name_tokens & q_set) / len(name_tokens) if name_tokens else 0.0
        x[r, 12] = len(q_set & head_tokens) / len(q_set) if q_set else 0.0
    if total_idf > 0:
        x[:, 9:11] /= total_idf
    return x


def _default_weights_path() -> Path:
    return Path(str(resources.files("agentroute.routing.skills").joinpath("reranker.json")))


class FeatureReranker:
    """A small learned reranker over stage-1 features. Offline, sub-millisecond per query.

    A linear scorer trained with a listwise softmax loss (the SkillRouter objective) over
    candidate lists, plus a logistic calibration mapping scores to relevance. The shipped
    weights (`agentroute/routing/skills/reranker.json`) were trained on public tool-retrieval
    data (ToolBench, MetaTool); `benchmarks/skills_quality.py --retrain` refits them, and
    `fit_feature_reranker` fits them on your own `(query, candidates, gold)` lists.

    Args:
        weights: A JSON file written by `save_weights`, or a mapping with the same
            keys; default the shipped weights.
    """

    def __init__(self, weights: str | Path | dict[str, Any] | None = None) -> None:
        if isinstance(weights, dict):
            data = weights
            self._source = "inline"
        else:
            path = Path(weights) if weights is not None else _default_weights_path()
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                msg = f"cannot read reranker weights {path}: {exc}"
                raise ConfigurationError(msg) from exc
            self._source = path.name
        if not isinstance(data, dict) or list(data.get("features") or []) != list(FEATURES):
            got = data.get("features") if isinstance(data, dict) else type(data).__name__
            msg = (
                f"reranker weights are for features {got}, not "
                f"{list(FEATURES)}; refit them with fit_feature_reranker on lists from "
                "training_lists (this version's features)"
            )
            raise ConfigurationError(msg)
        try:
            self.mean = np.asarray(data["mean"], dtype=np.float64)
            self.scale = np.asarray(data["scale"], dtype=np.float64)
            self.coef = np.asarray(data["coef"], dtype=np.float64)
            self.calibration = (float(data["calibration"][0]), float(data["calibration"][1]))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            msg = f"reranker weights lack or garble mean/scale/coef/calibration ({exc!r})"
            raise ConfigurationError(msg) from exc
        shape = (len(FEATURES),)
        if not self.mean.shape == self.scale.shape == self.coef.shape == shape:
            msg = (
                f"reranker weights need {len(FEATURES)} values each in mean, scale and coef; "
                f"got {self.mean.shape}, {self.scale.shape}, {self.coef.shape}"
            )
            raise ConfigurationError(msg)
        self.data = data

    @property
    def name(self) -> str:
        """`feature:<weights file>@<version>`."""
        return f"feature:{self._source}@{self.data.get('version', '?')}"

    def score(self, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Raw linear scores of a feature matrix."""
        out: npt.NDArray[np.float64] = ((features - self.mean) / self.scale) @ self.coef
        return out

    def relevance(self, scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Calibrated relevance in `[0, 1]` of raw scores."""
        a, b = self.calibration
        z = np.clip(a * scores + b, -30.0, 30.0)
        out: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-z))
        return out

    def rerank_sync(
        self, query: str | QueryTokens, candidates: Sequence[Retrieved], index: SkillIndex
    ) -> list[float]:
        """Synchronous scoring (used by `rerank` and by benchmarks); see `candidate_features`."""
        if not candidates:
            return []
        feats = candidate_features(query, candidates, index)
        return [float(v) for v in self.relevance(self.score(feats))]

    async def rerank(self, request: RerankRequest) -> list[float]:
        """Score the candidates from their stage-1 features (reusing `request.tokens`)."""
        query = request.query if request.tokens is None else request.tokens
        return self.rerank_sync(query, request.candidates, request.index)


# -- the LLM listwise reranker ---------------------------------------------------------------

_PROMPT = """You select the skills an AI agent needs for a task.

Task:
{query}

Candidate skills:
{skills}

Which of these skills would help an agent complete the task? Answer with JSON only:
{{"ranking": [<candidate numbers, most useful first, only those that help>]}}
Answer {{"ranking": []}} when none of them helps."""

_NONE = re.compile(r"\b(none|no skill|no candidate)\b", re.IGNORECASE)
_NONE_LEAD = re.compile(
    r"^\W*(none\b|no (skill|candidate|tool)s?\b|nothing\b|neither\b)", re.IGNORECASE
)
"""Prose that opens by saying nothing fits ("None of the 5 candidates helps.")."""


def parse_ranking(
    text: str, n: int, *, labels: Mapping[str, int] | None = None
) -> list[int] | None:
    """Parse an LLM's ranking into 0-based candidate positions; `None` when unparseable.

    Accepts `{"ranking": [3, 1]}`, a bare list, or prose such as "3 > 1 > 2"; numbers out of
    `1..n` and repeats are dropped, and integer-valued floats (`2.0`) count as numbers.
    `[]`, or prose that opens by saying none fits ("None of the 5 candidates helps."), means
    no candidate fits. A non-empty list without one valid position (`["web-search"]` when no
    candidate is called that, `[{"id": 2}]`) is `None`, never "no candidate fits".

    Args:
        text: The model's answer.
        n: Candidates shown, numbered `1..n`.
        labels: Candidate ids or names mapped to their 0-based positions; a list item equal
            to one of them (exactly) stands for that candidate.
    """
    cleaned = re.sub(r"```(?:json)?", "", text).strip()
    found: list[Any] | None = None
    match = re.search(r"\{.*\}", cleaned, re.DOTALL)
    for blob in ([match.group(0)] if match else []) + [cleaned]:
        try:
            value = json.loads(blob)
        except ValueError:
            continue
        if isinstance(value, dict):
            value = value.get("ranking", value.get("skills"))
        if isinstance(value, list):
            found = value
            break
    if found is None:
        if _NONE_LEAD.search(cleaned):
            return []
        bracket = re.search(r"\[([^\]]*)\]", cleaned)
        region = bracket.group(1) if bracket else cleaned
        numbers = re.findall(r"\d+", region)
        if not numbers:
            return [] if _NONE.search(cleaned) or bracket else None
        found = numbers
    out: list[int] = []
    for item in found:
        pos = _position(item, labels or {})
        if pos is not None and 0 <= pos < n and pos not in out:
            out.append(pos)
    if found and not out:
        return None  # a ranking was given, but of nothing we showed: not "none fits"
    return out


def _position(item: Any, labels: Mapping[str, int]) -> int | None:
    """The 0-based position a ranking item names, or `None`."""
    number: int | None = None
    if isinstance(item, bool):
        pass
    elif isinstance(item, int):
        number = item
    elif isinstance(item, float) and item.is_integer():
        number = int(item)
    elif isinstance(item, str):
        label = labels.get(item, labels.get(item.strip()))
        if label is not None:
            return label
        digits = item.strip().strip("[]#")
        number = int(digits) if digits.isdigit() else None
    return None if number is None else number - 1


class LLMReranker:
    """Listwise reranking by an LLM reading the candidates' bodies, called through the run.

    The call goes through the routing context's `complete`, so it is traced, budgeted and
    replayable like any model call. Malformed output never fails the run: the strategy falls
    back to the stage-1 order and records why.

    Args:
        model: Registry name of the model to ask (e.g. `"cheap"`); `None` = the run's default.
        candidates: How many of the stage-1 candidates to show (the rest keep stage-1 order).
        body_chars: Characters of each candidate's body in the prompt.
        max_tokens: Output cap of the call.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        candidates: int = 10,
        body_chars: int = 1200,
        max_tokens: int = 200,
    ) -> None:
        self.model = model
        self.candidates = candidates
        self.body_chars = body_chars
        self.max_tokens = max_tokens

    @property
    def name(self) -> str:
        """`llm:<model>`."""
        return f"llm:{self.model or 'default'}"

    def prompt(self, request: RerankRequest) -> str:
        """The prompt for the first `candidates` candidates."""
        parts = []
        for i, c in enumerate(request.candidates[: self.candidates], start=1):
            name, description, body = request.document(c.id)
            body = body[: self.body_chars] + (" ..." if len(body) > self.body_chars else "")
            parts.append(f"[{i}] {name}\n{description}\n{body}".strip())
        return _PROMPT.format(query=request.query, skills="\n\n".join(parts))

    async def rerank(self, request: RerankRequest) -> list[float]:
        """Ask the model for a ranking and turn it into relevances.

        Raises:
            ValueError: The answer held no ranking (the strategy falls back to stage 1).
            RuntimeError: There is no model access (`request.complete` is `None`).
        """
        if request.complete is None:
            msg = "LLMReranker needs model access (ctx.complete); use it inside a Router"
            raise RuntimeError(msg)
        shown = min(self.candidates, len(request.candidates))
        if shown == 0:
            return []
        text = await request.complete(
            self.prompt(request), model=self.model, max_tokens=self.max_tokens, temperature=0.0
        )
        labels: dict[str, int] = {}
        for i, c in reversed(list(enumerate(request.candidates[:shown]))):
            labels[request.document(c.id)[0]] = i
        for i, c in reversed(list(enumerate(request.candidates[:shown]))):
            labels[c.id] = i  # ids are unique and win over a name that equals another's id
        ranking = parse_ranking(text, shown, labels=labels)
        if ranking is None:
            msg = f"the reranker's answer held no ranking: {text[:200]!r}"
            raise ValueError(msg)
        scores = [0.0] * len(request.candidates)
        for pos, i in enumerate(ranking):
            scores[i] = 1.0 - 0.5 * pos / max(1, len(ranking))
        return scores


# -- the cross-encoder reranker --------------------------------------------------------------


_ACTIVATIONS = ("auto", "sigmoid", "none")
_PROBABILITY_ACTIVATIONS = frozenset({"sigmoid", "softmax"})
"""Names of model activations whose outputs are already in `[0, 1]`."""
_UNSET = object()


def _model_activation(model: Any) -> Literal["sigmoid", "none"] | None:
    """What `model`'s configured activation leaves to do; `None` when it does not say.

    sentence-transformers >= 4 keeps the activation `predict` applies in `activation_fn`
    (`Sigmoid` for single-label models, `Identity` otherwise, unless the model's config names
    another); earlier versions kept it in `default_activation_function`, now a deprecated alias
    that is read only when `activation_fn` is absent.
    """
    fn = getattr(model, "activation_fn", _UNSET)
    if fn is _UNSET:
        fn = getattr(model, "default_activation_function", _UNSET)
    if fn is _UNSET:
        return None
    if fn is None:
        return "sigmoid"  # predict returns the raw logits
    names = {type(fn).__name__.lower(), str(getattr(fn, "__name__", "")).lower()}
    if names & _PROBABILITY_ACTIVATIONS:
        return "none"
    if "identity" in names:
        return "sigmoid"
    return None


class CrossEncoderReranker:
    """A sentence-transformers `CrossEncoder` you provide (a local path or hub id).

    Each `(query, "name | description | body")` pair is scored, and the outputs are turned into
    relevances in `[0, 1]` the same way for every query, so `min_relevance` keeps one meaning
    for the model's lifetime.

    Args:
        model: Path or id of a cross-encoder (e.g. an MS MARCO MiniLM cross-encoder).
        body_chars: Characters of the body in each pair.
        max_length: Token window of the model.
        batch_size: Pairs per forward pass.
        activation: How outputs become relevances, decided once per model:

            - `"sigmoid"`: the outputs are logits; a sigmoid maps them to `[0, 1]`.
            - `"none"`: the outputs already are probabilities and are used as they are; an
              output outside `[0, 1]` fails the rerank (the strategy falls back to stage 1).
            - `"auto"` (default): follow the model's own activation
              (`CrossEncoder.activation_fn`): a sigmoid or softmax means `"none"`, an identity
              (raw logits) means `"sigmoid"`. When the model names another activation, the
              first scored batch decides (`"sigmoid"` when any output lies outside `[0, 1]`)
              and the decision holds for the model's lifetime; set `activation` explicitly
              when that guess could go wrong.

    Attributes:
        applied_activation: `"sigmoid"` or `"none"` once decided (`None` before, in `"auto"`
            mode until the model is loaded or a first batch is scored).
        activation_source: Where the decision came from: `"configured"`, `"model"` (its
            activation), `"first batch"`, or `None` before it is made.

    Raises:
        ConfigurationError: `activation` is not `"auto"`, `"sigmoid"` or `"none"`.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        body_chars: int = 2000,
        max_length: int = 512,
        batch_size: int = 16,
        activation: Literal["auto", "sigmoid", "none"] = "auto",
    ) -> None:
        if activation not in _ACTIVATIONS:
            msg = (
                f"CrossEncoderReranker activation {activation!r} is unknown"
                f"{did_you_mean(str(activation), _ACTIVATIONS)}; use 'sigmoid' for a model "
                "that outputs logits, 'none' for one that outputs probabilities in [0, 1], or "
                "'auto' to follow the model's own activation"
            )
            raise ConfigurationError(msg)
        self.model = str(model)
        self.body_chars = body_chars
        self.max_length = max_length
        self.batch_size = batch_size
        self.activation = activation
        self.applied_activation: Literal["sigmoid", "none"] | None = (
            None if activation == "auto" else activation
        )
        self.activation_source: str | None = None if activation == "auto" else "configured"
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """`cross-encoder:<model dir name>`."""
        return f"cross-encoder:{Path(self.model).name}"

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from sentence_transformers import CrossEncoder
                except ImportError as exc:
                    msg = f"CrossEncoderReranker needs sentence-transformers: {EMBEDDINGS_EXTRA}"
                    raise MissingExtraError(msg) from exc
                model = CrossEncoder(self.model, max_length=self.max_length)
                if self.applied_activation is None:
                    decided = _model_activation(model)
                    if decided is not None:
                        self._decide(decided, "model")
                self._model = model
            return self._model

    def _decide(self, applied: Literal["sigmoid", "none"], source: str) -> None:
        """Record the activation decision (the caller holds `_lock`)."""
        self.applied_activation, self.activation_source = applied, source
        _log.debug(
            "cross-encoder activation decided", model=self.model, applied=applied, source=source
        )

    def _activation_for(self, values: npt.NDArray[np.float64]) -> Literal["sigmoid", "none"]:
        """The activation to apply, deciding from this first batch when nothing else did."""
        with self._lock:
            applied = self.applied_activation
            if applied is not None:
                return applied
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                return "sigmoid"  # nothing to decide from: a later batch decides
            applied = "sigmoid" if finite.min() < 0.0 or finite.max() > 1.0 else "none"
            self._decide(applied, "first batch")
            if applied == "none":
                _log.warning(
                    "cross-encoder outputs of the first batch all lie in [0, 1], so they are "
                    "used as probabilities from now on; pass activation='sigmoid' if the model "
                    "outputs logits",
                    model=self.model,
                )
            return applied

    def score_pairs(self, query: str, documents: Sequence[str]) -> list[float]:
        """Relevance of each document to `query` (synchronous).

        Raises:
            ValueError: An output lies outside `[0, 1]` although no activation is applied
                (`activation="none"`, or `"auto"` decided so).
        """
        if not documents:
            return []
        raw = self._load().predict(
            [(query, d) for d in documents], batch_size=self.batch_size, show_progress_bar=False
        )
        values = np.asarray(raw, dtype=np.float64).reshape(len(documents), -1)[:, -1]
        if self._activation_for(values) == "sigmoid":
            values = 1.0 / (1.0 + np.exp(-np.clip(values, -30, 30)))
        elif values.min() < 0.0 or values.max() > 1.0:
            worst = float(values[np.argmax(np.abs(values - 0.5))])
            msg = (
                f"cross-encoder {self.name} output {worst:.4g}, outside [0, 1], with no "
                f"activation applied (decided by: {self.activation_source}); construct "
                "CrossEncoderReranker with activation='sigmoid' if the model outputs logits"
            )
            raise ValueError(msg)
        return [float(v) for v in values]

    async def rerank(self, request: RerankRequest) -> list[float]:
        """Score every candidate with the cross-encoder (in a worker thread)."""
        docs = []
        for c in request.candidates:
            name, description, body = request.document(c.id)
            docs.append(f"{name} | {description} | {body[: self.body_chars]}")
        return await asyncio.to_thread(self.score_pairs, request.query, docs)
