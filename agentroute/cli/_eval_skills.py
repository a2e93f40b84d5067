"""`agentroute eval skills`: retrieval quality of the skills slot on your labelled data."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agentroute.cli._common import check_writable, echo_json, fail, stderr, stdout
from agentroute.errors import ConfigurationError, did_you_mean

if TYPE_CHECKING:
    from collections.abc import Sequence

    from agentroute.routing.skills import EvalQuery, SkillIndex

__all__ = ["register"]

_STRATEGIES: dict[str, dict[str, Any]] = {
    "retrieve-rerank": {"embedder": "minilm", "reranker": "feature"},
    "fusion": {"embedder": "minilm", "reranker": "none"},
    "bm25": {"embedder": "minilm", "reranker": "none", "fusion_weights": (1.0, 0.0)},
    "dense": {"embedder": "minilm", "reranker": "none", "fusion_weights": (0.0, 1.0)},
    "static": {"embedder": "static", "reranker": "feature"},
    "static-fusion": {"embedder": "static", "reranker": "none"},
}
"""`--strategy` names → `RetrieveRerank` settings (all offline)."""


def skills(  # noqa: PLR0917 - one option per flag, as Typer needs
    skills_file: Annotated[
        Path,
        typer.Option(
            "--skills",
            help='Skills, JSON lines: {"id","name","description","body","tags"?}.',
            dir_okay=False,
        ),
    ],
    queries_file: Annotated[
        Path,
        typer.Option(
            "--queries",
            help='Queries, JSON lines: {"id","text","gold":[skill ids]}.',
            dir_okay=False,
        ),
    ],
    strategy: Annotated[
        str,
        typer.Option(help=f"Pipeline: {', '.join(_STRATEGIES)}. Default: the best offline one."),
    ] = "retrieve-rerank",
    k: Annotated[int, typer.Option(help="Stage-1 candidates.")] = 30,
    embedder: Annotated[
        str | None,
        typer.Option(help="Override the embedder: minilm, static, st:<path>, litellm:<model>."),
    ] = None,
    reranker: Annotated[
        str | None,
        typer.Option(
            help="Override the reranker: feature[:weights.json], cross-encoder:<path>, none."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write each query's ranked ids (JSON lines)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Measure skill retrieval: Hit@1, Recall@5, Recall@10, MRR@10, nDCG@10 and latency.

    The index is built in memory (vectors cached by content hash under the cache directory);
    `p50_ms` is the median time of retrieve + rerank for one query, index build and one
    untimed warm-up query (model loading) excluded.

    The command measures the pipeline asked for or fails: a reranker, or a query embedding the
    pipeline uses, that fails on a query is an error (exit 1), not a silent fallback to
    another pipeline. Skills the embedder could not index are a warning on standard error;
    when none could be embedded, and dense retrieval is part of the pipeline, an error.
    """
    import numpy as np

    from agentroute.routing.embeddings import limit_threads
    from agentroute.routing.skills import (
        Ranked,
        RetrieveRerank,
        SkillIndex,
        metric_table,
        read_queries,
        read_skills,
    )

    settings = _settings(strategy, k, embedder, reranker)
    records = read_skills(skills_file)
    queries = read_queries(queries_file, known=[s.id for s in records])
    if out is not None:
        check_writable(out, "--out")  # before the work, not after it
    limit_threads()
    pipeline = RetrieveRerank(k=max(k, 10), n=min(3, max(k, 10)), **settings)
    uses_dense = pipeline.fusion_weights[1] > 0
    index = SkillIndex.build(records, pipeline.embedder, pipeline.caps)
    _check_index(index, len(records), pipeline.embedder.name, uses_dense=uses_dense)
    rankings: list[list[str]] = []
    latencies: list[float] = []

    def check(ranked: Ranked, where: str) -> None:
        # `rank` never raises: it falls back and says so in `notes`. Numbers measured on the
        # fallback would be reported as the requested pipeline's.
        if "reranker_error" in ranked.notes and pipeline.reranker is not None:
            fail(
                f"the reranker {pipeline.reranker.name!r} failed {where}: "
                f"{ranked.notes['reranker_error']}; fix it, or measure without reranking "
                "with --reranker none"
            )
        if "dense_error" in ranked.notes and uses_dense:
            fail(
                f"the embedder {pipeline.embedder.name!r} failed {where} (embedding the query): "
                f"{ranked.notes['dense_error']}; fix it, or measure lexical retrieval alone "
                "with --strategy bm25"
            )

    async def rank_all() -> None:
        # One event loop for every query: a loop (and its thread pool) per query would be
        # timed as part of each query's latency.
        # One untimed query first: models load lazily on first use (the index's vectors may
        # all come from the cache), and that load is not a query's latency. Its text differs
        # from every query's so that none of them is timed with its vector already cached.
        ranked = await pipeline.rank(f"warm-up: {queries[0].text}", index)
        check(ranked, f"on a warm-up run of query {queries[0].id!r}")
        for q in queries:
            started = time.perf_counter()
            ranked = await pipeline.rank(q.text, index)
            latencies.append((time.perf_counter() - started) * 1e3)
            check(ranked, f"on query {q.id!r}")
            rankings.append(list(ranked.ranking))

    asyncio.run(rank_all())
    metrics = metric_table(rankings, [q.gold for q in queries])
    result: dict[str, Any] = {
        **{m: round(v, 4) for m, v in metrics.items()},
        "queries": len(queries),
        "p50_ms": round(float(np.median(latencies)), 2),
    }
    if out is not None:
        _write_ranks(out, queries, rankings)
    if as_json:
        echo_json(result)
        return
    from rich.table import Table

    table = Table(title=f"skills retrieval — {strategy} ({len(records)} skills)")
    columns = ("hit@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "queries", "p50_ms")
    for column in columns:
        table.add_column(column, justify="right")
    table.add_row(*(str(result[c]) for c in columns))
    stdout().print(table)


def _settings(strategy: str, k: int, embedder: str | None, reranker: str | None) -> dict[str, Any]:
    """The `RetrieveRerank` keyword arguments the options ask for (checked)."""
    if strategy not in _STRATEGIES:
        hint = did_you_mean(strategy, _STRATEGIES)
        msg = f"unknown --strategy {strategy!r}{hint}"
        raise ConfigurationError(msg)
    if k < 1:
        msg = f"--k must be at least 1, got {k}"
        raise ConfigurationError(msg)
    settings = dict(_STRATEGIES[strategy])
    if embedder:
        settings["embedder"] = embedder
    if reranker:
        if reranker.startswith("llm"):
            msg = "the llm reranker needs a run's model access; evaluate it through a Router"
            raise ConfigurationError(msg)
        settings["reranker"] = reranker
    return settings


def _check_index(index: SkillIndex, total: int, embedder: str, *, uses_dense: bool) -> None:
    """Warn (on standard error) about skills indexed lexically only; fail if none embedded."""
    if not index.failed:
        return
    if uses_dense and len(index.failed) == total:
        fail(
            f"the embedder {embedder!r} failed on every skill ({index.last_error}); fix it, "
            "or measure lexical retrieval alone with --strategy bm25"
        )
    # Standard error: standard output may be the `--json` object.
    stderr().print(
        f"warning: {len(index.failed)} of {total} skills indexed lexically only "
        f"(the embedder failed): {index.last_error}",
        style="yellow",
        markup=False,
        soft_wrap=True,
    )


def _write_ranks(out: Path, queries: Sequence[EvalQuery], rankings: list[list[str]]) -> None:
    """Write each query's ranked ids to `out` as JSON lines."""
    try:
        with out.open("w", encoding="utf-8") as fh:
            for q, ranking in zip(queries, rankings, strict=True):
                row = {"id": q.id, "ranked": ranking, "gold": sorted(q.gold)}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    except OSError as exc:
        fail(f"cannot write --out {out}: {exc.strerror or exc}")


def register(app: typer.Typer) -> None:
    """Add the `skills` command to `agentroute eval`."""
    app.command("skills")(skills)
