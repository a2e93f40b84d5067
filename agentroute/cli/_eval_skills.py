"""`agentroute eval skills`: retrieval quality of the skills slot on your labelled data."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from agentroute.cli._common import echo_json, stdout
from agentroute.errors import ConfigurationError, did_you_mean

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
        Path | None, typer.Option("--out", help="Write each query's ranked ids (JSON lines).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Measure skill retrieval: Hit@1, Recall@5, Recall@10, MRR@10, nDCG@10 and latency.

    The index is built in memory (vectors cached by content hash under the cache directory);
    `p50_ms` is the median time of retrieve + rerank for one query, index build excluded.
    """
    import numpy as np

    from agentroute.routing.embeddings import limit_threads
    from agentroute.routing.skills import (
        RetrieveRerank,
        SkillIndex,
        metric_table,
        read_queries,
        read_skills,
    )

    if strategy not in _STRATEGIES:
        hint = did_you_mean(strategy, _STRATEGIES)
        msg = f"unknown --strategy {strategy!r}{hint}; one of {list(_STRATEGIES)}"
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
    records = read_skills(skills_file)
    queries = read_queries(queries_file, known=[s.id for s in records])
    limit_threads()
    pipeline = RetrieveRerank(k=max(k, 10), n=min(3, max(k, 10)), **settings)
    index = SkillIndex.build(records, pipeline.embedder, pipeline.caps)
    if index.failed:
        stdout().print(
            f"[yellow]warning:[/] {len(index.failed)} skills indexed lexically only: "
            f"{index.last_error}"
        )
    rankings: list[list[str]] = []
    latencies: list[float] = []

    async def rank_all() -> None:
        # One event loop for every query: a loop (and its thread pool) per query would be
        # timed as part of each query's latency.
        for q in queries:
            started = time.perf_counter()
            ranked = await pipeline.rank(q.text, index)
            latencies.append((time.perf_counter() - started) * 1e3)
            rankings.append(list(ranked.ranking))

    asyncio.run(rank_all())
    metrics = metric_table(rankings, [q.gold for q in queries])
    result: dict[str, Any] = {
        **{m: round(v, 4) for m, v in metrics.items()},
        "queries": len(queries),
        "p50_ms": round(float(np.median(latencies)), 2),
    }
    if out is not None:
        with out.open("w", encoding="utf-8") as fh:
            for q, ranking in zip(queries, rankings, strict=True):
                row = {"id": q.id, "ranked": ranking, "gold": sorted(q.gold)}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
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


def register(app: typer.Typer) -> None:
    """Add the `skills` command to `agentroute eval`."""
    app.command("skills")(skills)
