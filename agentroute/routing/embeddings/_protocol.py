"""The `Embedder` protocol: texts in, L2-normalised float32 vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["Embedder", "Matrix", "normalize"]

Matrix = npt.NDArray[np.float32]
"""An `(n, dim)` float32 array."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors whose dot product is their cosine similarity."""

    @property
    def name(self) -> str:
        """Identifies the model (and its settings) — part of every cache key."""
        ...

    def embed(self, texts: Sequence[str]) -> Matrix:
        """Return an `(len(texts), dim)` float32 array of L2-normalised rows."""
        ...


def normalize(vectors: npt.ArrayLike) -> Matrix:
    """L2-normalise rows (zero rows stay zero), as float32."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: Matrix = (arr / norms).astype(np.float32, copy=False)
    return out
