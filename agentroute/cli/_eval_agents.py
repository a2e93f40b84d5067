"""`agentroute eval agents`: measure an agent-slot strategy on labelled requests.

```text
agentroute eval agents --agents AGENTS.jsonl --queries QUERIES.jsonl
    [--strategy description|example|reasoning] [--model MODEL] [--val VAL.jsonl] [--json]
```

AGENTS lines: `{"name", "description", "examples"?: [...]}`. QUERIES lines:
`{"text", "gold": [agent names]}` (an empty list = out of scope).

How the abstain threshold is chosen (no test data is ever used):

- with `--val VAL.jsonl` (same format as QUERIES): on it, as the smallest threshold whose
  out-of-scope recall reaches 0.80 (90% lower bound), or the 5% quantile of correct in-scope
  confidences when VAL has no out-of-scope line;
- else, `example`: 3-fold cross-validation on the AGENTS examples (one 80/20 split above 3,000
  examples): the threshold keeps 95% of the held-out examples routed correctly;
- else, `description`: a fixed, documented default (no labelled data to choose from);
- `--threshold X` overrides all of these; `--threshold none` never abstains.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from agentroute.cli._common import echo_json, fail, stderr, stdout
from agentroute.errors import ConfigurationError

__all__ = ["DESCRIPTION_THRESHOLD", "llm_complete", "register"]

DESCRIPTION_THRESHOLD = 0.2
"""`description` without validation data: abstain below this top probability."""


class Strategy(StrEnum):
    """Strategies `eval agents` can measure."""

    description = "description"
    example = "example"
    reasoning = "reasoning"


def llm_complete(model: str) -> tuple[Callable[..., Any], Callable[[], float]]:
    """A `ctx.complete` for offline evaluation on a real model, and the spend so far.

    Raises:
        ConfigurationError: The model has no price or the provider's API key is not set.
    """
    from agentroute.models import (
        BudgetLedger,
        LiteLLMClient,
        Message,
        complete_once,
        missing_api_key,
        resolve_prices,
    )
    from agentroute.registry import ModelSpec

    spec = ModelSpec(name="router", model=model)
    env = missing_api_key(spec)
    if env is not None:
        msg = f"--model {model}: the API key is not set; export {env}=... and retry"
        raise ConfigurationError(msg)
    priced = resolve_prices(spec)
    client = LiteLLMClient()
    ledger = BudgetLedger()

    async def complete(prompt: Any, **kw: Any) -> str:
        kw.pop("model", None)
        messages = (
            prompt
            if isinstance(prompt, str)
            else tuple(Message.model_validate(dict(m)) for m in prompt)
        )
        return await complete_once(
            priced,
            messages,
            client=client,
            ledger=ledger,
            max_tokens=kw.get("max_tokens"),
            temperature=kw.get("temperature"),
        )

    return complete, lambda: ledger.spent_usd


def _threshold(value: str | None) -> float | str | None:
    if value is None:
        return "default"
    if value.lower() in ("none", "off", "never"):
        return None
    try:
        return float(value)
    except ValueError:
        fail(f"--threshold must be a number or 'none', got {value!r}")


def agents(  # noqa: PLR0917 - one option per flag, as Typer needs
    agents_file: Annotated[
        Path,
        typer.Option(
            "--agents",
            help='Agents, JSON lines: {"name","description","examples"?:[...]}.',
            dir_okay=False,
        ),
    ],
    queries_file: Annotated[
        Path,
        typer.Option(
            "--queries",
            help='Labelled requests, JSON lines: {"text","gold":[agents]} ([] = out of scope).',
            dir_okay=False,
        ),
    ],
    strategy: Annotated[
        Strategy | None,
        typer.Option(help="Default: example when AGENTS has examples, else description."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="LiteLLM model id for the reasoning strategy (needs its API key)."),
    ] = None,
    mode: Annotated[str, typer.Option(help="example strategy: linear, knn or ensemble.")] = (
        "linear"
    ),
    val_file: Annotated[
        Path | None,
        typer.Option("--val", help="Validation requests (QUERIES format) for the threshold."),
    ] = None,
    threshold: Annotated[
        str | None, typer.Option(help="Abstain threshold: a number, or 'none'.")
    ] = None,
    max_agents: Annotated[int, typer.Option(help="Most agents chosen per request.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Accuracy, set P/R/F1, out-of-scope precision/recall, latency (and cost) of a strategy."""
    from agentroute.routing._agent_eval import (
        build_registry,
        evaluate_strategy,
        read_agents,
        read_queries,
    )

    records = read_agents(agents_file)
    known = {r.name for r in records}
    queries = read_queries(queries_file, known)
    val = read_queries(val_file, known) if val_file is not None else None
    has_examples = any(r.examples for r in records)
    chosen = strategy or (Strategy.example if has_examples else Strategy.description)
    if chosen is Strategy.reasoning and not model:
        fail("--strategy reasoning needs --model (a LiteLLM model id, e.g. openai/gpt-4o-mini)")
    if chosen is Strategy.example and not has_examples:
        stderr().print(
            "warning: no agent has examples; the example router falls back to descriptions",
            markup=False,
        )
    if mode not in ("linear", "knn", "ensemble"):
        fail(f"--mode must be linear, knn or ensemble, got {mode!r}")
    thr = _threshold(threshold)
    registry, names = build_registry(records)
    router, note = _build(chosen, mode, thr, max_agents, has_examples)
    if val is not None and hasattr(router, "calibrate"):
        golds = [[names.get(g, g) for g in q.gold] for q in val]
        if thr == "default":
            choice = router.calibrate(registry, [q.text for q in val], golds)
            note = f"threshold {choice.threshold:.4f} chosen on --val ({choice.method})"
    if hasattr(router, "fit"):
        router.fit(registry)
        if note == "" and getattr(router, "fitted_threshold", None) is not None:
            info = router._fitted.threshold_info if router._fitted else {}
            note = f"threshold {router.fitted_threshold:.4f}: {info.get('method', '')}"
    complete = spent = None
    if chosen is Strategy.reasoning:
        assert model is not None
        complete, spent = llm_complete(model)
    metrics, _ = asyncio.run(
        evaluate_strategy(router, registry, queries, names, complete=complete, cost=spent)
    )
    result = metrics.as_dict()
    result.update(strategy=chosen.value, threshold_note=note)
    if as_json:
        echo_json(result)
        return
    out = stdout()
    out.print(f"strategy: {chosen.value}   queries: {metrics.queries}   {note}", markup=False)
    for key in (
        "accuracy",
        "in_scope_accuracy",
        "precision",
        "recall",
        "f1",
        "oos_precision",
        "oos_recall",
        "p50_ms",
        "p95_ms",
        "cost_usd",
    ):
        if key in result:
            out.print(f"{key:>18}  {result[key]}", markup=False)


