"""`StaticEmbedder`: a fast CPU embedder for very large skill pools (model2vec-style).

A static model is one vector per vocabulary token; a text's embedding is the mean of its
tokens' vectors. There is no transformer pass at query or index time, so 80,000 skills embed in
seconds and one query in well under a millisecond, and there is no token window: a whole body
is one vector.

The model is distilled locally, offline, from the bundled all-MiniLM-L6-v2 following the
model2vec recipe (Tulkens & van Dongen, 2024): every vocabulary token is passed through MiniLM
alone (`[CLS] token [SEP]`, mean-pooled), the vectors are reduced with PCA to `dim`
dimensions, and each row is weighted by `log(1 + rank)` (a Zipf prior that down-weights
frequent word pieces, which come first in the WordPiece vocabulary). The result is stored in
`<cache>/models/static-minilm-<dim>/` (`embeddings.npy` + `tokenizer.json` + `meta.json`) and
built automatically on first use (about a minute on two cores); `distill_static_model()`
builds it explicitly.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from agentroute.errors import MissingExtraError
from agentroute.routing.embeddings import (
    Matrix,
    bundled_minilm_path,
    default_cache_dir,
    limit_threads,
    normalize,
)
from agentroute.routing.embeddings._sentence_transformers import EMBEDDINGS_EXTRA

__all__ = ["StaticEmbedder", "distill_static_model", "static_model_dir"]

_log = structlog.get_logger(__name__)
_PRETOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_RECIPE = "model2vec-style: single-token MiniLM pass, PCA, log(1+rank) weights"


def static_model_dir(dim: int = 256, root: str | Path | None = None) -> Path:
    """Where the distilled static model of dimension `dim` is stored.

    Args:
        dim: Output dimension.
        root: Cache root; default `$AGENTROUTE_CACHE` or `~/.cache/agentroute`.
    """
    base = Path(root) if root is not None else default_cache_dir()
    return base / "models" / f"static-minilm-{dim}"


def distill_static_model(
    dim: int = 256,
    *,
    out: str | Path | None = None,
    batch_size: int = 512,
    threads: int | None = None,
) -> Path:
    """Distil a static embedding model from the bundled MiniLM, offline, and store it.

    Args:
        dim: Output dimension (PCA components; at most 384).
        out: Target directory; default `static_model_dir(dim)`.
        batch_size: Tokens per forward pass.
        threads: Thread cap (see `limit_threads`).

    Returns:
        The directory holding the model.

    Raises:
        ImportError: The `embeddings` extra is missing (the message names the install).
    """
    target = Path(out) if out is not None else static_model_dir(dim)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    limit_threads(threads)
    try:
        import torch
        from sklearn.decomposition import PCA
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        msg = (
            "distilling the static model needs torch, transformers and scikit-learn: "
            f"{EMBEDDINGS_EXTRA}"
        )
        raise MissingExtraError(msg) from exc
    source = bundled_minilm_path()
    tokenizer: Any = AutoTokenizer.from_pretrained(str(source))
    model: Any = AutoModel.from_pretrained(str(source))
    model.eval()
    vocab_size = int(tokenizer.vocab_size)
    cls_id, sep_id = int(tokenizer.cls_token_id), int(tokenizer.sep_token_id)
    _log.info("distilling static model", source=str(source), vocab=vocab_size, dim=dim)
    rows: list[np.ndarray[Any, Any]] = []
    with torch.inference_mode():
        for start in range(0, vocab_size, batch_size):
            ids = torch.arange(start, min(start + batch_size, vocab_size))
            inputs = torch.stack(
                [torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], dim=1
            )
            hidden = model(input_ids=inputs, attention_mask=torch.ones_like(inputs))[0]
            rows.append(hidden.mean(dim=1).numpy().astype(np.float32))
    vectors = np.concatenate(rows)
    dim = min(dim, vectors.shape[1])
    reduced = PCA(n_components=dim, random_state=0).fit_transform(vectors).astype(np.float32)
    reduced *= np.log1p(np.arange(1, vocab_size + 1, dtype=np.float32))[:, None]
    special = {int(i) for i in tokenizer.all_special_ids}
    for i in special:
        reduced[i] = 0.0
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / "embeddings.tmp.npy"
    np.save(tmp, reduced)
    tmp.replace(target / "embeddings.npy")
    tokenizer.backend_tokenizer.save(str(target / "tokenizer.json"))
    (target / "meta.json").write_text(
        json.dumps({"source": "all-MiniLM-L6-v2", "dim": dim, "recipe": _RECIPE}, indent=2)
    )
    return target


class StaticEmbedder:
    """Mean of static token vectors, L2-normalised. Offline; no token window. Thread-safe.

    Args:
        path: A directory made by `distill_static_model`; default `static_model_dir(dim)`,
            distilled on first use when missing.
        dim: Dimension of the default model.
        max_tokens: Tokens read per text (long bodies are cut here, not at 256).
    """

    def __init__(
        self, path: str | Path | None = None, *, dim: int = 256, max_tokens: int = 4096
    ) -> None:
        self._path = Path(path) if path is not None else None
        self.dim = dim
        self.max_tokens = max_tokens
        self._lock = threading.Lock()
        self._table: Matrix | None = None
        self._tokenizer: Any = None
        self._word_ids: dict[str, list[int]] = {}
        self.word_cache_limit = 2_000_000
        """Distinct words whose WordPiece ids are kept; the cache is emptied beyond it."""

    @property
    def name(self) -> str:
        """`static:<dir name>@<max_tokens>`."""
        return f"static:{self.path.name}@{self.max_tokens}"

    @property
    def path(self) -> Path:
        """The model directory."""
        return self._path if self._path is not None else static_model_dir(self.dim)

    def _load(self) -> tuple[Matrix, Any]:
        with self._lock:
            if self._table is None:
                try:
                    from tokenizers import Tokenizer
                except ImportError as exc:  # pragma: no cover - ships with the extra
                    msg = f"StaticEmbedder needs the tokenizers package: {EMBEDDINGS_EXTRA}"
                    raise MissingExtraError(msg) from exc
                path = self.path
                if not (path / "embeddings.npy").exists():
                    if self._path is not None:
                        msg = f"{path} holds no static model; build one with distill_static_model"
                        raise FileNotFoundError(msg)
                    distill_static_model(self.dim, out=path)
                tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
                tokenizer.no_padding()
                tokenizer.enable_truncation(self.max_tokens)
                self._tokenizer = tokenizer
                self._table = np.load(path / "embeddings.npy")
            return self._table, self._tokenizer

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        """WordPiece ids per text, tokenising each distinct word once.

        BERT's pre-tokeniser splits on whitespace and punctuation before WordPiece, so
        tokenising word by word gives the same ids as tokenising the text, and a corpus of
        80,000 bodies has far fewer distinct words than words.
        """
        _, tokenizer = self._load()
        cap = self.max_tokens * 8
        split = [_PRETOKEN.findall(t[:cap]) for t in texts]
        with self._lock:
            cache = self._word_ids
            if len(cache) > self.word_cache_limit:
                cache.clear()  # before `missing` is computed: this batch's words are re-encoded
            missing = list({w for words in split for w in words if w not in cache})
            if missing:
                for word, enc in zip(
                    missing, tokenizer.encode_batch(missing, add_special_tokens=False), strict=True
                ):
                    cache[word] = list(enc.ids)
            out = []
            for words in split:
                ids: list[int] = []
                for w in words:
                    ids.extend(cache[w])
                    if len(ids) >= self.max_tokens:
                        break
                out.append(ids[: self.max_tokens])
        return out

    def embed(self, texts: Sequence[str]) -> Matrix:
        """Embed `texts` (L2-normalised float32 rows; an empty text gives a zero row)."""
        table, _ = self._load()
        out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
        if not texts:
            return out
        for i, ids in enumerate(self._ids(texts)):
            if ids:
                out[i] = table[ids].mean(axis=0)
        return normalize(out)
