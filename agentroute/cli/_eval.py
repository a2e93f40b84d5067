"""`agentroute eval ...`: measure routing quality on your own data.

Each evaluation lives in its own module exposing `register(app: typer.Typer) -> None`; the
modules are listed here, so adding one never touches another's code.
"""

from __future__ import annotations

import importlib

import typer

__all__ = ["eval_app"]

eval_app = typer.Typer(
    name="eval",
    help="Measure a routing strategy on your own labelled data (JSON lines in, metrics out).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

# Module name → what it evaluates. A module that is missing is skipped (optional extras).
_MODULES = (
    "agentroute.cli._eval_skills",
    "agentroute.cli._eval_cheap_strong",
    "agentroute.cli._eval_agents",
    "agentroute.cli._eval_pool",
)

for _name in _MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        if _exc.name != _name:
            raise
        continue
    _module.register(eval_app)
