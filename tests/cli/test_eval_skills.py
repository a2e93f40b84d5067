"""`agentroute eval skills` measures the pipeline it was asked for, or fails with one clear error.

The embedder and rerankers here are fakes registered under names the command resolves, so no
model is loaded.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import Result

from agentroute.routing.embeddings import Matrix, normalize
from agentroute.routing.skills import RerankRequest, _strategy
from tests.cli.conftest import Invoke

DIM = 64

SKILLS = [
    ("refund-policy", "Refund policy", "When and how customers get their money back."),
    ("lost-package", "Lost package", "What to do when a parcel never arrived."),
    ("reset-password", "Reset password", "Help a user who cannot log in to their account."),
    ("invoice-copy", "Invoice copy", "Send a copy of an invoice or a receipt."),
]
QUERIES = [
    ("q1", "my parcel never arrived", "lost-package"),
    ("q2", "I want my money back", "refund-policy"),
]


class FakeEmbedder:
    """Hashed bag of words; `fail(call, texts)` decides which calls raise (calls count from 1)."""

    def __init__(self, fail: Callable[[int, Sequence[str]], bool] = lambda call, texts: False):
        self.fail = fail
        self.calls = 0

    @property
    def name(self) -> str:
        """Part of the cache key (each test has its own cache directory)."""
        return "fake-words"

    def embed(self, texts: Sequence[str]) -> Matrix:
        """Embed `texts`, or raise `ConnectionError` when `fail` says so."""
        self.calls += 1
        if self.fail(self.calls, texts):
            msg = "provider went away"
            raise ConnectionError(msg)
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % DIM] += 1.0
        return normalize(out)


class FakeReranker:
    """Scores every candidate 0.5; fails every call, or sleeps on its first (a lazy load)."""

    def __init__(self, *, broken: bool = False, first_call_s: float = 0.0) -> None:
        self.broken = broken
        self.first_call_s = first_call_s
        self.calls = 0

    @property
    def name(self) -> str:
        """Recorded in errors."""
        return "broken" if self.broken else "slow-start"

    async def rerank(self, request: RerankRequest) -> list[float]:
        """One relevance per candidate."""
        self.calls += 1
        if self.broken:
            msg = "Path /nonexistent/model not found"
            raise FileNotFoundError(msg)
        if self.calls == 1:
            await asyncio.sleep(self.first_call_s)
        return [0.5] * len(request.candidates)


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A skills file and a queries file; embedding vectors cached in the test's directory."""
    monkeypatch.setenv("AGENTROUTE_CACHE", str(tmp_path / "cache"))
    skills = _write(
        tmp_path / "skills.jsonl",
        [{"id": i, "name": n, "description": d, "body": ""} for i, n, d in SKILLS],
    )
    queries = _write(
        tmp_path / "queries.jsonl", [{"id": i, "text": t, "gold": [g]} for i, t, g in QUERIES]
    )
    return skills, queries


def _use(monkeypatch: pytest.MonkeyPatch, embedder: FakeEmbedder, **rerankers: object) -> None:
    monkeypatch.setitem(_strategy._EMBEDDERS, "minilm", lambda arg: embedder)
    for name, reranker in rerankers.items():
        monkeypatch.setitem(_strategy._RERANKERS, name.replace("_", "-"), lambda arg, r=reranker: r)


def _eval(invoke: Invoke, files: tuple[Path, Path], *extra: str) -> Result:
    skills, queries = files
    return invoke("eval", "skills", "--skills", str(skills), "--queries", str(queries), *extra)


