"""The persistent embedding cache: content-addressed, incremental, bounded, failure-tolerant."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from agentroute.routing.embeddings import CachedEmbedder, Matrix, normalize


class CountingEmbedder:
    """A deterministic fake that counts the texts it embeds and can fail on demand."""

    def __init__(self, name: str = "fake", fail_on: str | None = None) -> None:
        self._name = name
        self.fail_on = fail_on
        self.embedded: list[str] = []

    @property
    def name(self) -> str:
        return self._name

    def embed(self, texts: Sequence[str]) -> Matrix:
        if self.fail_on is not None and self.fail_on in texts:
            msg = "provider down"
            raise RuntimeError(msg)
        self.embedded.extend(texts)
        return normalize([[len(t), t.count("a") + 1.0, 1.0] for t in texts])


def test_reindexing_embeds_only_changed_texts(tmp_path: Path) -> None:
    """A second cache on the same file embeds only texts it has not seen (one changed skill)."""
    inner = CountingEmbedder()
    first = CachedEmbedder(inner, tmp_path / "v.db")
    a = first.embed(["alpha", "beta", "gamma"])
    first.close()
    again = CountingEmbedder()
    second = CachedEmbedder(again, tmp_path / "v.db")
    b = second.embed(["alpha", "beta", "gamma changed"])
    assert again.embedded == ["gamma changed"]
    np.testing.assert_allclose(a[:2], b[:2])
    second.close()


def test_model_name_is_part_of_the_key(tmp_path: Path) -> None:
    """Vectors of one model are never served for another."""
    CachedEmbedder(CountingEmbedder("m1"), tmp_path / "v.db").embed(["alpha"])
    other = CountingEmbedder("m2")
    CachedEmbedder(other, tmp_path / "v.db").embed(["alpha"])
    assert other.embedded == ["alpha"]


def test_failure_mid_index_keeps_what_was_embedded(tmp_path: Path) -> None:
    """A provider failing part-way raises, and chunks embedded before it stay cached."""
    inner = CountingEmbedder(fail_on="boom")
    cache = CachedEmbedder(inner, tmp_path / "v.db", chunk=2)
    with pytest.raises(RuntimeError, match="provider down"):
        cache.embed(["a1", "a2", "boom", "a4"])
    retry = CountingEmbedder()
    CachedEmbedder(retry, tmp_path / "v.db", chunk=2).embed(["a1", "a2", "boom", "a4"])
    assert retry.embedded == ["boom", "a4"]


def test_memory_is_bounded() -> None:
    """The in-memory part keeps at most `memory_limit` vectors (least recently used go)."""
    cache = CachedEmbedder(CountingEmbedder(), memory_limit=3)
    cache.embed([f"t{i}" for i in range(10)])
    assert len(cache._mem) == 3
