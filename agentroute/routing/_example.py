"""`ExampleRouter`: routes a request to the agent whose example requests it resembles.

Example requests per agent come from three places, merged: the registry
(`registry.agent(..., examples=[...])`), the constructor or a file (`examples=`,
`examples_file=`), and feedback (`learn()` from finished runs, `grow_from_store()` from a trace
store). They are embedded once (cached on disk) and fitted into one of three heads:

- `linear` (default): multinomial logistic regression, class-balanced, on the normalised
  embedding plus TF-IDF word/bigram features, with `C` chosen on held-out examples;
- `knn`: the k nearest examples vote, weighted by similarity;
- `ensemble`: the average of the two probability vectors.

Probabilities are temperature-scaled on held-out examples (calibrated). The router abstains when
its *confidence* is below `threshold`; the confidence is the top probability at a softened
temperature times the similarity of the nearest example, which separates out-of-scope requests
better than the probability alone. With `threshold="auto"` the threshold is chosen by
`choose_threshold` on out-of-fold predictions of the examples (3-fold cross-validation up to
3,000 examples, one stratified 80/20 split above): on out-of-scope examples when given
(`oos_examples=`), else as the 5% quantile of the confidence of correctly routed held-out
examples. A threshold chosen on real validation traffic is better: `calibrate()` does that.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import structlog

from agentroute._jsonl import json_lines
from agentroute.errors import ConfigurationError, MissingExtraError
from agentroute.registry import Registry
from agentroute.routing._agent_scoring import (
    ThresholdChoice,
    choose_threshold,
    default_embedder,
    fit_temperature,
    softmax,
)
from agentroute.routing._protocol import Candidate, Outcome, RouteDecision, RoutingContext
from agentroute.routing.embeddings import Embedder, normalize

__all__ = ["ExampleRouter", "load_examples"]

log = structlog.get_logger(__name__)

Mode = Literal["knn", "linear", "ensemble"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_HOLDOUT_SHARE = 0.2
_SMALL = 3000  # up to this many examples, 3-fold cross-validation; above, one 80/20 split
_KNN_FLOOR = 1e-3  # kNN votes are smoothed by this before taking logs
_FAST_TFIDF_MAX = 8  # up to this many texts, TF-IDF is computed without scikit-learn


def load_examples(path: str | Path) -> dict[str, list[str]]:
    """Read example requests per agent from a file.

    Accepted forms: a `.json` file holding one object `{agent: [text, ...]}`; or JSON lines
    (any other suffix), each either
    `{"name": agent, "examples": [text, ...]}` (the `eval agents` AGENTS form) or
    `{"agent": agent, "text": text}`.

    Raises:
        ConfigurationError: The file is missing or not in one of these forms (names the line).
    """
    p = Path(path)
    out: dict[str, list[str]] = {}
    if p.suffix == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8-sig"))
        except OSError as exc:
            msg = f"{p}: cannot read: {exc.strerror or exc}"
            raise ConfigurationError(msg) from exc
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            msg = f"{p}: not a valid UTF-8 JSON file ({exc})"
            raise ConfigurationError(msg) from exc
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            msg = f"{p}: expected a JSON object {{agent: [examples]}}"
            raise ConfigurationError(msg)
        for agent, texts in data.items():
            out.setdefault(str(agent), []).extend(str(t) for t in texts)
        return out
    for lineno, obj in json_lines(p):
        if "agent" in obj and "text" in obj:
            out.setdefault(str(obj["agent"]), []).append(str(obj["text"]))
        elif "name" in obj:
            examples = obj.get("examples") or []
            if not isinstance(examples, list):
                msg = f"{p}:{lineno}: 'examples' must be a list of texts"
                raise ConfigurationError(msg)
            out.setdefault(str(obj["name"]), []).extend(str(t) for t in examples)
        else:
            msg = (
                f"{p}:{lineno}: expected {{'name': agent, 'examples': [...]}} or "
                "{'agent': agent, 'text': ...}"
            )
            raise ConfigurationError(msg)
    return out


@dataclass(slots=True)
class _Head:
    """One fitted linear head: weights over [embedding, lexical] features."""

    coef: npt.NDArray[np.float64]
    intercept: npt.NDArray[np.float64]
    vectorizer: Any
    """A fitted TF-IDF vectorizer, or `None` (embeddings only)."""

    analyzer: Any = None
    vocabulary: dict[str, int] = field(default_factory=dict)
    idf: npt.NDArray[np.float64] | None = None

    def logits(self, x: npt.NDArray[np.float32], texts: Sequence[str]) -> FloatArray:
        dim = x.shape[1]
        out: FloatArray = (x @ self.coef[:dim]).astype(np.float64) + self.intercept
        if self.vectorizer is None:
            return out
        if len(texts) > _FAST_TFIDF_MAX:
            lexical: FloatArray = np.asarray(
                self.vectorizer.transform(list(texts)) @ self.coef[dim:], dtype=np.float64
            )
            return out + lexical
        # One request at a time (the routing path): scikit-learn's transform spends ~5 ms
        # validating its input; the same sublinear TF-IDF, L2-normalised, in microseconds.
        if self.analyzer is None:
            # Routing threads share this head: the analyzer is set last, so a thread that sees
            # it also sees the vocabulary and idf.
            self.vocabulary = dict(self.vectorizer.vocabulary_)
            self.idf = np.asarray(self.vectorizer.idf_, dtype=np.float64)
            self.analyzer = self.vectorizer.build_analyzer()
        assert self.idf is not None
        for row, text in enumerate(texts):
            counts: dict[int, int] = {}
            for gram in self.analyzer(text):
                j = self.vocabulary.get(gram)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            if not counts:
                continue
            cols = np.fromiter(counts, dtype=np.int64, count=len(counts))
            tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
            w = tf * self.idf[cols]
            w /= np.linalg.norm(w)
            out[row] += w @ self.coef[dim + cols]
        return out


@dataclass(slots=True)
class _Fitted:
    key: tuple[Any, ...]
    agents: tuple[str, ...]
    x: npt.NDArray[np.float32]
    y: IntArray
    texts: tuple[str, ...]
    head: _Head | None
    c_value: float | None
    t_linear: float
    t_knn: float
    threshold: float | None
    threshold_info: dict[str, Any]
    seeded: tuple[str, ...]
    """Agents without examples, represented by their description."""
    fit_info: dict[str, Any] = field(default_factory=dict)


class ExampleRouter:
    """Agent slot: routes by similarity to example requests (kNN, linear head, or both).

    Example:
        ```python
        router = ar.Router(registry, agent=ar.ExampleRouter(mode="ensemble", threshold="auto"))
        ```

    Agents with no examples at all are represented by their description (one pseudo-example),
    so an agent registered later is routable at once; the router refits when the set of
    candidates or examples changes.

    Args:
        examples: Extra example requests per agent (merged with the registry's).
        examples_file: A file of examples per agent (see `load_examples`).
        mode: `linear` (default), `knn` or `ensemble`.
        k: Neighbours for the kNN head.
        threshold: Abstain below this top probability; `"auto"` chooses it on held-out
            examples (see the module docs); `None` never abstains.
        max_agents: Route to up to this many agents (multi-intent requests).
        multi_ratio: A second agent is added when its probability is at least this share of
            the top one (and above the threshold).
        c_values: Inverse regularisation strengths tried for the linear head (the one with
            the best held-out log-likelihood is kept).
        lexical: Give the linear head TF-IDF word and bigram features next to the embedding
            (helps with domain words the embedding model blurs).
        ood_softening: The confidence uses the top probability at this many times the
            calibrated temperature (a softer softmax ranks out-of-scope requests better).
        oos_examples: Example requests no agent should take (for choosing the threshold).
        max_in_scope_loss: With `threshold="auto"` and no out-of-scope examples: share of
            correctly routed held-out examples the threshold may reject.
        below_threshold: What a low-confidence decision is: `abstain` (a composite asks its
            next strategy; alone, the runtime treats it as out of scope) or `out_of_scope`.
        learn_min_score: `learn()` adds a finished run's request as an example of the agent
            that answered when its feedback score is at least this.
        embedder: The embedder; default the bundled MiniLM behind a persistent cache.
        seed: Seed of the held-out split.
    """

    name: ClassVar[str] = "example"
    version: ClassVar[str] = "1"

    def __init__(
        self,
        examples: Mapping[str, Sequence[str]] | None = None,
        *,
        examples_file: str | Path | None = None,
        mode: Mode = "linear",
        k: int = 10,
        threshold: float | Literal["auto"] | None = "auto",
        max_agents: int = 1,
        multi_ratio: float = 0.5,
        c_values: Sequence[float] = (16.0, 64.0),
        lexical: bool = True,
        ood_softening: float = 2.0,
        oos_examples: Sequence[str] = (),
        max_in_scope_loss: float = 0.05,
        below_threshold: Literal["abstain", "out_of_scope"] = "abstain",
        learn_min_score: float = 0.8,
        embedder: Embedder | None = None,
        seed: int = 0,
    ) -> None:
        if mode not in ("knn", "linear", "ensemble"):
            msg = f"ExampleRouter mode must be 'knn', 'linear' or 'ensemble', got {mode!r}"
            raise ConfigurationError(msg)
        if k < 1 or max_agents < 1:
            msg = "ExampleRouter needs k >= 1 and max_agents >= 1"
            raise ConfigurationError(msg)
        if not (threshold is None or threshold == "auto" or isinstance(threshold, int | float)):
            msg = f"ExampleRouter threshold must be a number, 'auto' or None, got {threshold!r}"
            raise ConfigurationError(msg)
        if not c_values:
            msg = "ExampleRouter c_values needs at least one value"
            raise ConfigurationError(msg)
        self.mode: Mode = mode
        self.k = k
        self.threshold = threshold
        self.max_agents = max_agents
        self.multi_ratio = multi_ratio
        self.c_values = tuple(float(c) for c in c_values)
        self.lexical = lexical
        self.ood_softening = ood_softening
        self.oos_examples = tuple(oos_examples)
        self.max_in_scope_loss = max_in_scope_loss
        self.below_threshold = below_threshold
        self.learn_min_score = learn_min_score
        self.seed = seed
        self.examples_file = str(examples_file) if examples_file is not None else None
        self._examples: dict[str, list[str]] = {a: list(t) for a, t in (examples or {}).items()}
        if examples_file is not None:
            for agent, texts in load_examples(examples_file).items():
                self._examples.setdefault(agent, []).extend(texts)
        self._learned: dict[str, list[str]] = {}
        self._version = 0
        self._embedder = embedder
        self._fitted: _Fitted | None = None
        self._calibrated: ThresholdChoice | None = None
        self._lock = threading.RLock()

    # -- configuration ---------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        """The embedder in use (the shared default unless one was given)."""
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    def params(self) -> dict[str, Any]:
        """Parameters for the trace."""
        fitted = self._fitted
        return {
            "mode": self.mode,
            "k": self.k,
            "threshold": self.threshold,
            "max_agents": self.max_agents,
            "c_values": list(self.c_values),
            "lexical": self.lexical,
            "examples_file": self.examples_file,
            "embedder": self.embedder.name if self._embedder is not None else "default",
            "fitted_threshold": fitted.threshold if fitted else None,
            "fitted_c": fitted.c_value if fitted else None,
        }

    def validate(self, registry: Registry, agents: Sequence[str]) -> None:
        """Compile-time hook: fit now, so the first request does not pay for it.

        Raises:
            ConfigurationError: An examples source names an agent that is not registered.
        """
        unknown = sorted(set(self._examples) - set(registry.agents))
        if unknown:
            msg = (
                f"ExampleRouter has examples for unknown agent(s) {unknown}; "
                f"registered agents: {sorted(registry.agents)}"
            )
            raise ConfigurationError(msg)
        self.fit(registry, agents)

    # -- examples ----------------------------------------------------------------------------------

    def add_examples(self, agent: str, texts: Iterable[str]) -> int:
        """Add example requests for `agent` (the next decision refits). Returns how many."""
        new = [t for t in (s.strip() for s in texts) if t]
        with self._lock:
            self._learned.setdefault(agent, []).extend(new)
            if new:
                self._version += 1
        return len(new)

    def examples_for(self, registry: Registry, agents: Sequence[str]) -> dict[str, list[str]]:
        """The merged, de-duplicated example requests of each agent (may be empty)."""
        out: dict[str, list[str]] = {}
        for agent in agents:
            spec = registry.agents.get(agent)
            texts = [
                *(spec.examples if spec is not None else ()),
                *self._examples.get(agent, ()),
                *self._learned.get(agent, ()),
            ]
            out[agent] = list(dict.fromkeys(t for t in texts if t.strip()))
        return out

    async def learn(self, outcome: Outcome) -> None:
        """Grow the examples from a finished run with good feedback.

        The request becomes an example of the single agent that answered its first step when
        the feedback score is at least `learn_min_score`. Runs without a score, or routed to
        several agents at once, teach nothing (the credit is ambiguous).
        """
        if outcome.score is None or outcome.score < self.learn_min_score:
            return
        if not outcome.steps or len(outcome.steps[0]) != 1:
            return
        self.add_examples(outcome.steps[0][0], [outcome.task])
        log.debug("example_router.learned", agent=outcome.steps[0][0], run_id=outcome.run_id)

    def grow_from_store(self, store: Any, *, min_score: float | None = None) -> int:
        """Add examples from the feedback in a trace store.

        A feedback record whose `label` names an agent is a correction: the run's request
        becomes that agent's example. Otherwise, a score of at least `min_score` (default
        `learn_min_score`) makes the request an example of the single agent chosen at step 0.

        Args:
            store: A `TraceStore`.
            min_score: Score needed without a label.

        Returns:
            How many examples were added.
        """
        threshold = self.learn_min_score if min_score is None else min_score
        added = 0
        for trace in store.iter_runs():
            feedback = trace.feedback
            if not feedback:
                continue
            last = feedback[-1]
            task = trace.run.task
            if last.label:
                added += self.add_examples(last.label, [task])
                continue
            if last.score is None or last.score < threshold:
                continue
            first = next(
                (d for d in trace.decisions if d.slot == "agent" and d.outcome == "route"), None
            )
            if first is not None and len(first.chosen) == 1:
                added += self.add_examples(first.chosen[0], [task])
        return added

    # -- fitting -----------------------------------------------------------------------------------

    def _key(self, registry: Registry, agents: Sequence[str]) -> tuple[Any, ...]:
        specs = tuple(registry.agents.get(a) for a in agents)
        return (tuple(agents), specs, self._version)

    def fit(self, registry: Registry, agents: Sequence[str] | None = None) -> None:
        """Embed the examples and fit the heads (done lazily by `route` when needed).

        Args:
            registry: Where the agents (their examples and descriptions) are.
            agents: The agents to fit; default every registered agent.

        Raises:
            ConfigurationError: There is no agent to fit.
        """
        names = tuple(agents) if agents is not None else tuple(registry.agents)
        if not names:
            msg = "ExampleRouter has no agents to learn; register agents first"
            raise ConfigurationError(msg)
        key = self._key(registry, names)
        with self._lock:
            if self._fitted is not None and _same_key(self._fitted.key, key):
                return
            examples = self.examples_for(registry, names)
            texts: list[str] = []
            labels: list[int] = []
            seeded: list[str] = []
            for i, agent in enumerate(names):
                mine = examples[agent]
                if not mine:
                    spec = registry.agents.get(agent)
                    desc = spec.description if spec is not None else agent.replace("_", " ")
                    mine = [desc]
                    seeded.append(agent)
                texts.extend(mine)
                labels.extend([i] * len(mine))
            x = normalize(self.embedder.embed(texts))
            self._fitted = self._fit_arrays(key, names, x, np.asarray(labels), tuple(texts))
            self._fitted.seeded = tuple(seeded)
            log.debug(
                "example_router.fitted",
                agents=len(names),
                examples=len(texts),
                c=self._fitted.c_value,
                threshold=self._fitted.threshold,
            )

    def _fit_arrays(
        self,
        key: tuple[Any, ...],
        agents: tuple[str, ...],
        x: npt.NDArray[np.float32],
        y: IntArray,
        texts: tuple[str, ...],
    ) -> _Fitted:
        n_cls = len(agents)
        rng = np.random.default_rng(self.seed)
        folds = _folds(y, n_cls, rng, cross=len(y) <= _SMALL)
        use_linear = self.mode in ("linear", "ensemble") and n_cls > 1
        # Out-of-fold scores of every head: they choose C, the temperatures and the threshold.
        oof_linear: dict[float, FloatArray] = {}
        oof_knn = np.zeros((len(y), n_cls))
        oof_top = np.zeros(len(y))
        covered = np.zeros(len(y), dtype=bool)
        for train_idx, test_idx in folds:
            if len(test_idx) == 0 or len(train_idx) == 0:
                continue
            covered[test_idx] = True
            votes, top = _knn_votes(x[test_idx], x[train_idx], y[train_idx], n_cls, self.k)
            oof_knn[test_idx], oof_top[test_idx] = votes, top
            if use_linear and len(np.unique(y[train_idx])) > 1:
                part = [texts[i] for i in train_idx]
                held_texts = [texts[i] for i in test_idx]
                for c in self.c_values:
                    fold_head = _fit_linear(
                        x[train_idx], part, y[train_idx], n_cls, c, lexical=self.lexical
                    )
                    logits = fold_head.logits(x[test_idx], held_texts)
                    oof_linear.setdefault(c, np.zeros((len(y), n_cls)))[test_idx] = logits
        held = np.flatnonzero(covered)
        knn_log = np.log(oof_knn + _KNN_FLOOR)
        t_knn = fit_temperature(knn_log[held], y[held]) if len(held) else 1.0
        best_c: float | None = None
        t_lin = 1.0
        if oof_linear and len(held):

            def nll(c: float) -> float:
                t = fit_temperature(oof_linear[c][held], y[held])
                p = softmax(oof_linear[c][held], t)
                return float(-np.mean(np.log(p[np.arange(len(held)), y[held]] + 1e-12)))

            best_c = min(oof_linear, key=nll)
            t_lin = fit_temperature(oof_linear[best_c][held], y[held])
        elif use_linear:
            best_c = self.c_values[-1]
        head: _Head | None = None
        if use_linear and best_c is not None:
            head = _fit_linear(x, list(texts), y, n_cls, best_c, lexical=self.lexical)
        fitted = _Fitted(
            key=key,
            agents=agents,
            x=x,
            y=y,
            texts=texts,
            head=head,
            c_value=best_c,
            t_linear=t_lin,
            t_knn=t_knn,
            threshold=None,
            threshold_info={},
            seeded=(),
            fit_info={"examples": len(y), "folds": len(folds), "held_out": len(held)},
        )
        if self.threshold == "auto" and len(held):
            lin = oof_linear[best_c][held] if best_c in oof_linear else None
            probs, conf = self._score(fitted, knn_log[held], lin, oof_top[held])
            correct = probs.argmax(axis=1) == y[held]
            oos_conf = None
            if self.oos_examples:
                oos_conf = self._predict(fitted, list(self.oos_examples))[1]
            choice = choose_threshold(
                conf, correct, oos_conf, max_in_scope_loss=self.max_in_scope_loss
            )
            fitted.threshold = choice.threshold
            fitted.threshold_info = {"method": choice.method, "held_out": len(held)}
        elif isinstance(self.threshold, int | float):
            fitted.threshold = float(self.threshold)
            fitted.threshold_info = {"method": "given"}
        return fitted

    # -- scoring -----------------------------------------------------------------------------------

    def _score(
        self,
        fitted: _Fitted,
        knn_log: FloatArray | None,
        linear_logits: FloatArray | None,
        top_sim: FloatArray,
    ) -> tuple[FloatArray, FloatArray]:
        """Calibrated probabilities, and the confidence the threshold applies to.

        The confidence is the top probability at a softened temperature times the cosine
        similarity of the nearest example: a request unlike every example is doubted even
        when one agent wins the softmax (out-of-scope requests often do).
        """
        probs: list[FloatArray] = []
        soft: list[FloatArray] = []
        if knn_log is not None and (self.mode != "linear" or linear_logits is None):
            probs.append(softmax(knn_log, fitted.t_knn))
            soft.append(softmax(knn_log, fitted.t_knn * self.ood_softening))
        if linear_logits is not None and self.mode != "knn":
            probs.append(softmax(linear_logits, fitted.t_linear))
            soft.append(softmax(linear_logits, fitted.t_linear * self.ood_softening))
        p: FloatArray = np.mean(probs, axis=0)
        conf: FloatArray = np.mean(soft, axis=0).max(axis=1) * np.clip(top_sim, 0.0, 1.0)
        return p, conf

    def _predict(self, fitted: _Fitted, texts: Sequence[str]) -> tuple[FloatArray, FloatArray]:
        xq = normalize(self.embedder.embed(list(texts)))
        votes, top = _knn_votes(xq, fitted.x, fitted.y, len(fitted.agents), self.k)
        lin = fitted.head.logits(xq, texts) if fitted.head is not None else None
        return self._score(fitted, np.log(votes + _KNN_FLOOR), lin, top)

    def predict_proba(
        self, registry: Registry, texts: Sequence[str], agents: Sequence[str] | None = None
    ) -> tuple[tuple[str, ...], FloatArray, FloatArray]:
        """Probabilities of each agent for each text, and the confidence (batch scoring).

        Returns:
            The agents (columns), an `(len(texts), len(agents))` probability array, and the
            confidence of each text (what the threshold is compared with).
        """
        self.fit(registry, agents)
        fitted = self._fitted
        assert fitted is not None
        probs, conf = self._predict(fitted, texts)
        return fitted.agents, probs, conf

    @property
    def fitted_threshold(self) -> float | None:
        """The threshold in force (after `fit` or `calibrate`); `None` = never abstain."""
        if self._calibrated is not None:
            return self._calibrated.threshold
        return self._fitted.threshold if self._fitted is not None else None

    def calibrate(
        self,
        registry: Registry,
        texts: Sequence[str],
        golds: Sequence[Sequence[str]],
        *,
        target_oos_recall: float = 0.8,
    ) -> ThresholdChoice:
        """Choose the abstain threshold on labelled validation requests.

        Args:
            registry: The registry routed over.
            texts: Validation requests.
            golds: The right agents of each (empty = out of scope).
            target_oos_recall: Out-of-scope recall to reach (see `choose_threshold`).

        Returns:
            The choice, which the router uses from now on.
        """
        agents, probs, conf = self.predict_proba(registry, texts)
        top = [agents[i] for i in probs.argmax(axis=1)]
        in_idx = [i for i, g in enumerate(golds) if g]
        oos_idx = [i for i, g in enumerate(golds) if not g]
        choice = choose_threshold(
            conf[in_idx],
            [top[i] in golds[i] for i in in_idx],
            conf[oos_idx] if oos_idx else None,
            target_oos_recall=target_oos_recall,
            max_in_scope_loss=self.max_in_scope_loss,
        )
        self._calibrated = choice
        return choice

    async def route(self, ctx: RoutingContext) -> RouteDecision:
        """Route `ctx.task` to the most probable agent(s), or abstain below the threshold."""
        if not ctx.candidates:
            return RouteDecision.abstain("no candidate agents")
        # Fitting (when the agents or examples changed) and embedding the request are CPU work:
        # they run in a worker thread so the event loop keeps serving other runs.
        return await asyncio.to_thread(
            self._route_blocking, ctx.registry, tuple(ctx.candidates), ctx.task
        )

    def _route_blocking(
        self, registry: Registry, candidates: tuple[str, ...], task: str
    ) -> RouteDecision:
        with self._lock:  # a concurrent refit must not swap the model mid-decision
            self.fit(registry, candidates)
            fitted = self._fitted
        assert fitted is not None
        probs, conf = self._predict(fitted, [task])
        return self._decide(fitted, probs[0], float(conf[0]), candidates)

    def _decide(
        self, fitted: _Fitted, probs: FloatArray, conf: float, candidates: Sequence[str]
    ) -> RouteDecision:
        order = np.argsort(-probs)
        top_p = float(probs[int(order[0])])
        threshold = self.fitted_threshold
        ranked = [(fitted.agents[int(i)], float(probs[int(i)])) for i in order]
        cands = [Candidate(name=a, score=round(p, 6)) for a, p in ranked]
        evidence: dict[str, Any] = {
            "mode": self.mode,
            "confidence": round(conf, 6),
            "probability": round(top_p, 6),
            "threshold": threshold,
            "threshold_method": (
                self._calibrated.method
                if self._calibrated is not None
                else fitted.threshold_info.get("method")
            ),
            "top": [[a, round(p, 4)] for a, p in ranked[:5]],
            "examples": len(fitted.y),
            "described_only": list(fitted.seeded),
        }
        if threshold is not None and conf < threshold:
            reason = (
                f"no agent is confident enough: best {ranked[0][0]!r} "
                f"(confidence {conf:.2f} < threshold {threshold:.2f})"
            )
            if self.below_threshold == "out_of_scope":
                return RouteDecision.out_of_scope(reason, cands, **evidence)
            return RouteDecision.abstain(reason, **evidence).model_copy(
                update={"candidates": tuple(cands)}
            )
        chosen = [ranked[0][0]]
        for agent, p in ranked[1 : self.max_agents]:
            if p >= self.multi_ratio * top_p:
                chosen.append(agent)
        allowed = set(candidates)
        chosen = [a for a in chosen if a in allowed]
        if not chosen:  # pragma: no cover - the fit always covers the candidates
            return RouteDecision.abstain("the fitted agents are no longer candidates", **evidence)
        reason = ", ".join(f"{a} ({p:.2f})" for a, p in ranked if a in chosen)
        return RouteDecision.to(
            *chosen, reason=f"closest examples: {reason}", candidates=cands, evidence=evidence
        )


def _same_key(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return a[0] == b[0] and a[2] == b[2] and all(x is y for x, y in zip(a[1], b[1], strict=True))


def _folds(
    y: IntArray, n_cls: int, rng: np.random.Generator, *, cross: bool
) -> list[tuple[IntArray, IntArray]]:
    """Stratified folds: 3-fold on small data, one 80/20 split on large data.

    Classes with a single example stay in every training part (nothing to hold out).
    """
    n_folds = 3 if cross else 1
    assign = np.full(len(y), -1)
    for c in range(n_cls):
        idx = np.flatnonzero(y == c)
        if len(idx) < 2:
            continue
        rng.shuffle(idx)
        if cross:
            assign[idx] = np.arange(len(idx)) % n_folds
        else:
            n_hold = max(1, math.ceil(len(idx) * _HOLDOUT_SHARE))
            assign[idx[:n_hold]] = 0
    all_idx = np.arange(len(y))
    return [(all_idx[assign != f], all_idx[assign == f]) for f in range(n_folds)]


def _knn_votes(
    xq: npt.NDArray[np.float32],
    x: npt.NDArray[np.float32],
    y: IntArray,
    n_cls: int,
    k: int,
) -> tuple[FloatArray, FloatArray]:
    """Similarity-weighted votes of the k nearest examples (rows sum to 1), and top similarity."""
    sims = xq @ x.T
    k = min(k, x.shape[0])
    if k < x.shape[0]:
        nn = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    else:
        nn = np.tile(np.arange(x.shape[0]), (len(xq), 1))
    rows = np.arange(len(xq))[:, None]
    near = sims[rows, nn].astype(np.float64)
    w = np.clip(near, 0.0, None) ** 4  # sharpen toward the closest examples
    votes = np.zeros((len(xq), n_cls))
    np.add.at(votes, (np.repeat(rows, nn.shape[1], axis=1), y[nn]), w)
    total = votes.sum(axis=1, keepdims=True)
    total[total == 0] = 1.0
    out: FloatArray = votes / total
    top: FloatArray = near.max(axis=1)
    return out, top


def _fit_linear(
    x: npt.NDArray[np.float32],
    texts: Sequence[str],
    y: IntArray,
    n_cls: int,
    c: float,
    *,
    lexical: bool,
) -> _Head:
    """Multinomial logistic regression, class-balanced, on embeddings (+ TF-IDF words)."""
    try:
        from scipy import sparse  # type: ignore[import-untyped]
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:  # pragma: no cover - scikit-learn comes with the extra
        msg = "the linear head needs scikit-learn: pip install 'agentroute[embeddings]'"
        raise MissingExtraError(msg) from exc
    vectorizer = None
    features: Any = x
    if lexical:
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        try:
            words = vectorizer.fit_transform(list(texts))
            features = sparse.hstack([sparse.csr_matrix(x), words]).tocsr()
        except ValueError:  # no word at all (e.g. only emoji): embeddings only
            vectorizer = None
    present = np.unique(y)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=1000)
    model.fit(features, y)
    dim = features.shape[1]
    coef = np.zeros((dim, n_cls))
    # Classes absent from this training part get a very negative bias: never predicted.
    bias = np.full(n_cls, -1e3)
    if len(present) == 2:  # scikit-learn's binary case: one weight vector
        coef[:, present[1]] = model.coef_[0]
        bias[present[1]] = model.intercept_[0]
        bias[present[0]] = 0.0
    else:
        coef[:, present] = model.coef_.T
        bias[present] = model.intercept_
    return _Head(coef=coef, intercept=bias, vectorizer=vectorizer)
