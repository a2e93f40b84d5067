"""`DescriptionRouter`: zero-shot routing by similarity between the request and agent descriptions.

No examples are needed: each agent's description (read from the registry at routing time, so
agents registered later are routable at once) is embedded, cached by content, and compared with
the request. Probabilities are a softmax of the cosine similarities at a temperature that
`calibrate()` fits on labelled requests, together with the abstain threshold.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from agentroute.errors import ConfigurationError
from agentroute.registry import Registry
from agentroute.routing._agent_scoring import (
    ThresholdChoice,
    choose_threshold,
    default_embedder,
    fit_temperature,
    softmax,
)
from agentroute.routing._protocol import Candidate, RouteDecision, RoutingContext
from agentroute.routing.embeddings import Embedder, normalize

__all__ = ["DescriptionRouter"]

FloatArray = npt.NDArray[np.float64]


class DescriptionRouter:
    """Agent slot: the agent whose description is closest to the request (zero examples).

    Example:
        ```python
        router = ar.Router(registry, agent=ar.DescriptionRouter(threshold=0.3))
        ```

    Args:
        threshold: Abstain when the top probability is below this; `None` never abstains.
            `calibrate()` replaces it with one chosen on validation data.
        min_similarity: Also abstain when the best raw cosine similarity is below this.
        temperature: Softmax temperature over cosine similarities (`calibrate()` fits it).
        max_agents: Route to up to this many agents.
        multi_ratio: A further agent is added when its probability is at least this share of
            the top one.
        shortlist: Keep only this many best candidates in the decision (`None` = all); other
            strategies (the reasoning router) use it to shortlist hundreds of agents.
        below_threshold: `abstain` (a composite tries its next strategy) or `out_of_scope`.
        embedder: The embedder; default the bundled MiniLM behind a persistent cache.
    """

    name: ClassVar[str] = "description"
    version: ClassVar[str] = "1"

    def __init__(
        self,
        *,
        threshold: float | None = None,
        min_similarity: float | None = None,
        temperature: float = 0.05,
        max_agents: int = 1,
        multi_ratio: float = 0.8,
        shortlist: int | None = None,
        below_threshold: Literal["abstain", "out_of_scope"] = "abstain",
        embedder: Embedder | None = None,
    ) -> None:
        if shortlist is not None and shortlist < 1:
            msg = f"DescriptionRouter: shortlist must be at least 1 (None = all), got {shortlist}"
            raise ConfigurationError(msg)
        self.threshold = threshold
        self.min_similarity = min_similarity
        self.temperature = temperature
        self.max_agents = max_agents
        self.multi_ratio = multi_ratio
        self.shortlist = shortlist
        self.below_threshold = below_threshold
        self._embedder = embedder
        self._vectors: dict[tuple[str, str], npt.NDArray[np.float32]] = {}
        self._lock = threading.Lock()
        self.calibration: ThresholdChoice | None = None

    @property
    def embedder(self) -> Embedder:
        """The embedder in use (the shared default unless one was given)."""
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    def params(self) -> dict[str, Any]:
        """Parameters for the trace."""
        return {
            "threshold": self.threshold,
            "min_similarity": self.min_similarity,
            "temperature": self.temperature,
            "max_agents": self.max_agents,
            "shortlist": self.shortlist,
        }

    def _agent_matrix(
        self, registry: Registry, agents: Sequence[str]
    ) -> tuple[list[str], npt.NDArray[np.float32]]:
        """Vectors of the agents' current descriptions; agents without one are skipped."""
        keys: list[tuple[str, str]] = []
        for agent in agents:
            spec = registry.agents.get(agent)
            desc = (spec.description if spec is not None else "").strip()
            if desc:
                keys.append((agent, desc))
        with self._lock:
            missing = [k for k in keys if k not in self._vectors]
        if missing:
            # The description text, prefixed by the readable name: names carry signal too.
            vecs = normalize(self.embedder.embed([_agent_text(a, d) for a, d in missing]))
            with self._lock:
                for key, vec in zip(missing, vecs, strict=True):
                    self._vectors[key] = vec
        if not keys:
            return [], np.zeros((0, 0), dtype=np.float32)
        with self._lock:
            mat = np.stack([self._vectors[k] for k in keys])
        return [a for a, _ in keys], mat

    def similarities(
        self, registry: Registry, texts: Sequence[str], agents: Sequence[str] | None = None
    ) -> tuple[list[str], FloatArray]:
        """Cosine similarity of each text to each agent's description (batch, for evaluation).

        Returns:
            The agents (columns; those without a description are left out) and the array.
        """
        names, mat = self._agent_matrix(registry, tuple(agents or registry.agents))
        if not names:
            return names, np.zeros((len(texts), 0))
        q = normalize(self.embedder.embed(list(texts)))
        return names, (q @ mat.T).astype(np.float64)

    def calibrate(
        self,
        registry: Registry,
        texts: Sequence[str],
        golds: Sequence[Sequence[str]],
        *,
        target_oos_recall: float = 0.8,
    ) -> ThresholdChoice:
        """Fit the temperature and choose the threshold on labelled requests.

        Args:
            registry: The registry routed over.
            texts: Validation requests.
            golds: The right agents of each (empty list = out of scope).
            target_oos_recall: Out-of-scope recall to reach (see `choose_threshold`).

        Returns:
            The threshold choice, applied to this router from now on.
        """
        names, sims = self.similarities(registry, texts)
        index = {a: i for i, a in enumerate(names)}
        in_idx = [i for i, g in enumerate(golds) if g and any(a in index for a in g)]
        if in_idx:
            labels = [next(index[a] for a in golds[i] if a in index) for i in in_idx]
            self.temperature = fit_temperature(sims[in_idx], labels)
        probs = softmax(sims, self.temperature) if names else np.zeros((len(texts), 0))
        top = probs.argmax(axis=1) if names else np.zeros(len(texts), dtype=int)
        conf = probs.max(axis=1) if names else np.zeros(len(texts))
        oos_idx = [i for i, g in enumerate(golds) if not g]
        choice = choose_threshold(
            conf[in_idx],
            [names[top[i]] in golds[i] for i in in_idx],
            conf[oos_idx] if oos_idx else None,
            target_oos_recall=target_oos_recall,
        )
        self.threshold = choice.threshold
        self.calibration = choice
        return choice

    async def route(self, ctx: RoutingContext) -> RouteDecision:
        """Route to the agent(s) whose description is closest to `ctx.task`."""
        # Embedding is CPU work (~15 ms): off the event loop.
        names, sims = await asyncio.to_thread(
            self.similarities, ctx.registry, [ctx.task], ctx.candidates
        )
        skipped = [a for a in ctx.candidates if a not in names]
        if not names:
            return RouteDecision.abstain("no candidate agent has a description", skipped=skipped)
        row = sims[0]
        probs = softmax(row, self.temperature)[0]
        order = np.argsort(-probs)
        if self.shortlist is not None:
            order = order[: self.shortlist]
        ranked = [(names[int(i)], float(probs[int(i)]), float(row[int(i)])) for i in order]
        cands = [
            Candidate(name=a, score=round(p, 6), detail={"similarity": round(s, 4)})
            for a, p, s in ranked
        ]
        best, conf, best_sim = ranked[0]
        evidence: dict[str, Any] = {
            "confidence": conf,
            "similarity": best_sim,
            "threshold": self.threshold,
            "temperature": self.temperature,
            "without_description": skipped,
        }
        low = (self.threshold is not None and conf < self.threshold) or (
            self.min_similarity is not None and best_sim < self.min_similarity
        )
        if low:
            reason = f"no description is close enough: best {best!r} at {conf:.2f}"
            if self.below_threshold == "out_of_scope":
                return RouteDecision.out_of_scope(reason, cands, **evidence)
            return RouteDecision.abstain(reason, **evidence).model_copy(
                update={"candidates": tuple(cands)}
            )
        chosen = [best]
        for agent, p, _ in ranked[1 : self.max_agents]:
            if p >= self.multi_ratio * conf:
                chosen.append(agent)
        why = ", ".join(f"{a} ({p:.2f})" for a, p, _ in ranked if a in chosen)
        return RouteDecision.to(
            *chosen, reason=f"closest descriptions: {why}", candidates=cands, evidence=evidence
        )


def _agent_text(name: str, description: str) -> str:
    readable = name.replace("_", " ").replace("-", " ")
    return f"{readable}: {description}"
