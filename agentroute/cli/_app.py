"""The Typer application: the command tree, `--version`, logging, and the one error boundary."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import structlog
import typer
from typer.core import TyperGroup

from agentroute.cli._common import fail
from agentroute.cli._demo_cmd import demo
from agentroute.cli._eval import eval_app
from agentroute.cli._pheromones import pheromones_app
from agentroute.cli._runs import runs_app
from agentroute.errors import AgentRouteError

__all__ = ["app", "main"]


class _Group(TyperGroup):
    """The root command group: every agentroute error surfaces here, as one red line."""

    # `Any`: the context class is Typer's vendored click, which has no public name.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except AgentRouteError as exc:
            fail(str(exc))


app = typer.Typer(
    name="agentroute",
    cls=_Group,
    help="Multi-agent routing with an append-only SQL trace: run the demo, then inspect, "
    "verify and replay what was decided.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold prompts and keys
)
app.command("demo")(demo)
app.add_typer(runs_app)
app.add_typer(eval_app)
app.add_typer(pheromones_app)


def _version(value: bool) -> None:
    if value:
        from agentroute import __version__

        typer.echo(f"agentroute {__version__}")
        raise typer.Exit


@contextmanager
def _logs_to_stderr(level: int) -> Iterator[None]:
    """Send structlog output to standard error at `level` for the command, then restore.

    The library never configures logging; the command line is an application, and its standard
    output is for tables and JSON.
    """
    configured, previous = structlog.is_configured(), structlog.get_config()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        if configured:
            structlog.configure(**previous)
        else:
            structlog.reset_defaults()


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log debug details to standard error.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    del version
    ctx.with_resource(_logs_to_stderr(logging.DEBUG if verbose else logging.ERROR))


def main() -> None:
    """Entry point of the `agentroute` console script."""
    app()
