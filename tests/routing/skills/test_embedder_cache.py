"""The embedding cache and embedder names as the skills slot uses them (no model is loaded)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from agentroute.routing.embeddings import CachedEmbedder, SentenceTransformerEmbedder
from agentroute.routing.skills import RetrieveRerank, SkillIndex, SkillRecord

from .conftest import FakeEmbedder


def _rows(path: Path) -> int:
    db = sqlite3.connect(str(path))
    try:
        return int(db.execute("SELECT count(*) FROM vectors").fetchone()[0])
    finally:
        db.close()


def test_queries_never_grow_the_cache_file(tmp_path: Path, pool: list[SkillRecord]) -> None:
    """Skills are stored in the cache file; distinct queries are not (memory LRU only)."""
    path = tmp_path / "embeddings.sqlite"
    strategy = RetrieveRerank(k=3, n=1, embedder=FakeEmbedder(), cache=path)
    index = SkillIndex.build(pool, strategy.embedder)
    stored = _rows(path)
    assert stored > 0

    async def ask() -> None:
        for i in range(50):
            await strategy.rank(f"question {i} about refunds", index)

    asyncio.run(ask())
    assert _rows(path) == stored


def test_query_memory_cache_is_bounded_and_serves_repeats() -> None:
    """`embed_queries` keeps at most `query_limit` queries and embeds a repeat only once."""
    inner = FakeEmbedder()
    cache = CachedEmbedder(inner, query_limit=3)
    first = cache.embed_queries(["refund please"])
    again = cache.embed_queries(["refund please"])
    assert inner.texts == 1
    assert np.array_equal(first, again)
    cache.embed_queries([f"q{i}" for i in range(10)])
    assert len(cache._queries) == 3


def test_corrupt_cache_file_falls_back_to_memory_with_a_warning(tmp_path: Path) -> None:
    """A cache file that is not a database is named in a warning; routing still works."""
    path = tmp_path / "embeddings.sqlite"
    path.write_bytes(b"garbage" * 100)
    with capture_logs() as logs:
        strategy = RetrieveRerank(embedder=FakeEmbedder(), cache=path)
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert warnings
    assert warnings[0]["path"] == str(path)
    assert "not a database" in warnings[0]["error"]
    assert strategy.embedder.embed(["hello"]).shape == (1, 64)


def _fake_model(root: Path, hidden: int) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text(f'{{"hidden_size": {hidden}}}', encoding="utf-8")
    (root / "model.safetensors").write_bytes(b"\x00" * hidden)
    return root


def test_local_models_in_same_named_directories_get_different_names(tmp_path: Path) -> None:
    """Two local `model` directories (or a replaced model) never share an embedder name."""
    a = SentenceTransformerEmbedder(_fake_model(tmp_path / "v1" / "model", 8))
    b = SentenceTransformerEmbedder(_fake_model(tmp_path / "v2" / "model", 16))
    assert a.name != b.name
    assert str((tmp_path / "v1" / "model").resolve()) in a.name
    again = SentenceTransformerEmbedder(tmp_path / "v1" / "model")
    assert again.name == a.name
    (tmp_path / "v1" / "model" / "config.json").write_text('{"hidden_size": 9}', "utf-8")
    assert SentenceTransformerEmbedder(tmp_path / "v1" / "model").name != a.name


def test_default_and_hub_model_names_are_unchanged() -> None:
    """The default model and hub ids keep the names existing caches and indexes use."""
    assert SentenceTransformerEmbedder().name == "st:all-MiniLM-L6-v2@default"
    assert SentenceTransformerEmbedder(max_seq_length=128).name == "st:all-MiniLM-L6-v2@128"
    hub = SentenceTransformerEmbedder("sentence-transformers/all-mpnet-base-v2")
    assert hub.name == "st:all-mpnet-base-v2@default"


def test_bundled_model_by_path_keeps_its_name() -> None:
    """Passing the bundled model's directory keeps the short name it always had."""
    from agentroute.routing.embeddings import bundled_minilm_path

    try:
        path = bundled_minilm_path()
    except ImportError:  # pragma: no cover - the embeddings extra is installed in CI
        pytest.skip("embeddings extra not installed")
    assert SentenceTransformerEmbedder(path).name == f"st:{path.name}@default"
