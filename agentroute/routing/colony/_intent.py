"""Intent inference: a mixture w(q) over the task types of the registry.

Three models, one protocol (`IntentModel`):

- `EmbeddingIntent` (offline default): cosine similarity of the query to each task's example
  utterances, then a softmax with a temperature.
- `LLMIntent`: asks a model (through the run's traced `ctx.complete`) for the weights as JSON;
  falls back to another intent model when the answer is unusable, and says so.
- `OnlineClusterIntent`: no declared tasks; the "tasks" are clusters of query embeddings fitted
  online (sequential k-means), for pools whose task types are unknown.

Whatever a model returns goes through `check_mixture`, which drops unknown task names, repairs
a mixture that does not sum to one, and reports every repair (recorded in the decision).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import structlog

from agentroute.registry import TaskSpec
from agentroute.routing._agent_scoring import softmax
from agentroute.routing._protocol import Complete
from agentroute.routing.embeddings import Embedder, Matrix
from agentroute.routing.embeddings._default import default_embedder

__all__ = [
    "DEFAULT_TASK",
    "EmbeddingIntent",
    "IntentModel",
    "LLMIntent",
    "Mixture",
    "OnlineClusterIntent",
    "check_mixture",
    "default_embedder",
]

log = structlog.get_logger(__name__)

DEFAULT_TASK = "default"
"""The one task of a registry that declares none."""


@dataclass(frozen=True)
class Mixture:
    """A task mixture w(q): non-negative weights over task names that sum to one."""

    weights: dict[str, float]
    """Task → weight."""
    source: str = ""
    """Which intent model produced it."""
    repairs: tuple[str, ...] = ()
    """What `check_mixture` had to fix (empty when the raw mixture was valid)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Model-specific evidence (similarities, the LLM's raw answer, ...)."""

    def vector(self, tasks: Sequence[str]) -> np.ndarray:
        """The weights in the order of `tasks` (missing tasks weigh 0)."""
        return np.array([self.weights.get(t, 0.0) for t in tasks], dtype=np.float64)

    def evidence(self) -> dict[str, Any]:
        """JSON-ready form for the decision trace."""
        out: dict[str, Any] = {"weights": {k: round(v, 6) for k, v in self.weights.items()}}
        if self.source:
            out["source"] = self.source
        if self.repairs:
            out["repairs"] = list(self.repairs)
        out.update(self.extra)
        return out


def _shown(value: object) -> str:
    try:
        return repr(value)[:40]
    except ValueError:  # an int with more digits than `sys.get_int_max_str_digits()`
        return f"a {type(value).__name__} too large to show"


def _usable_weights(
    raw: Mapping[str, Any], tasks: Sequence[str]
) -> tuple[dict[str, float], list[str]]:
    """The finite, non-negative weights of known tasks in `raw`, and what was dropped."""
    repairs: list[str] = []
    known = set(tasks)
    weights: dict[str, float] = {}
    for name, value in raw.items():
        if name not in known:
            repairs.append(f"dropped unknown task {name!r}")
            continue
        try:
            w = float(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an int past 1e308
            repairs.append(f"weight of {name!r} is not a usable number ({_shown(value)})")
            continue
        if not math.isfinite(w) or w < 0:
            repairs.append(f"weight of {name!r} is {w}; counted as 0")
            continue
        weights[name] = w
    return weights, repairs


def check_mixture(raw: Mapping[str, Any], tasks: Sequence[str], source: str = "") -> Mixture:
    """Validate and repair a raw mixture over `tasks`.

    Unknown task names are dropped, non-numeric, negative or non-finite weights (and integers
    too large for a float) count as 0, and weights that do not sum to one are rescaled (huge
    ones too: they are divided by the largest before summing, so the sum cannot overflow);
    when nothing usable is left the mixture is uniform. Every repair is listed in
    `Mixture.repairs` (and so recorded in the trace).

    Args:
        raw: Task → weight, as an intent model produced it.
        tasks: The task names the pheromone tables know.
        source: Name of the producing model.
    """
    weights, repairs = _usable_weights(raw, tasks)
    top = max(weights.values(), default=0.0)
    if top <= 0:
        repairs.append("no usable weight; using a uniform mixture")
        weights = dict.fromkeys(tasks, 1.0 / len(tasks))
    else:
        scaled = {k: v / top for k, v in weights.items()}
        share = sum(scaled.values())  # in [1, len(tasks)]: no overflow
        total = top * share  # may be inf; only reported
        if abs(total - 1.0) > 1e-6:
            repairs.append(f"weights summed to {total:.6g}; rescaled to 1")
            weights = {k: v / share for k, v in scaled.items()}
    return Mixture(weights=weights, source=source, repairs=tuple(repairs))


@runtime_checkable
class IntentModel(Protocol):
    """Infers the task mixture of a query."""

    name: str
    """Identifies the model in traces."""

    async def infer(
        self, text: str, tasks: Sequence[TaskSpec], complete: Complete | None = None
    ) -> Mixture:
        """Return w(q) over `tasks` (the caller validates it with `check_mixture`)."""
        ...


class EmbeddingIntent:
    """Offline intent: similarity of the query to each task's example utterances, softmaxed.

    A task's score is the mean of its `k` most similar examples (its description counts as one
    more example), so one odd example does not decide. Tasks without examples or a description
    score 0.

    Args:
        embedder: Any `Embedder`; default the bundled offline MiniLM with a disk cache.
        temperature: Softmax temperature on cosine similarities. 0.05 turns a similarity gap of
            0.1 into a 7:1 weight ratio, which keeps clear queries near one-hot while
            ambiguous ones share weight.
        k: Examples averaged per task.
    """

    name = "embedding"

    def __init__(
        self, embedder: Embedder | None = None, *, temperature: float = 0.05, k: int = 3
    ) -> None:
        if temperature <= 0:
            msg = f"temperature must be > 0, got {temperature}"
            raise ValueError(msg)
        self._embedder = embedder
        self.temperature = temperature
        self.k = k
        self._index: tuple[tuple[str, ...], list[Matrix]] | None = None
        self._lock = threading.Lock()

    def params(self) -> dict[str, Any]:
        """Constructor arguments, JSON-ready (the embedder is not recorded)."""
        return {"temperature": self.temperature, "k": self.k}

    @property
    def embedder(self) -> Embedder:
        """The embedder (created on first use)."""
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    def _examples(self, tasks: Sequence[TaskSpec]) -> list[Matrix]:
        names = tuple(t.name for t in tasks)
        with self._lock:
            if self._index is not None and self._index[0] == names:
                return self._index[1]
            mats: list[Matrix] = []
            for task in tasks:
                texts = [*task.examples, *([task.description] if task.description else [])]
                mats.append(
                    self.embedder.embed(texts) if texts else np.zeros((0, 1), dtype=np.float32)
                )
            self._index = (names, mats)
            return mats

    def scores(self, text: str, tasks: Sequence[TaskSpec]) -> np.ndarray:
        """Per-task similarity scores of `text` (synchronous; used by `infer`)."""
        mats = self._examples(tasks)
        query = self.embedder.embed([text])[0]
        out = np.zeros(len(tasks))
        for i, mat in enumerate(mats):
            if mat.shape[0] == 0 or mat.shape[1] != query.shape[0]:
                continue
            sims = np.sort(mat @ query)[::-1][: self.k]
            out[i] = float(sims.mean())
        return out

    def mixture_from_scores(self, scores: np.ndarray, tasks: Sequence[str]) -> Mixture:
        """Softmax of similarity scores into a mixture."""
        probs = softmax(scores, self.temperature)[0]
        return Mixture(
            weights={t: float(p) for t, p in zip(tasks, probs, strict=True)},
            source=self.name,
            extra={
                "similarity": {t: round(float(s), 4) for t, s in zip(tasks, scores, strict=True)}
            },
        )

    async def infer(
        self, text: str, tasks: Sequence[TaskSpec], complete: Complete | None = None
    ) -> Mixture:
        """Embed off the event loop, score, softmax."""
        del complete
        scores = await asyncio.to_thread(self.scores, text, tasks)
        return self.mixture_from_scores(scores, [t.name for t in tasks])


_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)

_LLM_PROMPT = """Classify the request into the task types below. Answer with ONLY a JSON object \
mapping each task type name to a weight between 0 and 1; the weights must sum to 1.

Task types:
{tasks}

Request:
{text}
"""


class LLMIntent:
    """Intent from a model: the run's traced `ctx.complete` answers JSON weights per task.

    The call is recorded, budgeted and replayable like every model call of the run. An answer
    that is not a JSON object of weights, or whose weights are all unusable (unknown tasks,
    zero, negative, or not finite numbers), falls back to `fallback` (the reason is recorded in
    the mixture's evidence).

    Args:
        model: Registry model name to ask; `None` = the run's default model choice.
        fallback: Intent model used when the answer is unusable; default `EmbeddingIntent()`.
        max_tokens: Output cap of the call.
    """

    name = "llm"

    def __init__(
        self,
        model: str | None = None,
        *,
        fallback: IntentModel | None = None,
        max_tokens: int = 200,
    ) -> None:
        self.model = model
        self.fallback: IntentModel = fallback or EmbeddingIntent()
        self.max_tokens = max_tokens

    def params(self) -> dict[str, Any]:
        """Constructor arguments, JSON-ready (the fallback is not recorded)."""
        return {"model": self.model, "max_tokens": self.max_tokens}

    async def infer(
        self, text: str, tasks: Sequence[TaskSpec], complete: Complete | None = None
    ) -> Mixture:
        """Ask the model; fall back when there is no model access or the answer is unusable."""
        if complete is None:
            mix = await self.fallback.infer(text, tasks)
            return Mixture(
                mix.weights, mix.source, mix.repairs, {**mix.extra, "fallback": "no model access"}
            )
        listing = "\n".join(
            f"- {t.name}: {t.description or ', '.join(t.examples[:3])}" for t in tasks
        )
        prompt = _LLM_PROMPT.format(tasks=listing, text=text)
        kwargs: dict[str, Any] = {"max_tokens": self.max_tokens}
        if self.model is not None:
            kwargs["model"] = self.model
        reason: str
        try:
            answer = await complete(prompt, **kwargs)
            match = _JSON_OBJECT.search(answer)
            data = json.loads(match.group(0)) if match else None
            if isinstance(data, dict) and data:
                usable, _ = _usable_weights(data, [t.name for t in tasks])
                if any(w > 0 for w in usable.values()):
                    return Mixture(
                        weights={str(k): v for k, v in data.items()},
                        source=self.name,
                        extra={"answer": answer[:500]},
                    )
                reason = f"answer has no usable weight for a known task: {answer[:200]!r}"
            else:
                reason = f"answer is not a JSON object of weights: {answer[:200]!r}"
        except Exception as exc:  # an intent failure must not fail the run
            reason = f"{type(exc).__name__}: {exc}"
        log.warning("llm intent unusable; falling back", reason=reason)
        mix = await self.fallback.infer(text, tasks)
        return Mixture(mix.weights, mix.source, mix.repairs, {**mix.extra, "fallback": reason})


class OnlineClusterIntent:
    """Task types inferred from the text alone: online k-means over query embeddings.

    The tasks are `c0 … c{k-1}`. The first `k` queries that are not near-duplicates of an
    existing centroid seed the centroids; afterwards each query moves its nearest centroid
    towards itself by `1/n` (MacQueen's sequential k-means, so a centroid is the running mean
    of its queries). The mixture is a softmax of the cosine similarities to the centroids.

    Args:
        embedder: Any `Embedder`; default the bundled offline MiniLM with a disk cache.
        k: Number of clusters (task types). 12 beat 8 by +0.0028 ± 0.0014 accuracy
            (paired, 30 tuning seeds of `benchmarks/aco.py` part (a) with the warm-up; tied
            without it).
        temperature: Softmax temperature on cosine similarities.
        seed_distance: A query seeds a new cluster only when its best similarity to existing
            centroids is below `1 - seed_distance`.
    """

    name = "online-kmeans"

    def __init__(
        self,
        embedder: Embedder | None = None,
        *,
        k: int = 12,
        temperature: float = 0.05,
        seed_distance: float = 0.3,
    ) -> None:
        self._embedder = embedder
        self.k = k
        self.temperature = temperature
        self.seed_distance = seed_distance
        self.centroids: list[np.ndarray] = []
        self.counts: list[int] = []
        self._lock = threading.Lock()

    def params(self) -> dict[str, Any]:
        """Constructor arguments, JSON-ready (the embedder is not recorded)."""
        return {"k": self.k, "temperature": self.temperature, "seed_distance": self.seed_distance}

    @property
    def task_names(self) -> tuple[str, ...]:
        """`c0 … c{k-1}`."""
        return tuple(f"c{i}" for i in range(self.k))

    @property
    def embedder(self) -> Embedder:
        """The embedder (created on first use)."""
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    def observe(self, vector: np.ndarray) -> Mixture:
        """Update the clusters with one query embedding and return its mixture."""
        names = self.task_names
        with self._lock:
            sims = np.array([float(c @ vector) for c in self.centroids])
            if len(self.centroids) < self.k and (
                sims.size == 0 or sims.max() < 1.0 - self.seed_distance
            ):
                self.centroids.append(vector.astype(np.float64).copy())
                self.counts.append(1)
                sims = np.append(sims, 1.0)
            else:
                j = int(sims.argmax())
                self.counts[j] += 1
                c = self.centroids[j] + (vector - self.centroids[j]) / self.counts[j]
                self.centroids[j] = c / (np.linalg.norm(c) or 1.0)
            full = np.full(self.k, -1.0)
            full[: sims.size] = sims
        probs = softmax(full, self.temperature)[0]
        return Mixture(
            weights={t: float(p) for t, p in zip(names, probs, strict=True)},
            source=self.name,
            extra={"clusters": len(self.centroids)},
        )

    async def infer(
        self, text: str, tasks: Sequence[TaskSpec], complete: Complete | None = None
    ) -> Mixture:
        """Embed the query (off the event loop), update the clusters, return the mixture."""
        del tasks, complete
        vector = (await asyncio.to_thread(self.embedder.embed, [text]))[0]
        return self.observe(np.asarray(vector, dtype=np.float64))
