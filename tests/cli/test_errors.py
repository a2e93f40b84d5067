"""Errors end the command with exit status 1 and one red line on stderr, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agentroute._demo import build_router
from agentroute.stores import open_store
from tests.cli.conftest import Invoke


def test_unknown_run_id_is_one_line_with_a_hint(invoke: Invoke, db_url: str) -> None:
    """An unknown run id exits 1 and points at `agentroute runs list` with the same --db."""
    open_store(db_url).close()  # an empty store: a missing file is another error
    for command in (["show"], ["replay"], ["verify"], ["export"]):
        result = invoke("runs", *command, "nosuchrun", "--db", db_url)
        assert result.exit_code == 1, command
        assert result.stderr == (
            f"error: no run 'nosuchrun' in {db_url} "
            f"(list ids with `agentroute runs list --db {db_url}`)\n"
        )
        assert "Traceback" not in result.output


@pytest.fixture
def twin_runs(db_url: str) -> tuple[str, str]:
    """Two runs whose ids share the prefix `abcdef0`."""
    router = build_router(store=db_url)
    try:
        first = router.run_sync("Where is my refund?", run_id="abcdef01" + "0" * 24).run_id
        second = router.run_sync("Where is my parcel?", run_id="abcdef02" + "0" * 24).run_id
    finally:
        router.close()
    return first, second


def test_run_id_prefixes(invoke: Invoke, db_url: str, twin_runs: tuple[str, str]) -> None:
    """A unique prefix of 6+ characters names a run.

    An ambiguous prefix lists the candidates; a shorter one is refused.
    """
    first, second = twin_runs
    result = invoke("runs", "show", "abcdef01", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert first in result.stdout

    result = invoke("runs", "show", "abcdef", "--db", db_url)
    assert result.exit_code == 1
    assert "ambiguous" in result.stderr
    assert first in result.stderr
    assert second in result.stderr

    result = invoke("runs", "show", "abcde", "--db", db_url)
    assert result.exit_code == 1
    assert "at least 6 characters" in result.stderr


@pytest.mark.parametrize("command", [["runs", "list"], ["demo"]])
def test_unusable_database_path(invoke: Invoke, command: list[str]) -> None:
    """A store in a directory that cannot exist is a clear one-line error with exit 1."""
    result = invoke(*command, "--db", "sqlite:////proc/nope/x.db")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "/proc/nope" in result.stderr
    assert "Traceback" not in result.output


def test_unsupported_store_url(invoke: Invoke) -> None:
    """A URL of no supported scheme says which schemes work."""
    result = invoke("runs", "list", "--db", "mysql://localhost/x")
    assert result.exit_code == 1
    assert "sqlite:///path.db" in result.stderr


def test_db_defaults_to_the_environment(db_url: str) -> None:
    """Without --db, AGENTROUTE_DB names the store."""
    from typer.testing import CliRunner

    from agentroute.cli import app

    open_store(db_url).close()
    result = CliRunner(env={"AGENTROUTE_DB": db_url, "COLUMNS": "250"}).invoke(
        app, ["runs", "list"]
    )
    assert result.exit_code == 0, result.output
    assert db_url in result.stdout


def test_importing_the_cli_loads_no_engine() -> None:
    """`agentroute --help` stays fast: importing the CLI loads no engine.

    Neither LiteLLM, LangGraph nor SQLAlchemy (checked in a fresh interpreter).
    """
    code = (
        "import sys, agentroute.cli; "
        "heavy = [m for m in ('litellm', 'langgraph', 'sqlalchemy', 'sqlmodel') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_eval_agents_refuses_a_gold_label_that_names_no_agent(
    invoke: Invoke, tmp_path: Path
) -> None:
    """`eval agents` stops at a gold typo (one line, the file and line) before any work.

    It once scored such queries as misrouted, reporting accuracy 0 without a word.
    """
    agents = tmp_path / "agents.jsonl"
    agents.write_text('{"name": "billing", "description": "Invoices and refunds."}\n')
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"text": "refund please", "gold": ["nosuch"]}\n')
    result = invoke("eval", "agents", "--agents", str(agents), "--queries", str(queries))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: {queries}:1: gold agent 'nosuch' is not in")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("content", ["foreign", "empty", "tableless", "text"])
def test_read_commands_never_write_into_a_file_that_holds_no_trace(
    invoke: Invoke, tmp_path: Path, content: str
) -> None:
    """`runs list` on another app's database, an empty file or a text file is one error line.

    Opening a store creates its tables, so the command used to add nine `agentroute_*` tables
    to whatever `--db` named and print "no runs". The file must be left byte for byte as it was.
    """
    import sqlite3
    from contextlib import closing

    path = tmp_path / "other.db"
    if content == "foreign":
        with closing(sqlite3.connect(path)) as db:
            db.execute("CREATE TABLE users (id INTEGER)")
            db.commit()
    elif content == "tableless":
        with closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA user_version = 3")  # a valid database file, with no table
            db.commit()
    else:
        path.write_bytes(b"" if content == "empty" else b"not a database, just notes\n" * 100)
    before = path.read_bytes()
    result = invoke("runs", "list", "--db", f"sqlite:///{path}")
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1
    expected = {
        "foreign": "is a SQLite database of 1 other table(s)",
        "empty": "is an empty file",
        "tableless": "is a SQLite database with no tables",
        "text": "is not a SQLite database",
    }[content]
    assert expected in result.stderr
    assert path.read_bytes() == before


def test_a_directory_as_database_is_a_store_error_not_a_wrong_diagnosis(
    invoke: Invoke, tmp_path: Path
) -> None:
    """A path that cannot be opened (here a directory) says so; it is not "not a database"."""
    folder = tmp_path / "dir.db"
    folder.mkdir()
    result = invoke("runs", "list", "--db", f"sqlite:///{folder}")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot read {str(folder)!r}: unable to open")
