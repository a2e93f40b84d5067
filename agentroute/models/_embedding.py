"""`LiteLLMEmbedder`: any provider's embedding API through LiteLLM, as an `Embedder`.

It satisfies `agentroute.routing.embeddings.Embedder` (`name`, `embed(texts)` → L2-normalised
float32 rows). Provider failures are translated at the same boundary as chat calls
(`_litellm._translate`) into `ModelCallError` subclasses, so a skills index that embeds through
it sees one exception family and can report which skills were left lexical-only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from agentroute.errors import ModelAuthError, ModelResponseError
from agentroute.models._litellm import _translate, import_litellm, missing_api_key
from agentroute.registry import ModelSpec

__all__ = ["LiteLLMEmbedder"]

_log = structlog.get_logger(__name__)

Matrix = npt.NDArray[np.float32]


class LiteLLMEmbedder:
    """Embeds through `litellm.embedding` / `litellm.aembedding` (OpenAI, Cohere, Ollama, ...).

    Args:
        model: LiteLLM embedding model id, e.g. `"openai/text-embedding-3-small"` or
            `"ollama/nomic-embed-text"`.
        batch_size: Texts per provider call.
        dimensions: Requested output size, for models that support it.
        api_key_env: Environment variable holding the key, when not the provider's default.
        timeout_s: Per-call timeout.
        params: Extra keyword arguments for LiteLLM (e.g. `api_base`); never put keys here.

    Example:
        ```python
        from agentroute.routing.embeddings import CachedEmbedder
        embedder = CachedEmbedder(LiteLLMEmbedder("openai/text-embedding-3-small"), "vec.db")
        ```
    """

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 128,
        dimensions: int | None = None,
        api_key_env: str | None = None,
        timeout_s: float = 60.0,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.batch_size = max(1, batch_size)
        self.dimensions = dimensions
        self.timeout_s = timeout_s
        # The spec only carries what the error boundary needs (names, key variable, api_base);
        # prices are irrelevant for embeddings here, and set so the spec is complete.
        self._spec = ModelSpec(
            name="embedder",
            model=model,
            api_key_env=api_key_env,
            input_price_per_mtok=0.0,
            output_price_per_mtok=0.0,
            timeout_s=timeout_s,
            params=dict(params or {}),
        )

    def __repr__(self) -> str:
        return f"LiteLLMEmbedder({self.model!r})"

    @property
    def name(self) -> str:
        """`litellm:<model>[@<dimensions>]`."""
        return f"litellm:{self.model}" + (f"@{self.dimensions}" if self.dimensions else "")

    def _kwargs(self, batch: Sequence[str]) -> tuple[dict[str, Any], str | None]:
        spec = self._spec
        key: str | None = None
        if spec.api_key_env is not None:
            key = os.environ.get(spec.api_key_env) or None
            if key is None:
                msg = (
                    f"embedder {self.model!r} reads its key from {spec.api_key_env}, "
                    "which is not set"
                )
                raise ModelAuthError(msg, model=spec.name)
        else:
            env = missing_api_key(spec)
            if env is not None:
                msg = f"embedder {self.model!r} needs an API key in {env}: export {env}=..."
                raise ModelAuthError(msg, model=spec.name)
        # Providers reject empty strings; embed a space and zero the row afterwards.
        kwargs: dict[str, Any] = {
            **spec.params,
            "model": self.model,
            "input": [t if t.strip() else " " for t in batch],
            "timeout": self.timeout_s,
        }
        if self.dimensions:
            kwargs["dimensions"] = self.dimensions
        if key is not None:
            kwargs["api_key"] = key
        return kwargs, key

    def _parse(self, raw: Any, batch: Sequence[str]) -> Matrix:
        try:
            data = raw["data"] if isinstance(raw, dict) else raw.data
            rows = [d["embedding"] if isinstance(d, dict) else d.embedding for d in data]
            arr = np.asarray(rows, dtype=np.float32)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            msg = f"embedder {self.model!r} returned no usable vectors"
            raise ModelResponseError(msg, model=self._spec.name) from exc
        if arr.ndim != 2 or arr.shape[0] != len(batch):
            msg = f"embedder {self.model!r} returned {arr.shape} for {len(batch)} texts"
            raise ModelResponseError(msg, model=self._spec.name)
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        arr = arr / norms
        for i, text in enumerate(batch):
            if not text.strip():
                arr[i] = 0.0
        out: Matrix = arr.astype(np.float32, copy=False)
        return out

    def embed(self, texts: Sequence[str]) -> Matrix:
        """Embed `texts`, `batch_size` per call (L2-normalised float32 rows).

        Raises:
            ModelCallError: A subclass saying what went wrong (auth, rate limit, timeout, ...).
        """
        if not texts:
            return np.zeros((0, self.dimensions or 0), dtype=np.float32)
        litellm = import_litellm()
        parts = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            kwargs, key = self._kwargs(batch)
            began = time.perf_counter()
            try:
                raw = litellm.embedding(**kwargs)
            except Exception as exc:
                raise _translate(exc, self._spec, secret=key) from exc
            _log.debug(
                "embedding_call",
                model=self.model,
                texts=len(batch),
                latency_ms=round((time.perf_counter() - began) * 1e3, 1),
            )
            parts.append(self._parse(raw, batch))
        return np.concatenate(parts)

    async def aembed(self, texts: Sequence[str]) -> Matrix:
        """`embed` through `litellm.aembedding`.

        Raises:
            ModelCallError: A subclass saying what went wrong.
        """
        if not texts:
            return np.zeros((0, self.dimensions or 0), dtype=np.float32)
        litellm = import_litellm()
        parts = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            kwargs, key = self._kwargs(batch)
            try:
                raw = await litellm.aembedding(**kwargs)
            except Exception as exc:
                raise _translate(exc, self._spec, secret=key) from exc
            parts.append(self._parse(raw, batch))
        return np.concatenate(parts)
