"""The `agentroute` command: run the demo; list, show, verify, replay, export and rate runs.

`main` is the console-script entry point; `app` is the Typer application (for embedding, or for
`typer.testing.CliRunner`).
"""

from agentroute.cli._app import app, main

__all__ = ["app", "main"]
