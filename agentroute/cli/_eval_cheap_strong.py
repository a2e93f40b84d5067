"""`agentroute eval cheap-strong`: how well a difficulty scorer splits cheap from strong calls."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from agentroute.cli._common import echo_json, stdout
from agentroute.errors import ConfigurationError
from agentroute.routing._difficulty import build_scorer, load_outcomes, scorer_names
from agentroute.routing._difficulty_report import cheap_strong_report, split_rows

__all__ = ["register"]


def cheap_strong(
    *,
    outcomes: Annotated[
        Path,
        typer.Option(
            "--outcomes",
            help='Labelled prompts, JSON lines: {"id","text","cheap":0..1,"strong":0..1,'
            '"cheap_cost"?,"strong_cost"?}. Without --train: split 50/50 with --seed.',
            dir_okay=False,
        ),
    ],
    train: Annotated[
        Path | None,
        typer.Option(
            "--train",
            help="Training prompts (same format); --outcomes is then the test set.",
            dir_okay=False,
        ),
    ] = None,
    scorer: Annotated[
        str, typer.Option(help=f"Difficulty scorer: {', '.join(scorer_names())}.")
    ] = "ensemble",
    seed: Annotated[int, typer.Option(help="Split and random-baseline seed.")] = 0,
    embedder: Annotated[
        str, typer.Option(help="Embedder: minilm (bundled, offline) or hashing (no model).")
    ] = "minilm",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Fit a difficulty scorer and trace its strong-call share / quality / cost curve.

    Prints APGR (area under the performance-gap-recovered curve; random ≈ 0.5), CPT(50%) and
    CPT(80%) (strong-call share needed to recover half / 80% of the gap), the random and oracle
    references and, when costs are given, the cost to reach 95% of all-strong quality.
    """
    test_rows = load_outcomes(outcomes)
    if train is not None:
        train_rows = load_outcomes(train)
    else:
        if len(test_rows) < 2:
            msg = f"{outcomes}: need at least 2 lines to split into train and test"
            raise ConfigurationError(msg)
        train_rows, test_rows = split_rows(test_rows, seed)
    built = build_scorer(scorer, embedder=embedder)
    report = cheap_strong_report(train_rows, test_rows, built, seed=seed)
    keys = ("apgr", "cpt50", "cpt80", "random_apgr", "oracle_apgr", "oracle_share")
    if as_json:
        payload: dict[str, Any] = {k: report[k] for k in keys}
        payload["curve"] = report["curve"]
        if "cost_to_95pct_strong" in report:
            payload["cost_to_95pct_strong"] = report["cost_to_95pct_strong"]
        payload.update(
            q_cheap=report["q_cheap"],
            q_strong=report["q_strong"],
            train_size=report["train_size"],
            test_size=report["test_size"],
            scorer=report["scorer"],
        )
        echo_json(payload)  # NaN and infinities become null there
        return
    console = stdout()
    console.print(
        f"cheap-strong: scorer {scorer}, train {report['train_size']}, test "
        f"{report['test_size']} (quality: cheap {report['q_cheap']:.4f}, strong "
        f"{report['q_strong']:.4f})",
        markup=False,
    )
    console.print("  share  quality  cost", markup=False)
    for point in report["curve"][::10]:
        console.print(
            f"  {point['share']:.2f}   {point['quality']:.4f}   {point['cost']:.6g}", markup=False
        )
    for label, key in (
        ("APGR", "apgr"),
        ("CPT(50%)", "cpt50"),
        ("CPT(80%)", "cpt80"),
        ("random APGR", "random_apgr"),
        ("oracle APGR", "oracle_apgr"),
        ("oracle strong share", "oracle_share"),
        ("cost to 95% of strong", "cost_to_95pct_strong"),
    ):
        if key in report:
            value = report[key]
            console.print(f"{label}: {'n/a' if value is None else f'{value:.4f}'}", markup=False)


def register(app: typer.Typer) -> None:
    """Add the `cheap-strong` command to `agentroute eval`."""
    app.command("cheap-strong")(cheap_strong)
