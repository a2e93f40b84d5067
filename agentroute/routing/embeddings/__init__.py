"""Text embeddings for routing: the `Embedder` protocol, a local model, a persistent cache.

A LiteLLM-backed embedder (any provider's embedding API) lives with the other LiteLLM code in
`agentroute.models` and satisfies the same protocol.
"""

from agentroute.routing.embeddings._cache import CachedEmbedder, default_cache_dir
from agentroute.routing.embeddings._default import default_embedder
from agentroute.routing.embeddings._protocol import Embedder, Matrix, normalize
from agentroute.routing.embeddings._sentence_transformers import (
    SentenceTransformerEmbedder,
    bundled_minilm_path,
)
from agentroute.routing.embeddings._threads import limit_threads

__all__ = [
    "CachedEmbedder",
    "Embedder",
    "Matrix",
    "SentenceTransformerEmbedder",
    "bundled_minilm_path",
    "default_cache_dir",
    "default_embedder",
    "limit_threads",
    "normalize",
]
