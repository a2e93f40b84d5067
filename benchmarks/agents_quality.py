"""Agent-slot routing quality on CLINC150: description vs kNN vs linear, 10 and 150 agents.

Data: CLINC150 (Larson et al., 2019; CC BY 3.0), `data/data_full.json` and `data/domains.json`
from github.com/clinc/oos-eval. Pass the folder holding `clinc150/` (default `../shared/data`).

Setups: the 150 intents as 150 agents, and the 10 domains as 10 agents (each domain agent owns
its 15 intents' examples). Agents' descriptions are their humanised names (the description
router's only input); the example routers train on `train` (100 requests per intent). The abstain
threshold of every router is chosen on `val` + `oos_val` only (`choose_threshold`, out-of-scope
recall lower bound >= 0.80 at 90% confidence); `test` + `oos_test` are scored once.

Latency: median per decision through `route()` on 100 test requests (1 torch thread) with a
memory-only embedding cache (every request is embedded), against the bare embedding in the same run.

With `--model` the reasoning router also runs on `--sample` requests when the provider's
API key is set; without a key the script says so and reports no number for it.

    python benchmarks/agents_quality.py ../shared/data [--model openai/gpt-4o-mini]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from agentroute.models import missing_api_key
from agentroute.registry import ModelSpec, Registry
from agentroute.routing._agent_eval import AgentRecord, build_registry, routing_metrics
from agentroute.routing._agent_scoring import choose_threshold, softmax
from agentroute.routing._description import DescriptionRouter
from agentroute.routing._example import ExampleRouter
from agentroute.routing._protocol import RoutingContext
from agentroute.routing.embeddings import (
    CachedEmbedder,
    SentenceTransformerEmbedder,
    default_cache_dir,
    limit_threads,
)

RESULTS = Path(__file__).resolve().parent / "results"


def _human(name: str) -> str:
    return name.replace("_", " ")


def load(data: Path) -> dict[str, Any]:
    """CLINC150 splits and domains."""
    root = data / "clinc150"
    full = json.loads((root / "data_full.json").read_text())
    domains = json.loads((root / "domains.json").read_text())
    return {"full": full, "domains": domains}


def setups(d: dict[str, Any]) -> dict[str, tuple[list[AgentRecord], dict[str, str]]]:
    """Agents per setup, and the intent → agent map."""
    full, domains = d["full"], d["domains"]
    train: dict[str, list[str]] = {}
    for text, intent in full["train"]:
        train.setdefault(intent, []).append(text)
    intents = sorted(train)
    per_intent = [AgentRecord(i, _human(i), tuple(train[i])) for i in intents]
    dom_of = {i: dom for dom, its in domains.items() for i in its}
    per_domain = [
        AgentRecord(
            dom,
            f"{_human(dom)}: " + ", ".join(_human(i) for i in its),
            tuple(t for i in its for t in train[i]),
        )
        for dom, its in sorted(domains.items())
    ]
    return {
        "150 intents": (per_intent, {i: i for i in intents}),
        "10 domains": (per_domain, dom_of),
    }


def score(
    agents: tuple[str, ...] | list[str],
    probs: np.ndarray[Any, Any],
    conf: np.ndarray[Any, Any],
    gold: list[str],
    *,
    threshold: float,
    n_oos: int,
) -> dict[str, float]:
    """Metrics on test + oos_test (the last `n_oos` rows) at `threshold`."""
    top = [agents[i] for i in probs.argmax(axis=1)]
    n_in = len(gold)
    acc = float(np.mean([top[i] == gold[i] for i in range(n_in)]))
    chosen = [[top[i]] if conf[i] >= threshold else [] for i in range(len(top))]
    golds = [[g] for g in gold] + [[] for _ in range(n_oos)]
    m = routing_metrics(golds, chosen)
    return {
        "accuracy_no_abstain": acc,
        "in_scope_accuracy": m.in_scope_accuracy,
        "oos_recall": m.oos_recall,
        "oos_precision": m.oos_precision,
        "f1": m.f1,
        "threshold": threshold,
    }


def latency(router: Any, registry: Registry, texts: list[str], threads: int) -> tuple[float, float]:
    """Median ms per `route()` decision, and per bare query embedding, uncached."""
    fresh = SentenceTransformerEmbedder(threads=threads)
    if isinstance(router, ExampleRouter | DescriptionRouter):
        router._embedder = CachedEmbedder(fresh)  # memory-only: every request is embedded
    candidates = tuple(registry.agents)
    route_ms, embed_ms = [], []

    async def go() -> None:
        for i, text in enumerate(texts):
            ctx = RoutingContext(
                run_id=f"b{i}",
                step=0,
                slot="agent",
                task=text,
                registry=registry,
                candidates=candidates,
            )
            t = time.perf_counter()
            await router.route(ctx)
            route_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            fresh.embed([text + " "])
            embed_ms.append((time.perf_counter() - t) * 1000)

    asyncio.run(go())
    return statistics.median(route_ms[5:]), statistics.median(embed_ms[5:])


def main() -> None:
    """Run every router on both setups; print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", nargs="?", default="../shared/data", type=Path)
    parser.add_argument("--model", help="LiteLLM model id for the reasoning router")
    parser.add_argument("--sample", type=int, default=200, help="requests for the LLM router")
    parser.add_argument("--latency-n", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads")
    args = parser.parse_args()
    threads = limit_threads(args.threads)
    d = load(args.data)
    full = d["full"]
    embedder = CachedEmbedder(
        SentenceTransformerEmbedder(threads=threads), default_cache_dir() / "embeddings.sqlite"
    )
    val_texts = [t for t, _ in full["val"]] + [t for t, _ in full["oos_val"]]
    test_texts = [t for t, _ in full["test"]] + [t for t, _ in full["oos_test"]]
    n_oos_val, n_oos_test = len(full["oos_val"]), len(full["oos_test"])
    rows: list[dict[str, Any]] = []
    rng = random.Random(0)
    lat_texts = rng.sample([t for t, _ in full["test"]], args.latency_n)
    for setup, (records, to_agent) in setups(d).items():
        registry, _ = build_registry(records)
        val_gold = [to_agent[i] for _, i in full["val"]]
        test_gold = [to_agent[i] for _, i in full["test"]]
        routers: dict[str, Any] = {
            "description": DescriptionRouter(embedder=embedder),
            "kNN (k=10)": ExampleRouter(mode="knn", k=10, threshold=None, embedder=embedder),
            "linear (default)": ExampleRouter(threshold=None, embedder=embedder),
        }
        for label, router in routers.items():
            started = time.perf_counter()
            if isinstance(router, DescriptionRouter):
                golds = [[g] for g in val_gold] + [[] for _ in range(n_oos_val)]
                router.calibrate(registry, val_texts, golds)
                names, sims = router.similarities(registry, val_texts)
                pv = softmax(sims, router.temperature)
                cv = pv.max(axis=1)
                _, sims_t = router.similarities(registry, test_texts)
                pt = softmax(sims_t, router.temperature)
                ct = pt.max(axis=1)
                agents: Any = names
            else:
                agents, pv, cv = router.predict_proba(registry, val_texts)
                _, pt, ct = router.predict_proba(registry, test_texts)
            fit_s = time.perf_counter() - started
            n_in_val = len(val_gold)
            top_v = [agents[i] for i in pv[:n_in_val].argmax(axis=1)]
            choice = choose_threshold(
                cv[:n_in_val],
                [top_v[i] == val_gold[i] for i in range(n_in_val)],
                cv[n_in_val:],
            )
            res = score(agents, pt, ct, test_gold, threshold=choice.threshold, n_oos=n_oos_test)
            if isinstance(router, ExampleRouter):
                router._calibrated = choice
            else:
                router.threshold = choice.threshold
            route_ms, embed_ms = latency(router, registry, lat_texts, threads)
            row = {
                "setup": setup,
                "router": label,
                **{k: round(v, 4) for k, v in res.items()},
                "val_oos_recall": round(choice.oos_recall or 0.0, 4),
                "p50_ms": round(route_ms, 2),
                "embed_p50_ms": round(embed_ms, 2),
                "ratio_vs_embed": round(route_ms / embed_ms, 2),
                "fit_s": round(fit_s, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    reasoning_note = "not run (no --model given)"
    if args.model:
        spec = ModelSpec(name="router", model=args.model)
        env = missing_api_key(spec)
        if env is not None:
            reasoning_note = (
                f"not run: no API key for {args.model} ({env} is not set); no number is reported"
            )
        else:  # pragma: no cover - needs a key
            reasoning_note = _run_reasoning(args, d)
    print(f"reasoning router: {reasoning_note}")
    lines = [
        "# Agent routing quality on CLINC150",
        "",
        f"Generated by `benchmarks/agents_quality.py` (MiniLM embeddings, {threads} thread(s)). "
        "Accuracy without abstaining on `test`; in-scope accuracy and out-of-scope recall on "
        "`test` + `oos_test` at the threshold chosen on `val` + `oos_val` (OOS recall lower "
        "bound >= 0.80 at 90% confidence). Latency: median ms per `route()` decision, uncached "
        "embedding, vs. the bare query embedding in the same run.",
        "",
        "| setup | router | accuracy | in-scope acc @thr | OOS recall | OOS precision | "
        "p50 ms | embed ms | ratio | fit s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['setup']} | {r['router']} | {r['accuracy_no_abstain']:.4f} | "
            f"{r['in_scope_accuracy']:.4f} | {r['oos_recall']:.3f} | {r['oos_precision']:.3f} | "
            f"{r['p50_ms']:.1f} | {r['embed_p50_ms']:.1f} | {r['ratio_vs_embed']:.2f} | "
            f"{r['fit_s']:.0f} |"
        )
    lines += [
        "",
        f"Reasoning router (LLM): {reasoning_note}.",
        "",
        "Published 150-way CLINC150 accuracy (TCAndon-Router paper): TCAndon-Router 4B 91.25, "
        "GPT-5.1 93.84, Claude Sonnet 4.5 94.21.",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "agents_quality.md").write_text("\n".join(lines))
    (RESULTS / "agents_quality.json").write_text(json.dumps(rows, indent=1))
    print("\n".join(lines))


def _run_reasoning(args: argparse.Namespace, d: dict[str, Any]) -> str:  # pragma: no cover
    """Run the reasoning router on a sample of the 150-intent setup (needs an API key)."""
    from agentroute.cli._eval_agents import llm_complete
    from agentroute.routing._agent_eval import QueryRecord, evaluate_strategy
    from agentroute.routing._reasoning import ReasoningRouter

    records, to_agent = setups(d)["150 intents"]
    registry, names = build_registry(records)
    full = d["full"]
    rng = random.Random(1)
    pool = [QueryRecord(t, (to_agent[i],)) for t, i in full["test"]]
    pool += [QueryRecord(t, ()) for t, _ in full["oos_test"]]
    sample = rng.sample(pool, min(args.sample, len(pool)))
    complete, spent = llm_complete(args.model)
    router = ReasoningRouter(model=None, max_agents=1)
    metrics, _ = asyncio.run(
        evaluate_strategy(router, registry, sample, names, complete=complete, cost=spent)
    )
    return (
        f"{args.model} on {len(sample)} sampled requests: accuracy {metrics.accuracy:.4f}, "
        f"OOS recall {metrics.oos_recall:.3f}, p50 {metrics.p50_ms:.0f} ms, "
        f"cost ${metrics.cost_usd or 0:.4f}"
    )


if __name__ == "__main__":
    sys.exit(main())
