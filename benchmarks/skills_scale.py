"""Skills index at scale: a synthetic 80,000-skill pool, build time, RAM, query latency.

The pool is generated from templates and vocabularies with a fixed seed: each skill has a
name, a one-sentence description and a body of a few hundred words (sections "When to use",
"Steps", "Parameters", "Notes") drawn from its domain's vocabulary plus shared filler, so
lexical statistics resemble real skill cards (many shared words, a few distinctive ones).

Measured in one process, in order:

- build: static-embedder vectors (the distilled model, see `StaticEmbedder`) + BM25, seconds;
- RAM: peak RSS of the process (`resource.getrusage`) and the index's own arrays;
- latency over 300 queries (one at a time): BM25 alone (the baseline, `bm25s` scores + top-k),
  stage 1 (BM25 + dense + fusion, no reranker), and stage 1 + the offline `FeatureReranker`
  (`RetrieveRerank.rank`), as p50/p95 and as ratios to the baseline; plus a batch of 300
  queries end to end (queries per second);
- a sanity Recall@10 on generated queries (not a quality claim: see skills_quality.py).

Usage:
    python benchmarks/skills_scale.py [--skills 80000] [--queries 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np

from agentroute.routing.embeddings import limit_threads
from agentroute.routing.skills import (
    RetrieveRerank,
    SkillIndex,
    SkillRecord,
    StaticEmbedder,
    TextCaps,
)

RESULTS = Path(__file__).parent / "results" / "skills_scale.md"

DOMAINS = {
    "billing": "invoice refund charge payment card subscription receipt tax credit plan",
    "shipping": "parcel carrier tracking delivery courier warehouse label customs address",
    "security": "password login token phishing breach authenticator session device lockout",
    "data": "csv table column schema query join aggregate pipeline warehouse export",
    "devops": "deploy container cluster rollback pipeline artifact secret monitor alert",
    "docs": "markdown pdf heading citation summary outline translation glossary draft",
    "finance": "ledger forecast budget expense revenue audit currency portfolio risk",
    "health": "appointment symptom prescription clinic insurance referral vaccine record",
    "travel": "flight hotel itinerary visa booking baggage airport layover fare",
    "media": "video audio podcast thumbnail caption playlist stream transcode clip",
    "legal": "contract clause liability consent privacy compliance policy dispute",
    "hr": "onboarding payroll leave interview candidate review benefit contract",
    "weather": "forecast rain temperature wind humidity storm radar alert climate",
    "sports": "match score league player fixture standings transfer injury ranking",
    "food": "recipe ingredient allergen menu calorie grocery delivery diet kitchen",
    "code": "function test refactor lint dependency compile debug repository branch",
}
VERBS = [
    "create",
    "update",
    "delete",
    "check",
    "validate",
    "export",
    "import",
    "reconcile",
    "summarize",
    "schedule",
]
VERBS += [
    "cancel",
    "resolve",
    "diagnose",
    "estimate",
    "convert",
    "translate",
    "monitor",
    "notify",
    "search",
    "merge",
]
FILLER = [
    "the",
    "a",
    "user",
    "request",
    "step",
    "result",
    "value",
    "record",
    "system",
    "service",
    "when",
    "then",
    "with",
    "each",
    "first",
    "next",
    "after",
    "before",
    "always",
    "never",
    "should",
    "must",
    "can",
    "may",
    "ensure",
    "confirm",
    "verify",
    "report",
    "status",
    "error",
    "retry",
    "limit",
    "field",
    "option",
    "default",
    "required",
    "optional",
    "response",
]
TEMPLATES = (
    "{verb} the {a} before you {verb2} any {b}.",
    "If the {a} is missing, ask the user for the {b} and {verb} it.",
    "Always {verb} {a} and {b} against the {c} record.",
    "Use the {a} endpoint to {verb} the {b}; it returns the {c}.",
    "Never {verb} a {a} without a confirmed {b}.",
)


def make_pool(n: int, seed: int) -> list[SkillRecord]:
    rng = random.Random(seed)
    domains = list(DOMAINS)
    vocab = {d: DOMAINS[d].split() for d in domains}
    skills = []
    for i in range(n):
        d = domains[i % len(domains)]
        words = vocab[d]
        verb, a, b = rng.choice(VERBS), rng.choice(words), rng.choice(words)
        qualifier = f"{rng.choice(words)}{i % 97}"
        name = f"{verb}-{a}-{b}-{qualifier}"
        description = f"{verb.capitalize()} a {a} and its {b} for {qualifier} ({d})."
        lines = [f"# {name}", "## When to use", description, "## Steps"]
        for step in range(rng.randint(8, 14)):
            t = rng.choice(TEMPLATES)
            sentence = t.format(
                verb=rng.choice(VERBS),
                verb2=rng.choice(VERBS),
                a=rng.choice(words),
                b=rng.choice(words),
                c=rng.choice(FILLER),
            )
            filler = " ".join(rng.choices(FILLER, k=rng.randint(6, 14)))
            lines.append(f"{step + 1}. {sentence} {filler}.")
        lines.append("## Parameters")
        for p in rng.sample(words, 4):
            lines.append(f"- `{p}_{rng.choice(FILLER)}` ({rng.choice(['string', 'int'])}): {p}.")
        lines.append("## Notes")
        lines.append(" ".join(rng.choices(FILLER + words, k=60)))
        skills.append(
            SkillRecord(
                id=f"skill-{i:05d}", name=name, description=description, body="\n".join(lines)
            )
        )
    return skills


def make_queries(pool: list[SkillRecord], n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed + 1)
    out = []
    for s in rng.sample(pool, n):
        verb, a, b, qualifier = s.name.split("-")
        out.append((f"I need to {verb} the {a} with its {b} for {qualifier}, can you help?", s.id))
    return out


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skills", type=int, default=80_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    limit_threads()
    embedder = StaticEmbedder()
    embedder.embed(["warm up"])
    rss_start = rss_mb()
    started = time.perf_counter()
    pool = make_pool(args.skills, args.seed)
    gen_s = time.perf_counter() - started
    words = np.mean([len(s.body.split()) for s in pool[:2000]])
    print(f"generated {len(pool)} skills ({words:.0f} body words) in {gen_s:.0f}s", file=sys.stderr)
    caps = TextCaps(single_vector=True)
    started = time.perf_counter()
    index = SkillIndex.build(pool, embedder, caps)
    build_s = time.perf_counter() - started
    queries = make_queries(pool, args.queries, args.seed)
    del pool
    gc.collect()
    print(f"built in {build_s:.0f}s", file=sys.stderr)

    bm25_ms, stage1_ms, full_ms, hits = [], [], [], 0
    stage1 = RetrieveRerank(k=30, embedder=embedder, reranker="none", caps=caps, index=index)
    full = RetrieveRerank(k=30, embedder=embedder, reranker="feature", caps=caps, index=index)
    loop = asyncio.new_event_loop()
    for text, gold in queries:
        t0 = time.perf_counter()
        scores = index.bm25_scores(text)
        np.argpartition(-scores, 30)[:30]
        t1 = time.perf_counter()
        loop.run_until_complete(stage1.rank(text, index))
        t2 = time.perf_counter()
        ranked = loop.run_until_complete(full.rank(text, index))
        t3 = time.perf_counter()
        bm25_ms.append((t1 - t0) * 1e3)
        stage1_ms.append((t2 - t1) * 1e3)
        full_ms.append((t3 - t2) * 1e3)
        hits += gold in ranked.ranking[:10]
    t0 = time.perf_counter()
    for text, _ in queries:
        loop.run_until_complete(full.rank(text, index))
    batch_s = time.perf_counter() - t0
    loop.close()
    base = float(np.median(bm25_ms))
    rows = [
        ("BM25 only (baseline)", bm25_ms),
        ("stage 1: BM25 + dense + RRF", stage1_ms),
        ("stage 1 + FeatureReranker", full_ms),
    ]
    lines = [
        "# Skills index at scale (`benchmarks/skills_scale.py`)",
        "",
        f"{len(index):,} synthetic skills (seed {args.seed}, ~{words:.0f} body words each), "
        f"embedder `{embedder.name}` (distilled static MiniLM, 256-d), one vector per skill "
        f"(`TextCaps(single_vector=True)`), k=30. Shared 2-core machine (other jobs running).",
        "",
        f"- build (embed + BM25): **{build_s:.0f} s** ({len(index) / build_s:,.0f} skills/s); "
        f"pool generation {gen_s:.0f} s, not included",
        f"- RAM: peak RSS **{rss_mb():,.0f} MB** (process, incl. the generated pool and Python); "
        f"{rss_start:,.0f} MB before building; index arrays {index.memory_bytes() / 2**20:,.0f} MB "
        f"(vectors {index.vectors.nbytes / 2**20:,.0f} MB)",
        f"- batch of {len(queries)} queries, retrieve + rerank: {batch_s:.2f} s "
        f"({len(queries) / batch_s:,.0f} queries/s)",
        f"- sanity Recall@10 on generated queries: {hits / len(queries):.3f}",
        "",
        "| one query | p50 ms | p95 ms | p50 vs baseline |",
        "|---|---|---|---|",
    ]
    for label, values in rows:
        lines.append(
            f"| {label} | {pct(values, 50):.2f} | {pct(values, 95):.2f} | "
            f"{pct(values, 50) / base:.1f}× |"
        )
    lines.append("")
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
