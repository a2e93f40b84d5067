"""Saving and loading a `SkillIndex`: atomic replacement, live mmap readers, damaged parts."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from agentroute.errors import ConfigurationError
from agentroute.routing.embeddings import Matrix
from agentroute.routing.skills import SkillIndex, SkillRecord

from .conftest import FakeEmbedder


class _Negated(FakeEmbedder):
    """The fake embedder's vectors negated: a same-shaped index with other contents."""

    def embed(self, texts: Sequence[str]) -> Matrix:
        return -super().embed(texts)


def _small_pool(n: int, tag: str = "") -> list[SkillRecord]:
    return [
        SkillRecord(
            id=f"s{i}{tag}",
            name=f"skill {i} {tag}",
            description=f"handles topic{i}",
            body=f"lorem ipsum topic{i} " * 50,
        )
        for i in range(n)
    ]


def test_save_over_a_live_mmap_index_leaves_its_reader_intact(tmp_path: Path) -> None:
    """A process serving from `load(mmap=True)` keeps its index when another saves there."""
    root = tmp_path / "idx"
    SkillIndex.build(_small_pool(20), FakeEmbedder()).save(root)
    serving = SkillIndex.load(root, FakeEmbedder(), mmap=True)
    before = np.array(serving.vectors)
    expected = [r.id for r in serving.search("topic7", 3)]
    SkillIndex.build(_small_pool(20), _Negated()).save(root)  # same shape, other vectors
    assert np.array_equal(np.asarray(serving.vectors), before)
    assert [r.id for r in serving.search("topic7", 3)] == expected
    fresh = SkillIndex.load(root, FakeEmbedder())
    assert np.array_equal(fresh.vectors, -before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]  # no temporaries left


def test_an_mmap_loaded_index_can_be_saved_to_its_own_path(tmp_path: Path) -> None:
    """Re-saving an mmap-loaded index in place keeps its vectors and search results."""
    root = tmp_path / "idx"
    built = SkillIndex.build(_small_pool(20), FakeEmbedder())
    built.save(root)
    loaded = SkillIndex.load(root, FakeEmbedder(), mmap=True)
    loaded.save(root)
    again = SkillIndex.load(root, FakeEmbedder())
    assert np.array_equal(again.vectors, built.vectors)
    assert again.ids == built.ids
    assert [r.id for r in again.search("topic3", 3)] == [r.id for r in built.search("topic3", 3)]


def test_a_save_failing_part_way_leaves_the_previous_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save that fails after writing some files leaves the old index whole at the path."""
    import bm25s

    root = tmp_path / "idx"
    old = SkillIndex.build(_small_pool(10), FakeEmbedder())
    old.save(root)
    new = SkillIndex.build(_small_pool(12, "v2"), FakeEmbedder())

    def disk_full(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bm25s.BM25, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        new.save(root)
    monkeypatch.undo()
    loaded = SkillIndex.load(root, FakeEmbedder())
    assert loaded.ids == old.ids
    assert np.array_equal(loaded.vectors, old.vectors)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_save_refuses_to_replace_a_directory_that_is_not_an_index(tmp_path: Path) -> None:
    """Saving over a non-empty directory without an index fails instead of deleting it."""
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not a skills index"):
        SkillIndex.build(_small_pool(3), FakeEmbedder()).save(tmp_path)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "keep me"


@pytest.mark.parametrize("part", ["vectors.npy", "starts.npy", "embedded.npy", "n_head.npy"])
def test_load_rejects_parts_from_different_indexes(tmp_path: Path, part: str) -> None:
    """A directory mixing files of two indexes fails to load, naming the damage."""
    small, big = tmp_path / "small", tmp_path / "big"
    SkillIndex.build(_small_pool(5), FakeEmbedder()).save(small)
    SkillIndex.build(_small_pool(9), FakeEmbedder()).save(big)
    shutil.copy(big / part, small / part)
    with pytest.raises(ConfigurationError, match="incomplete or damaged"):
        SkillIndex.load(small, FakeEmbedder())


def test_load_rejects_a_bm25_model_of_another_index(tmp_path: Path) -> None:
    """BM25 files counting another number of documents than the ids fail the load."""
    small, big = tmp_path / "small", tmp_path / "big"
    SkillIndex.build(_small_pool(5), FakeEmbedder()).save(small)
    SkillIndex.build(_small_pool(9), FakeEmbedder()).save(big)
    shutil.rmtree(small / "bm25")
    shutil.copytree(big / "bm25", small / "bm25")
    with pytest.raises(ConfigurationError, match="incomplete or damaged"):
        SkillIndex.load(small, FakeEmbedder())


def test_load_rejects_meta_listing_other_skills(tmp_path: Path) -> None:
    """`meta.json` with fewer ids than the arrays describe fails the load."""
    root = tmp_path / "idx"
    SkillIndex.build(_small_pool(5), FakeEmbedder()).save(root)
    meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    for key in ("ids", "names", "descriptions", "hashes"):
        meta[key] = meta[key][:4]
    (root / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="incomplete or damaged"):
        SkillIndex.load(root, FakeEmbedder())
    assert os.path.isdir(root)
