"""`agentroute runs list/show/verify/export/feedback` over a store the demo wrote."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from agentroute import __version__
from agentroute._demo import DEMO_TASKS
from agentroute.stores import open_store
from tests.cli.conftest import DemoStore, Invoke, count_rows, fan_out_run, run_ids


def test_runs_list_shows_the_demo_runs(invoke: Invoke, demo_store: DemoStore) -> None:
    """`runs list` shows every run's full id, status and task, newest first."""
    result = invoke("runs", "list", "--db", demo_store.url)
    assert result.exit_code == 0, result.output
    for run_id in run_ids(demo_store.url):
        assert run_id in result.stdout
    assert "out_of_scope" in result.stdout
    assert "7 run(s)" in result.stdout


def test_runs_list_json_limit_and_status(invoke: Invoke, demo_store: DemoStore) -> None:
    """`--json` lists run summaries; `--limit` and `--status` filter them."""
    result = invoke("runs", "list", "--db", demo_store.url, "--json", "--limit", "3")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 3
    result = invoke("runs", "list", "--db", demo_store.url, "--json", "--status", "out_of_scope")
    (only,) = json.loads(result.stdout)
    assert only["task"] == "Can you write me a poem about cats?"
    result = invoke("runs", "list", "--db", demo_store.url, "--status", "finished")
    assert result.exit_code == 2
    assert "completed" in result.output  # the error lists the valid statuses


def test_runs_show_has_the_reason_and_every_candidate(
    invoke: Invoke, demo_store: DemoStore
) -> None:
    """`runs show` prints the agent slot's strategy, reason and scored candidates.

    Also each branch's model decision, model call and output, and the end of the run.
    """
    run_id = fan_out_run(demo_store.url)
    result = invoke("runs", "show", run_id[:10], "--db", demo_store.url)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert run_id in out
    assert "agent slot · rules v1 → billing + shipping" in out
    assert "reason: rule 'charge-and-delivery' fired" in out
    assert "candidates (7)" in out
    assert "security  0.000  rule=account-security" in out
    assert "billing  1.000  rule=charge-and-delivery keywords=[charged, package, arrived]" in out
    assert "branch billing" in out
    assert "branch shipping" in out
    assert "model slot · rules v1 → cheap" in out
    assert "model call #0 attempt 1: cheap (demo/cheap)" in out
    assert "skills given: 7: invoice-lookup" in out
    assert "refiner slot · join v1" in out
    assert "end completed" in out


def test_runs_show_json_dumps_every_record(invoke: Invoke, demo_store: DemoStore) -> None:
    """`runs show --json` is a JSON list of every record of the run, in chain order."""
    run_id = fan_out_run(demo_store.url)
    result = invoke("runs", "show", run_id, "--db", demo_store.url, "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    with open_store(demo_store.url) as store:
        expected = [r.model_dump(mode="json") for r in store.get_run(run_id).records]
    assert records == expected
    assert [r["seq"] for r in records] == list(range(len(records)))
    assert records[0]["kind"] == "run"
    assert records[-1]["kind"] == "run_end"


def test_runs_verify_passes_then_catches_an_edited_decision(invoke: Invoke, tmp_path: Path) -> None:
    """`runs verify` passes on an untouched store and catches an edited decision.

    After a decision's reason is edited in the database (its append-only triggers dropped
    first), it exits 1 naming the run and the seq.
    """
    path = tmp_path / "tamper.db"
    url = f"sqlite:///{path}"
    tasks = ("Where is my refund?", "The app crashes at login")
    result = invoke("demo", "--db", url, "--task", tasks[0], "--task", tasks[1])
    assert result.exit_code == 0, result.output

    result = invoke("runs", "verify", "--db", url)
    assert result.exit_code == 0, result.output
    assert "2 runs verified, 0 broken" in result.stdout

    with closing(sqlite3.connect(path)) as conn:
        triggers = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='trigger' "
                "AND tbl_name='agentroute_decisions'"
            )
        ]
        assert triggers
        for name in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        run_id, seq = conn.execute(
            "SELECT run_id, seq FROM agentroute_decisions WHERE slot='agent' LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE agentroute_decisions SET reason='because I said so' WHERE run_id=? AND seq=?",
            (run_id, seq),
        )
        conn.commit()

    result = invoke("runs", "verify", "--db", url)
    assert result.exit_code == 1
    assert "2 runs verified, 1 broken" in result.stdout
    assert run_id in result.stdout
    assert f"seq {seq} (decision): content does not match its hash" in result.stdout
    assert "BROKEN" in result.stdout

    # One run by prefix: the untouched one still verifies.
    other = next(r for r in run_ids(url) if r != run_id)
    result = invoke("runs", "verify", other[:8], "--db", url)
    assert result.exit_code == 0, result.output
    assert "1 runs verified, 0 broken" in result.stdout