def test_a_failing_reranker_is_an_error_not_the_numbers_without_it(
    invoke: Invoke, files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reranker that fails (e.g. a cross-encoder path that does not exist) exits 1.

    `RetrieveRerank.rank` falls back to the stage-1 order and notes the error; the command
    must not report those numbers as the reranker's. The error names the reranker and its
    error, and nothing is printed on standard output.
    """
    _use(monkeypatch, FakeEmbedder(), broken=FakeReranker(broken=True))
    result = _eval(invoke, files, "--reranker", "broken", "--json")
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: the reranker 'broken' failed")
    assert "FileNotFoundError: Path /nonexistent/model not found" in result.stderr
    assert "--reranker none" in result.stderr


def test_a_failing_query_embedding_is_an_error_when_dense_retrieval_is_used(
    invoke: Invoke, files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An embedder that indexes the skills but fails on queries exits 1 for fused retrieval.

    With `--strategy bm25` (dense weight 0) the same failure changes nothing, so it passes.
    """
    _use(monkeypatch, FakeEmbedder(fail=lambda call, texts: call > 1))
    result = _eval(invoke, files, "--strategy", "fusion", "--json")
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: the embedder 'fake-words' failed")
    assert "(embedding the query): ConnectionError: provider went away" in result.stderr

    result = _eval(invoke, files, "--strategy", "bm25", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["queries"] == 2


def test_index_warnings_go_to_stderr_so_json_stays_valid(
    invoke: Invoke, tmp_path: Path, files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Skills indexed lexically only are a warning on stderr; `--json` stdout is one object.

    300 skills are embedded in two batches; the second fails, the queries embed fine.
    """
    skills = _write(
        tmp_path / "many.jsonl",
        [{"id": f"s{i}", "name": f"skill {i}", "description": "d"} for i in range(300)],
    )
    queries = _write(tmp_path / "q.jsonl", [{"id": "q", "text": "skill 7", "gold": ["s7"]}])
    _use(monkeypatch, FakeEmbedder(fail=lambda call, texts: call == 2))
    result = _eval(invoke, (skills, queries), "--strategy", "fusion", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["queries"] == 1
    assert "warning:" in result.stderr
    assert "of 300 skills indexed lexically only" in result.stderr
    assert "ConnectionError: provider went away" in result.stderr


def test_an_embedder_that_fails_on_every_skill_is_an_error(
    invoke: Invoke, files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No skill embedded: fused retrieval would be BM25 alone, so it exits 1; bm25 passes."""
    _use(monkeypatch, FakeEmbedder(fail=lambda call, texts: True))
    result = _eval(invoke, files, "--strategy", "fusion", "--json")
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: the embedder 'fake-words' failed on every skill")
    assert "--strategy bm25" in result.stderr

    result = _eval(invoke, files, "--strategy", "bm25", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["queries"] == 2
    assert "warning: 4 of 4 skills indexed lexically only" in result.stderr


@pytest.mark.parametrize("where", ["missing-dir/ranks.jsonl", "."])
def test_an_unwritable_out_fails_before_the_work(
    invoke: Invoke,
    tmp_path: Path,
    files: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """`--out` in a missing directory, or naming a directory, is one `error:` line, exit 1.

    It is checked before the index is built: the embedder is never called.
    """
    embedder = FakeEmbedder()
    _use(monkeypatch, embedder)
    result = _eval(invoke, files, "--out", str(tmp_path / where))
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert result.stderr.startswith("error: ")
    assert "--out" in result.stderr
    assert embedder.calls == 0


def test_p50_excludes_a_lazy_model_load(
    invoke: Invoke, files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A component that loads on first use (here a reranker sleeping 0.6 s) is not timed.

    With two queries, timing the load would put p50 near 300 ms.
    """
    reranker = FakeReranker(first_call_s=0.6)
    _use(monkeypatch, FakeEmbedder(), slow_start=reranker)
    result = _eval(invoke, files, "--reranker", "slow-start", "--json")
    assert result.exit_code == 0, result.output
    assert reranker.calls == 3  # the warm-up and the two queries
    assert json.loads(result.stdout)["p50_ms"] < 150


def test_a_missing_extra_is_one_line_naming_the_install(
    invoke: Invoke, files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the embeddings extra (bm25s absent) the command exits 1 with one red line.

    The line names the `pip install` to run; no traceback reaches the user.
    """
    _use(monkeypatch, FakeEmbedder())
    monkeypatch.setitem(sys.modules, "bm25s", None)  # `import bm25s` raises ImportError
    result = _eval(invoke, files, "--strategy", "bm25")
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        "error: the skills index needs bm25s: pip install 'agentroute[embeddings]'\n"
    )
    assert "Traceback" not in result.output
