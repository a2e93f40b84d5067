"""Skills-slot retrieval quality on public tool-retrieval data: BM25, dense, fusion, pipeline.

Data (not shipped; fetch it yourself, then pass its folder as the first argument):

- ToolBench (StableToolBench, Apache-2.0): github.com/THUNLP-MT/StableToolBench,
  `solvable_queries/test_instruction/*.json` (six files, 765 queries) in `<data>/toolbench/`.
  Corpus = the union of every query's `api_list` (2,479 APIs); a skill's body is the API's full
  documentation rendered as text; gold = `relevant APIs`.
- MetaTool (MIT): github.com/HowieHwong/MetaTool, `dataset/plugin_des.json`,
  `all_clean_data.csv`, `multi_tool_query_golden.json` in `<data>/metatool/`. Skills = the 199
  tools (description only, no body). Single-tool queries: the 20,614 rows split in halves with
  a fixed seed (10,307 train / 10,307 test); the whole test half is measured (about a minute to
  embed with MiniLM on 2 cores; `--metatool-sample N` measures its first N only). Multi-tool:
  all 497 (set recall).

Protocol. Each dataset's queries are split with a fixed seed into a train half (used only to fit
the offline reranker: the shipped weights with `--retrain`, the cross-data rows always) and a
test half; every row of the table is measured on the test half in the same run. Feature and
regularisation choices were made by cross-validation on the train halves and by fitting on one
train half and scoring the other, never on test halves. Rows:

- `BM25 (flat)`, `MiniLM (flat)`, `RRF (flat)`: simple baselines — bm25s with its default
  tokeniser over `name description body`; MiniLM over `name: description body` (cut at its
  256-token window); reciprocal-rank fusion of the two.
- `BM25`, `dense`, `fusion`: our stage 1 components — field-weighted BM25 with identifier
  splitting; MiniLM max-pooled over a head vector and body chunks; their RRF.
- `pipeline`: `RetrieveRerank()` defaults — the fusion's top 30 reranked by the shipped
  `FeatureReranker` (fitted on both train halves, each dataset weighted equally).
- `pipeline (cross-data)`: the reranker fitted on the *other* dataset's train half only: how
  the recipe does on data it never saw, the closest proxy here for unseen tool-retrieval data.

Usage:
    python benchmarks/skills_quality.py [DATA] [--retrain] [--metatool-sample N] [--seed S]
        [--k K] [--no-flat]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentroute.routing.embeddings import (
    CachedEmbedder,
    SentenceTransformerEmbedder,
    default_cache_dir,
    limit_threads,
)
from agentroute.routing.skills import (
    FeatureReranker,
    RetrieveRerank,
    SkillIndex,
    SkillRecord,
    fit_feature_reranker,
    metric_table,
    save_weights,
    training_lists,
)
from agentroute.routing.skills._rerank import _default_weights_path

RESULTS = Path(__file__).parent / "results" / "skills_quality.md"


# -- data ------------------------------------------------------------------------------------


def _render_api(api: dict[str, Any]) -> str:
    lines = [
        f"Tool: {api.get('tool_name', '')}",
        f"Category: {api.get('category_name', '')}",
        f"API: {api.get('api_name', '')} ({api.get('method', '')})",
        f"Description: {api.get('api_description', '') or ''}",
    ]
    for kind in ("required_parameters", "optional_parameters"):
        params = api.get(kind) or []
        if params:
            lines.append(kind.replace("_", " ").capitalize() + ":")
            for p in params:
                default = p.get("default")
                extra = f" (default: {default})" if default not in (None, "") else ""
                lines.append(
                    f"- {p.get('name')} ({p.get('type')}): {p.get('description', '')}{extra}"
                )
    if api.get("template_response"):
        lines.append("Response: " + json.dumps(api["template_response"], ensure_ascii=False))
    return "\n".join(lines)


def load_toolbench(root: Path) -> tuple[list[SkillRecord], list[tuple[str, str, frozenset[str]]]]:
    apis: dict[str, dict[str, Any]] = {}
    queries = []
    for path in sorted((root / "toolbench").glob("*.json")):
        for q in json.loads(path.read_text(encoding="utf-8")):
            for api in q["api_list"]:
                apis.setdefault(f"{api['tool_name']}::{api['api_name']}", api)
            gold = frozenset(f"{t}::{a}" for t, a in q["relevant APIs"])
            queries.append((f"{path.stem}:{q['query_id']}", q["query"], gold))
    skills = [
        SkillRecord(
            id=sid,
            name=f"{a['tool_name']} {a['api_name']}",
            description=a.get("api_description") or "",
            body=_render_api(a),
            tags=(a.get("category_name") or "",),
        )
        for sid, a in sorted(apis.items())
    ]
    known = {s.id for s in skills}
    queries = [q for q in queries if q[2] <= known]
    return skills, queries


def load_metatool(
    root: Path, sample: int, seed: int
) -> tuple[list[SkillRecord], list[tuple[str, str, frozenset[str]]], list[Any], list[Any]]:
    """Skills, test half (its first `sample` when `sample > 0`), train half, multi-tool."""
    base = root / "metatool"
    des = json.loads((base / "plugin_des.json").read_text(encoding="utf-8"))
    skills = [SkillRecord(id=k, name=k, description=v) for k, v in sorted(des.items())]
    with (base / "all_clean_data.csv").open(encoding="utf-8") as fh:
        rows = [(r["Query"], r["Tool"]) for r in csv.DictReader(fh)]
    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    half = len(order) // 2
    train = [(f"s{i}", rows[i][0], frozenset([rows[i][1]])) for i in order[:half]]
    test = [(f"s{i}", rows[i][0], frozenset([rows[i][1]])) for i in order[half:]]
    if sample > 0:
        test = test[:sample]
    multi = json.loads((base / "multi_tool_query_golden.json").read_text(encoding="utf-8"))
    multi_q = [(f"m{i}", m["query"], frozenset(m["tool"])) for i, m in enumerate(multi)]
    return skills, test, train, multi_q


def split(queries: list[Any], seed: int) -> tuple[list[Any], list[Any]]:
    rng = random.Random(seed)
    order = list(range(len(queries)))
    rng.shuffle(order)
    half = len(order) // 2
    return [queries[i] for i in order[:half]], [queries[i] for i in order[half:]]


# -- methods ---------------------------------------------------------------------------------


class Flat:
    """The simple baselines: bm25s default tokeniser, MiniLM over flat text, their RRF."""

    def __init__(self, skills: Sequence[SkillRecord], embedder: CachedEmbedder) -> None:
        import bm25s

        self.ids = [s.id for s in skills]
        texts = [f"{s.name} {s.description} {s.body}" for s in skills]
        self.bm25 = bm25s.BM25()
        self.bm25.index(bm25s.tokenize(texts, show_progress=False), show_progress=False)
        self.embedder = embedder
        self.vectors = embedder.embed([f"{s.name}: {s.description} {s.body}" for s in skills])

    def rankings(self, query: str) -> dict[str, list[str]]:
        """Top-10 ids of each flat baseline for `query`."""
        import bm25s

        tokens = bm25s.tokenize([query], show_progress=False, return_ids=False)[0]
        vocab = self.bm25.vocab_dict
        tokens = [t for t in tokens if t in vocab]
        lex = (
            np.asarray(self.bm25.get_scores(tokens))
            if tokens
            else np.zeros(len(self.ids), dtype=np.float32)
        )
        dense = self.vectors @ self.embedder.embed([query])[0]
        bm = list(np.argsort(-lex, kind="stable")[:100])
        de = list(np.argsort(-dense, kind="stable")[:100])
        fused: dict[int, float] = {}
        for ranking in (bm, de):
            for r, i in enumerate(ranking, start=1):
                fused[int(i)] = fused.get(int(i), 0.0) + 1 / (60 + r)
        fu = sorted(fused, key=lambda i: -fused[i])
        return {
            "BM25 (flat)": [self.ids[i] for i in bm[:10]],
            "MiniLM (flat)": [self.ids[i] for i in de[:10]],
            "RRF (flat)": [self.ids[i] for i in fu[:10]],
        }


def ours(index: SkillIndex, query: str) -> dict[str, list[str]]:
    lex = index.bm25_scores(query)
    dense = index.dense_scores(index.embed_query(query))
    fused = index.search(query, 10)
    return {
        "BM25": [index.ids[i] for i in np.argsort(-lex, kind="stable")[:10]],
        "dense": [index.ids[i] for i in np.argsort(-dense, kind="stable")[:10]],
        "fusion": [c.id for c in fused],
    }


def pipeline_rank(
    strategy: RetrieveRerank, index: SkillIndex, query: str
) -> tuple[list[str], float]:
    started = time.perf_counter()
    ranked = asyncio.run(strategy.rank(query, index))
    return list(ranked.ranking), (time.perf_counter() - started) * 1e3


def evaluate(  # noqa: PLR0917 - a script's helper
    name: str,
    skills: list[SkillRecord],
    test: list[Any],
    index: SkillIndex,
    flat: Flat | None,
    pipelines: dict[str, RetrieveRerank],
) -> dict[str, dict[str, float]]:
    runs: dict[str, list[list[str]]] = {}
    latency: dict[str, list[float]] = {}
    for _qid, text, _gold in test:
        flat_runs = flat.rankings(text) if flat is not None else {}
        for method, ranking in {**flat_runs, **ours(index, text)}.items():
            runs.setdefault(method, []).append(ranking)
        for label, strategy in pipelines.items():
            ranking, ms = pipeline_rank(strategy, index, text)
            runs.setdefault(label, []).append(ranking)
            latency.setdefault(label, []).append(ms)
    golds = [g for _, _, g in test]
    table = {m: metric_table(r, golds) for m, r in runs.items()}
    for label, values in latency.items():
        table[label]["p50_ms"] = float(np.median(values))
    print(f"  {name}: {len(test)} queries", file=sys.stderr)
    return table


def set_recall(index: SkillIndex, strategy: RetrieveRerank, queries: list[Any]) -> dict[str, float]:
    out: dict[str, list[float]] = {}
    for _qid, text, gold in queries:
        runs = {**ours(index, text)}
        runs["pipeline"], _ = pipeline_rank(strategy, index, text)
        for m, ranking in runs.items():
            top = set(ranking[:5])
            out.setdefault(m, []).append(len(gold & top) / len(gold))
            out.setdefault(m + ":full", []).append(1.0 if gold <= top else 0.0)
    return {m: float(np.mean(v)) for m, v in out.items()}


# -- main ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", nargs="?", default="../shared/data", type=Path)
    parser.add_argument("--retrain", action="store_true", help="refit the shipped reranker")
    parser.add_argument(
        "--metatool-sample",
        type=int,
        default=0,
        help="measure only the first N MetaTool test queries (default 0: the whole test half)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=30)
    parser.add_argument(
        "--no-flat", action="store_true", help="skip the flat baselines (quick iteration)"
    )
    args = parser.parse_args(argv)
    limit_threads()
    cache = CachedEmbedder(
        SentenceTransformerEmbedder(), default_cache_dir() / "embeddings.sqlite", chunk=256
    )
    started = time.perf_counter()
    tb_skills, tb_queries = load_toolbench(args.data)
    tb_train, tb_test = split(tb_queries, args.seed)
    mt_skills, mt_test, mt_train, mt_multi = load_metatool(
        args.data, args.metatool_sample, args.seed
    )
    print(f"ToolBench: {len(tb_skills)} skills, {len(tb_queries)} queries", file=sys.stderr)
    tb_index = SkillIndex.build(tb_skills, cache)
    mt_index = SkillIndex.build(mt_skills, cache)
    index_s = time.perf_counter() - started
    print(f"indexed in {index_s:.0f}s", file=sys.stderr)

    def lists(index: SkillIndex, queries: list[Any]) -> list[Any]:
        return training_lists(index, [(t, set(g)) for _, t, g in queries], k=args.k)

    tb_lists, mt_lists = lists(tb_index, tb_train), lists(mt_index, mt_train)
    only_tb = fit_feature_reranker(tb_lists, trained_on="ToolBench train half")
    only_mt = fit_feature_reranker(mt_lists, trained_on="MetaTool train half")
    if args.retrain:
        # Each dataset gets half the say, so the 10,307 MetaTool queries do not drown ToolBench.
        balance = [0.5 / len(tb_lists)] * len(tb_lists) + [0.5 / len(mt_lists)] * len(mt_lists)
        both = fit_feature_reranker(
            tb_lists + mt_lists,
            list_weights=balance,
            version="2",
            trained_on=(
                f"ToolBench train half ({len(tb_lists)} lists) + MetaTool train half "
                f"({len(mt_lists)} lists), each dataset weighted equally, seed {args.seed}, "
                f"k={args.k}"
            ),
        )
        save_weights(both, _default_weights_path())
        print(f"wrote {_default_weights_path()}", file=sys.stderr)

    def strat(weights: Any) -> RetrieveRerank:
        return RetrieveRerank(k=args.k, embedder=cache, reranker=FeatureReranker(weights))

    shipped = RetrieveRerank(k=args.k, embedder=cache)
    tb = evaluate(
        "ToolBench",
        tb_skills,
        tb_test,
        tb_index,
        None if args.no_flat else Flat(tb_skills, cache),
        {"pipeline": shipped, "pipeline (cross-data)": strat(only_mt)},
    )
    mt = evaluate(
        "MetaTool",
        mt_skills,
        mt_test,
        mt_index,
        None if args.no_flat else Flat(mt_skills, cache),
        {"pipeline": shipped, "pipeline (cross-data)": strat(only_tb)},
    )
    multi = set_recall(mt_index, shipped, mt_multi)
    write_report(
        args,
        tb,
        mt,
        multi,
        len(tb_test),
        len(mt_test),
        len(mt_multi),
        time.perf_counter() - started,
        index_s,
    )


def write_report(  # noqa: PLR0917 - a script's helper
    args: Any,
    tb: dict[str, dict[str, float]],
    mt: dict[str, dict[str, float]],
    multi: dict[str, float],
    n_tb: int,
    n_mt: int,
    n_multi: int,
    seconds: float,
    index_s: float,
) -> None:
    methods = list(tb)
    lines = [
        "# Skills retrieval quality (`benchmarks/skills_quality.py`)",
        "",
        f"Test halves only (seed {args.seed}): ToolBench {n_tb} queries over 2,479 APIs; "
        f"MetaTool {n_mt:,} single-tool queries over 199 tools"
        f"{' (whole test half)' if not args.metatool_sample else ' (first of the test half)'}; "
        f"MetaTool multi-tool "
        f"{n_multi} queries. Embedder: bundled all-MiniLM-L6-v2. k={args.k}. "
        f"Run time {seconds:.0f}s, {index_s:.0f}s of it loading and indexing (embeddings are "
        "cached under ~/.cache/agentroute/: the first run embeds everything, ~40 minutes here).",
        "",
        "The reranker's features and regularisation were chosen on the train halves only "
        "(five-fold cross-validation, and fitting on one dataset's train half and scoring the "
        "other's); `pipeline` is fitted on both train halves with each dataset weighted "
        "equally, `pipeline (cross-data)` on the other dataset's train half only.",
        "",
        "| method | TB R@5 | TB nDCG@10 | TB Hit@1 | TB MRR@10 | MT Hit@1 | MT R@5 | "
        "MT MRR@10 | p50 ms TB / MT |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        t, s = tb[m], mt[m]
        lat = f"{t['p50_ms']:.1f} / {s['p50_ms']:.1f}" if "p50_ms" in t else ""
        lines.append(
            f"| {m} | {t['recall@5']:.3f} | {t['ndcg@10']:.3f} | {t['hit@1']:.3f} | "
            f"{t['mrr@10']:.3f} | {s['hit@1']:.3f} | {s['recall@5']:.3f} | "
            f"{s['mrr@10']:.3f} | {lat} |"
        )
    lines += [
        "",
        "MetaTool multi-tool set recall@5 (share of gold tools in the top 5) and full coverage "
        "(all gold tools in the top 5):",
        "",
        "| method | set recall@5 | full coverage@5 |",
        "|---|---|---|",
    ]
    for m in ("BM25", "dense", "fusion", "pipeline"):
        lines.append(f"| {m} | {multi[m]:.3f} | {multi[m + ':full']:.3f} |")
    if "RRF (flat)" not in tb:
        text = "\n".join(lines)
        print(text)
        return
    base_tb = tb["RRF (flat)"]["recall@5"]
    base_mt = mt["MiniLM (flat)"]["hit@1"]
    lines += [
        "",
        f"Pipeline vs the best simple baseline: ToolBench R@5 "
        f"{tb['pipeline']['recall@5'] / base_tb:.2f}× RRF (flat); MetaTool Hit@1 "
        f"{mt['pipeline']['hit@1'] / base_mt:.2f}× MiniLM (flat).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
