"""`agentroute eval skills`, the LiteLLM embedder's error boundary, and the static embedder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from agentroute.cli import app
from agentroute.errors import ModelAuthError, ModelRateLimited, ModelResponseError
from agentroute.models._embedding import LiteLLMEmbedder
from agentroute.routing.embeddings import bundled_minilm_path
from agentroute.routing.skills import SkillIndex, SkillRecord, StaticEmbedder, _strategy

from .conftest import POOL, FakeEmbedder


@pytest.fixture
def fake_minilm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the `minilm` embedder name resolve to the fast fake (no model load)."""
    monkeypatch.setitem(_strategy._EMBEDDERS, "minilm", lambda arg: FakeEmbedder())


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def _files(tmp_path: Path) -> tuple[Path, Path]:
    skills = _write(
        tmp_path / "skills.jsonl",
        [{"id": s.id, "name": s.name, "description": s.description, "body": s.body} for s in POOL],
    )
    queries = _write(
        tmp_path / "queries.jsonl",
        [
            {"id": "q1", "text": "my parcel is lost", "gold": ["lost-package"]},
            {"id": "q2", "text": "refund my money back", "gold": ["refund-policy"]},
            {"id": "q3", "text": "北京天气", "gold": ["beijing"]},
        ],
    )
    return skills, queries


@pytest.mark.usefixtures("fake_minilm")
def test_eval_skills_json_and_ranks(tmp_path: Path) -> None:
    """`--json` prints one object with the metric keys; `--out` writes ranked ids per query."""
    skills, queries = _files(tmp_path)
    out = tmp_path / "ranks.jsonl"
    args = ["eval", "skills", "--skills", str(skills), "--queries", str(queries)]
    result = CliRunner().invoke(app, [*args, "--json", "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"hit@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "queries", "p50_ms"}
    assert data["queries"] == 3
    assert data["hit@1"] == 1.0
    ranks = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert ranks[0]["id"] == "q1"
    assert ranks[0]["ranked"][0] == "lost-package"
    table = CliRunner().invoke(app, [*args, "--strategy", "bm25"], env={"COLUMNS": "200"})
    assert table.exit_code == 0
    assert "recall@5" in table.stdout


@pytest.mark.usefixtures("fake_minilm")
def test_eval_skills_bad_input_is_one_clear_error(tmp_path: Path) -> None:
    """Duplicate ids, non-UTF-8 files, unknown gold ids and unknown strategies fail clearly."""
    skills, queries = _files(tmp_path)
    runner = CliRunner()

    def run(*extra: str, s: Path = skills, q: Path = queries) -> Any:
        return runner.invoke(
            app, ["eval", "skills", "--skills", str(s), "--queries", str(q), *extra]
        )

    dup = _write(tmp_path / "dup.jsonl", [{"id": "a", "name": "A"}, {"id": "a", "name": "B"}])
    result = run(s=dup)
    assert result.exit_code != 0
    assert "duplicate skill id 'a'" in result.output
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"id": "caf\xe9"}\n')
    assert "not UTF-8" in run(s=latin).output
    bad_gold = _write(tmp_path / "q.jsonl", [{"id": 1, "text": "x", "gold": ["nope"]}])
    assert "not in the skills file" in run(q=bad_gold).output
    assert "unknown --strategy" in run("--strategy", "fusionn").output


def test_litellm_embedder_normalises_and_maps_errors(
    offline_litellm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Vectors come back L2-normalised (empty texts zero); provider errors become ours."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123456789")
    calls: list[dict[str, Any]] = []

    def fake_embedding(**kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs)
        return {"data": [{"embedding": [3.0, 4.0]} for _ in kwargs["input"]]}

    monkeypatch.setattr(offline_litellm, "embedding", fake_embedding)
    embedder = LiteLLMEmbedder("openai/text-embedding-3-small", batch_size=2)
    vectors = embedder.embed(["a", "", "c"])
    assert vectors.shape == (3, 2)
    assert np.allclose(vectors[0], [0.6, 0.8])
    assert np.allclose(vectors[1], 0.0)
    assert len(calls) == 2
    assert embedder.name == "litellm:openai/text-embedding-3-small"

    def limited(**kwargs: Any) -> Any:
        raise offline_litellm.exceptions.RateLimitError(
            "slow down", llm_provider="openai", model="text-embedding-3-small"
        )

    monkeypatch.setattr(offline_litellm, "embedding", limited)
    with pytest.raises(ModelRateLimited, match="rate-limited"):
        embedder.embed(["x"])
    monkeypatch.setattr(offline_litellm, "embedding", lambda **kw: {"nothing": 1})
    with pytest.raises(ModelResponseError):
        embedder.embed(["x"])
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ModelAuthError, match="OPENAI_API_KEY"):
        embedder.embed(["x"])


def test_failing_provider_mid_index_is_reported(
    offline_litellm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A LiteLLM embedder failing on its second batch leaves a usable, partly lexical index."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123456789")
    state = {"n": 0}

    def flaky(**kwargs: Any) -> dict[str, Any]:
        state["n"] += 1
        if state["n"] > 1:
            raise offline_litellm.exceptions.ServiceUnavailableError(
                "down", llm_provider="openai", model="m"
            )
        return {"data": [{"embedding": [1.0, float(i)]} for i, _ in enumerate(kwargs["input"])]}

    monkeypatch.setattr(offline_litellm, "embedding", flaky)
    many = [SkillRecord(id=f"s{i}", name=f"skill {i}", description="d") for i in range(300)]
    index = SkillIndex.build(many, LiteLLMEmbedder("openai/text-embedding-3-small", batch_size=512))
    assert 0 < len(index.failed) < 300
    assert index.last_error is not None
    assert "ModelUnavailable" in index.last_error
    assert index.search("skill 299", k=1, qvec=np.zeros(0, dtype=np.float32))[0].id == "s299"


def test_static_embedder_from_a_model_directory(tmp_path: Path) -> None:
    """A static model directory (tokenizer + table) embeds offline; empty text is a zero row.

    A word cache past its limit is emptied before the batch's misses are looked up, so the
    batch's own words are encoded again rather than lost.
    """
    import shutil

    shutil.copy(bundled_minilm_path() / "tokenizer.json", tmp_path / "tokenizer.json")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "embeddings.npy", rng.normal(size=(30522, 16)).astype(np.float32))
    embedder = StaticEmbedder(tmp_path)
    vectors = embedder.embed(["refund my order", "refund my order please", ""])
    assert vectors.shape == (3, 16)
    assert float(vectors[0] @ vectors[1]) > 0.5
    assert np.allclose(vectors[2], 0.0)
    embedder.word_cache_limit = 1  # a full word cache is emptied, never read half-cleared
    again = embedder.embed(["refund my order please", "some fresh words"])
    assert np.allclose(again[0], vectors[1])
    with pytest.raises(FileNotFoundError, match="distill_static_model"):
        StaticEmbedder(tmp_path / "missing").embed(["x"])