def test_runs_export_writes_every_record_as_json_lines(
    invoke: Invoke, demo_store: DemoStore, tmp_path: Path
) -> None:
    """`runs export` emits one valid JSON object per record, as many as the store's rows.

    To stdout by default or to `--out FILE`; given run ids, only theirs.
    """
    result = invoke("runs", "export", "--db", demo_store.url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == count_rows(demo_store.path)
    assert {r["run_id"] for r in records} == set(run_ids(demo_store.url))

    out = tmp_path / "export.jsonl"
    result = invoke("runs", "export", "--db", demo_store.url, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").splitlines() == lines
    assert f"{len(lines)} records of {len(DEMO_TASKS)} runs written" in result.stderr

    run_id = fan_out_run(demo_store.url)
    result = invoke("runs", "export", run_id[:8], "--db", demo_store.url)
    assert {json.loads(line)["run_id"] for line in result.stdout.splitlines()} == {run_id}


def test_runs_feedback_appends_to_the_chain(invoke: Invoke, db_url: str) -> None:
    """`runs feedback` appends a record that `runs show` lists and `verify` accepts.

    It needs a score in [0, 1] or a label.
    """
    result = invoke("demo", "--db", db_url, "--task", "Where is my refund?")
    assert result.exit_code == 0, result.output
    (run_id,) = run_ids(db_url)

    result = invoke("runs", "feedback", run_id[:8], "--db", db_url, "--score", "0.8",
                    "--label", "resolved", "--comment", "quick and right")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"feedback recorded on run {run_id}" in result.stdout

    shown = invoke("runs", "show", run_id, "--db", db_url).stdout
    assert "feedback score=0.8 label=resolved" in shown
    assert "quick and right" in shown
    assert invoke("runs", "verify", run_id, "--db", db_url).exit_code == 0

    assert invoke("runs", "feedback", run_id, "--db", db_url, "--score", "1.5").exit_code == 2
    assert invoke("runs", "feedback", run_id, "--db", db_url).exit_code == 2


def test_version_and_help(invoke: Invoke) -> None:
    """`--version` prints the package version; `--help` lists the commands."""
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"agentroute {__version__}"
    result = invoke("--help")
    assert result.exit_code == 0
    assert "demo" in result.stdout
    assert "runs" in result.stdout


READ_ONLY = [
    ("runs", "list"),
    ("runs", "show", "abcdef"),
    ("runs", "verify"),
    ("runs", "replay", "abcdef"),
    ("runs", "export"),
    ("runs", "feedback", "abcdef", "--score", "1"),
    ("pheromones", "keys"),
    ("pheromones", "show"),
    ("pheromones", "versions"),
    ("pheromones", "diff", "1"),
]


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_missing_sqlite_file_is_an_error_and_is_not_created(
    invoke: Invoke, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Commands that read runs or tables fail on a `--db` file that does not exist.

    A typo in `--db` used to create an empty database and report "0 runs verified" with
    exit 0; now it is one `error:` line naming the file, and no file is created.
    """
    path = tmp_path / "typo.db"
    url = f"sqlite:///{path}"
    result = invoke(*command, "--db", url)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: no store at {url}: the file {str(path)!r} does not")
    assert not path.exists()


def _tampered_store(invoke: Invoke, path: Path) -> tuple[str, int]:
    """A one-run store whose agent decision was edited; returns its run id and seq."""
    url = f"sqlite:///{path}"
    assert invoke("demo", "--db", url, "--task", "Where is my refund?").exit_code == 0
    with closing(sqlite3.connect(path)) as conn:
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='trigger' "
            "AND tbl_name='agentroute_decisions'"
        ).fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        run_id, seq = conn.execute(
            "SELECT run_id, seq FROM agentroute_decisions WHERE slot='agent' LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE agentroute_decisions SET reason='edited' WHERE run_id=? AND seq=?",
            (run_id, seq),
        )
        conn.commit()
    return run_id, seq


def test_runs_verify_problems_are_readable_at_80_columns(invoke: Invoke, tmp_path: Path) -> None:
    """At 80 columns each problem is printed whole on one line, not wrapped beside the run id."""
    from typer.testing import CliRunner

    from agentroute.cli import app

    path = tmp_path / "tamper.db"
    run_id, seq = _tampered_store(invoke, path)
    runner = CliRunner(env={"COLUMNS": "80", "AGENTROUTE_DB": None})
    result = runner.invoke(app, ["runs", "verify", "--db", f"sqlite:///{path}"])
    assert result.exit_code == 1, result.output
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert f"seq {seq} (decision): content does not match its hash (edited)" in lines
    assert f"problems in run {run_id}:" in lines
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
