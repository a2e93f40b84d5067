"""The process-wide default embedder shared by every embedding-based strategy."""

from __future__ import annotations

import threading

from agentroute.routing.embeddings._cache import CachedEmbedder, default_cache_dir
from agentroute.routing.embeddings._protocol import Embedder
from agentroute.routing.embeddings._sentence_transformers import SentenceTransformerEmbedder

__all__ = ["default_embedder"]

_DEFAULT: dict[str, Embedder] = {}
_LOCK = threading.Lock()


def default_embedder() -> Embedder:
    """The bundled offline MiniLM behind a persistent cache, one instance per process.

    Every strategy that embeds (skills, agents, difficulty, intent) shares this instance, so the
    model loads once and vectors persist in `~/.cache/agentroute/embeddings.sqlite` (or under
    `$AGENTROUTE_CACHE`).

    Raises:
        ImportError: The `embeddings` extra is missing (raised on first use of the model).
    """
    with _LOCK:
        if "default" not in _DEFAULT:
            _DEFAULT["default"] = CachedEmbedder(
                SentenceTransformerEmbedder(), default_cache_dir() / "embeddings.sqlite"
            )
        return _DEFAULT["default"]
