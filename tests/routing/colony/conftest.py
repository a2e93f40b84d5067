"""Fixtures of the ant-colony tests: a tiny deterministic embedder and a 2-stage registry."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest

import agentroute as ar
from agentroute.routing.colony import AntColony, EmbeddingIntent
from agentroute.routing.embeddings import Matrix, normalize

DIM = 64


class WordEmbedder:
    """Hashes words into a 64-dim bag of words: similar word sets → similar vectors."""

    name = "test-words"

    def embed(self, texts: Sequence[str]) -> Matrix:
        """Embed `texts` (L2-normalised rows)."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                h = int(hashlib.md5(word.encode()).hexdigest()[:8], 16)
                out[i, h % DIM] += 1.0
        return normalize(out)


def build_registry() -> ar.Registry:
    """Two stages × two agents, two task types with examples."""
    reg = ar.Registry()
    reg.model("cheap", "openai/gpt-4o-mini", input_price_per_mtok=0.1, output_price_per_mtok=0.1)
    reg.task("math", examples=["add two numbers", "solve the equation", "compute the sum"])
    reg.task("code", examples=["write a python function", "fix this bug", "refactor the class"])
    for name, stage in (("plan_a", 0), ("plan_b", 0), ("solve_a", 1), ("solve_b", 1)):

        async def fn(ctx: ar.AgentContext, task: str) -> str:
            return f"{ctx.previous or task} > {ctx.agent}"

        reg.agent(name=name, description=f"Stage {stage} agent {name}.", stage=stage)(fn)
    return reg


@pytest.fixture
def embedder() -> WordEmbedder:
    """The tiny bag-of-words embedder."""
    return WordEmbedder()


@pytest.fixture
def colony_registry() -> ar.Registry:
    """The 2-stage registry."""
    return build_registry()


def make_colony(**params: object) -> AntColony:
    """An AntColony with the test embedder (keywords override parameters)."""
    params.setdefault("intent", EmbeddingIntent(WordEmbedder()))
    return AntColony(**params)  # type: ignore[arg-type]
