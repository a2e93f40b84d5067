"""Shared test doubles for the embedding-based agent routers (no model download)."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

import agentroute as ar
from agentroute.routing import RoutingContext
from agentroute.routing.embeddings import Matrix, normalize


class WordsEmbedder:
    """A tiny deterministic bag-of-words embedder: each word hashed into one of `dims` bins."""

    name = "test-words"
    dims = 64

    def embed(self, texts: Sequence[str]) -> Matrix:
        """Hash each word into one of `dims` dimensions."""
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[i, zlib.crc32(word.encode()) % self.dims] += 1.0
        return normalize(out)


def agent_ctx(registry: ar.Registry, task: str) -> RoutingContext:
    """An agent-slot context over every registered agent."""
    return RoutingContext(
        run_id="r",
        step=0,
        slot="agent",
        task=task,
        registry=registry,
        candidates=tuple(registry.agents),
    )
