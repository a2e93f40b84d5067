"""Cheap text features and a dependency-free hashing embedder for difficulty scorers."""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections.abc import Sequence

import numpy as np

from agentroute.routing.embeddings import Matrix, normalize

__all__ = ["FEATURE_NAMES", "HashingEmbedder", "text_features"]

FEATURE_NAMES: tuple[str, ...] = (
    "log_chars",
    "log_words",
    "lines",
    "digit_share",
    "math_share",
    "upper_share",
    "question_marks",
    "long_word_share",
    "code_like",
)
"""Names of the columns `text_features` returns, in order."""

_MATH = re.compile(r"[=+\-*/^<>%$\\∑∫√π]")
_CODE = re.compile(r"(def |return |;\s*$|\{|\}|==|\(\)|import |#include)", re.MULTILINE)


def text_features(texts: Sequence[str]) -> Matrix:
    """Length, layout and symbol features of each text: `(len(texts), len(FEATURE_NAMES))`."""
    rows: list[list[float]] = []
    for text in texts:
        n = max(1, len(text))
        words = text.split()
        rows.append(
            [
                math.log1p(len(text)),
                math.log1p(len(words)),
                math.log1p(text.count("\n")),
                sum(map(str.isdigit, text)) / n,
                len(_MATH.findall(text)) / n,
                sum(map(str.isupper, text)) / n,
                math.log1p(text.count("?")),
                sum(len(w) > 8 for w in words) / max(1, len(words)),
                float(bool(_CODE.search(text))),
            ]
        )
    return np.asarray(rows, dtype=np.float32).reshape(len(texts), len(FEATURE_NAMES))


class HashingEmbedder:
    """Bag of hashed word unigrams and bigrams: no model, no extra, deterministic.

    Much weaker than a sentence encoder; use it where nothing else is installed, or in tests.

    Args:
        dim: Vector size.
    """

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    @property
    def name(self) -> str:
        """`hashing:<dim>`."""
        return f"hashing:{self.dim}"

    def embed(self, texts: Sequence[str]) -> Matrix:
        """L2-normalised hashed bags of words."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            tokens = re.findall(r"\w+", text.lower())
            grams = tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]
            for gram in grams:
                h = int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "big")
                out[i, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        return normalize(out)