def _build(
    chosen: Strategy,
    mode: str,
    thr: float | str | None,
    max_agents: int,
    has_examples: bool,
) -> tuple[Any, str]:
    from agentroute.routing._description import DescriptionRouter
    from agentroute.routing._example import ExampleRouter
    from agentroute.routing._reasoning import ReasoningRouter

    def description() -> tuple[DescriptionRouter, str]:
        value = DESCRIPTION_THRESHOLD if thr == "default" else thr
        note = (
            f"threshold {DESCRIPTION_THRESHOLD} (default without --val)"
            if thr == "default"
            else f"threshold {thr}"
        )
        assert value is None or isinstance(value, float)
        return DescriptionRouter(threshold=value, max_agents=max_agents), note

    def example() -> tuple[ExampleRouter, str]:
        value: Any = "auto" if thr == "default" else thr
        return ExampleRouter(mode=mode, threshold=value, max_agents=max_agents), (  # type: ignore[arg-type]
            "" if thr == "default" else f"threshold {thr}"
        )

    if chosen is Strategy.description:
        return description()
    if chosen is Strategy.example:
        return example()
    fallback = example()[0] if has_examples else description()[0]
    return ReasoningRouter(max_agents=max(max_agents, 1), fallback=fallback), "LLM decides oos"


def register(app: typer.Typer) -> None:
    """Add the `agents` command to `agentroute eval`."""
    app.command("agents")(agents)
