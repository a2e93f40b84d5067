"""Cheap/strong routing on RouteLLM's MMLU outcomes: random, kNN, logistic, ensembles, oracle.

Data: RouteLLM's MMLU evaluation responses (Apache-2.0), github.com/lm-sys/RouteLLM,
`routellm/evals/mmlu/responses/mmlu_<subject>.csv` (columns `prompt`, the cheap model
`mistralai/Mixtral-8x7B-Instruct-v0.1` correct?, the strong model `gpt-4-1106-preview` correct?)
and `contaminated_prompts.jsonl` (excluded). Put them under `<data>/routellm-mmlu/`.

Split: every non-contaminated prompt, shuffled with `--seed` (default 0), first half train, second
half test (the "MMLU dev split, 50/50, seed 0"). Scorers are fitted on train only (k, the kNN
weighting, the ensemble's weights — kNN vs logistic, and the lexical TF-IDF kNN member's share,
then shrunk halfway to equal shares — the logistic member's penalty, and whether the ensemble
stacks, by cross-validation inside train) and reported on test once.

    python benchmarks/cheap_strong.py [DATA_DIR] [--seed 0]

Prints a table and writes `benchmarks/results/cheap_strong.md` and `.json`. Embeddings (bundled
MiniLM) are cached under `~/.cache/agentroute/`, so reruns take seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from agentroute.routing._difficulty import (
    DifficultyScorer,
    EnsembleScorer,
    KnnScorer,
    LogisticScorer,
    OutcomeRow,
    default_embedder,
)
from agentroute.routing._difficulty_eval import cheap_strong_curve
from agentroute.routing._difficulty_report import cheap_strong_report, split_rows
from agentroute.routing.embeddings import limit_threads

CHEAP = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT = "ensemble kNN + logistic + lexical kNN (default)"
WITHOUT_LEXICAL = "ensemble kNN + logistic (no lexical member)"


def load_mmlu(data: Path) -> list[OutcomeRow]:
    """Every MMLU prompt with both outcomes, contaminated prompts excluded."""
    root = data / "routellm-mmlu"
    csv.field_size_limit(sys.maxsize)
    excluded: set[str] = set()
    with (root / "contaminated_prompts.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                item = json.loads(line)
                excluded.update(str(item.get(k, "")) for k in ("train_prompt", "eval_prompt"))
    rows: list[OutcomeRow] = []
    for path in sorted((root / "responses").glob("mmlu_*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            for i, rec in enumerate(csv.DictReader(fh)):
                if rec["prompt"] in excluded:
                    continue
                rows.append(
                    OutcomeRow(
                        id=f"{path.stem}:{i}",
                        text=rec["prompt"],
                        cheap=float(rec[CHEAP] in ("True", "true", "1", "1.0")),
                        strong=float(rec[STRONG] in ("True", "true", "1", "1.0")),
                    )
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default="../shared/data", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "cheap_strong.md")
    args = parser.parse_args(argv)
    limit_threads(1)
    rows = load_mmlu(args.data)
    train, test = split_rows(rows, args.seed)
    embedder = default_embedder()
    started = time.perf_counter()
    embedder.embed([r.text for r in rows])  # warm the cache once for every scorer
    embed_s = time.perf_counter() - started
    ensemble = EnsembleScorer(embedder, seed=args.seed)
    scorers: dict[str, DifficultyScorer] = {
        "kNN (k=50, uniform; reference)": KnnScorer(
            embedder, k=50, temperature=0.0, prior=0.0, center=False, multiscale=False
        ),
        "kNN (k, weighting by CV)": KnnScorer(embedder),
        "logistic (embedding + text features)": LogisticScorer(embedder),
        WITHOUT_LEXICAL: EnsembleScorer(embedder, seed=args.seed, lexical=False),
        DEFAULT: ensemble,
    }
    results: dict[str, dict[str, Any]] = {}
    for label, scorer in scorers.items():
        results[label] = cheap_strong_report(train, test, scorer, seed=args.seed)
        print(f"{label}: APGR {results[label]['apgr']}", file=sys.stderr)
    first = next(iter(results.values()))
    cheap = np.array([r.cheap for r in test], dtype=np.float64)
    strong = np.array([r.strong for r in test], dtype=np.float64)
    rng = np.random.default_rng(args.seed)
    random_curves = [cheap_strong_curve(rng.random(len(test)), cheap, strong) for _ in range(20)]
    oracle = cheap_strong_curve(strong - cheap, cheap, strong)

    def cpt_median(target: float) -> float:
        return statistics.median(c.cpt(target) or 1.0 for c in random_curves)

    table = [
        (
            "random (median of 20 seeds)",
            first["random_apgr"],
            cpt_median(0.5),
            cpt_median(0.8),
            None,
            None,
        ),
        *(
            (label, r["apgr"], r["cpt50"], r["cpt80"], r["fit_s"], r["score_ms_per_prompt"])
            for label, r in results.items()
        ),
        ("oracle (per-prompt)", oracle.apgr(), oracle.cpt(0.5), oracle.cpt(0.8), None, None),
    ]
    default = results[DEFAULT]
    oracle_apgr = oracle.apgr() or 0.0
    lines = [
        "# Cheap/strong routing on RouteLLM MMLU",
        "",
        f"Cheap `{CHEAP}`, strong `{STRONG}`. {len(rows)} prompts (contaminated excluded), "
        f"split 50/50 with seed {args.seed}: {len(train)} train, {len(test)} test. "
        f"Test accuracy: cheap {first['q_cheap']:.3f}, strong {first['q_strong']:.3f}. "
        "Embeddings: bundled all-MiniLM-L6-v2.",
        "",
        "| router | APGR | vs random | CPT(50%) | CPT(80%) | fit s | score ms/prompt |",
        "|---|---|---|---|---|---|---|",
    ]
    rand = first["random_apgr"] or 0.5
    for label, apgr, c50, c80, fit_s, ms in table:
        lines.append(
            f"| {label} | {_f(apgr)} | {_f((apgr or 0) / rand, 2)}x | {_f(c50)} | {_f(c80)} "
            f"| {_f(fit_s, 2)} | {_f(ms, 3)} |"
        )
    lines += [
        "",
        f"Default scorer (ensemble) APGR {_f(default['apgr'])}: "
        f"{_f((default['apgr'] or 0) - rand)} above random, "
        f"{_f(oracle_apgr - (default['apgr'] or 0))} below the per-prompt oracle "
        f"({_f(oracle_apgr)}; the oracle needs only {first['oracle_share']:.1%} strong calls "
        "to reach its best quality).",
        "Chosen by cross-validation on train: kNN "
        f"{results['kNN (k, weighting by CV)']['scorer']}, "
        f"ensemble kNN weight {default['scorer']['weight_chosen']:.3f}, lexical weight "
        f"{default['scorer']['lexical_weight_chosen']:.3f} (cross-validation chose "
        f"{_blend_cv(default['scorer']['blend_cv'])}, shrunk halfway to equal shares; lexical "
        f"k {default['scorer']['lexical']['k_chosen']}; logistic penalty per row "
        f"{default['scorer']['logistic']['l2_per_row']:.2f}); stacker "
        f"{'used' if default['scorer']['stack_chosen'] else 'not used'} (train-only "
        f"cross-validated APGR: stacker {ensemble.cv_.get('stack', '–')}, best weighted "
        f"mean {_best_blend(ensemble.cv_)}).",
        f"Embedding all prompts: {embed_s:.1f} s (cache hits make reruns fast).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    payload = {
        "seed": args.seed,
        "train": len(train),
        "test": len(test),
        "results": {
            k: {kk: vv for kk, vv in v.items() if kk != "curve"} for k, v in results.items()
        },
        "oracle": {"apgr": oracle.apgr(), "cpt50": oracle.cpt(0.5), "cpt80": oracle.cpt(0.8)},
    }
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


def _blend_cv(chosen: dict[str, float]) -> str:
    if not chosen:
        return "nothing"
    return f"kNN weight {chosen['weight']}, lexical weight {chosen['lexical_weight']}"


def _best_blend(cv: dict[str, float]) -> str:
    weights = [v for k, v in cv.items() if k.startswith("weight=")]
    return f"{max(weights):.4f}" if weights else "–"


def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    raise SystemExit(main())
