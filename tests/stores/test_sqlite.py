"""`SqlTraceStore` on SQLite: the conformance suites, locking, configuration and the schema."""

from __future__ import annotations

import importlib.util
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import SQLModel

from agentroute.errors import ConfigurationError, StoreUnavailable
from agentroute.stores import (
    AgentOutputRecord,
    DecisionRecord,
    FeedbackRecord,
    ModelCallRecord,
    RunEndRecord,
    RunRecord,
    SqlTraceStore,
    StateRecord,
    open_store,
)
from agentroute.stores._sql import (
    AgentOutputRow,
    DecisionRow,
    FeedbackRow,
    ModelCallRow,
    RunEndRow,
    RunRow,
    StateRow,
    schema_sql,
)

from .conformance import REPO_ROOT, SqlTraceStoreConformance, make_run


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's SQLite database lives."""
    return tmp_path / "traces.db"


class TestSqliteTraceStore(SqlTraceStoreConformance):
    trigger_names = (
        "DROP TRIGGER agentroute_decisions_no_update",
        "DROP TRIGGER agentroute_decisions_no_delete",
    )

    @pytest.fixture
    def url(self, db_path: Path) -> str:
        """A SQLite URL in the test's temporary directory."""
        return f"sqlite:///{db_path}"

    @pytest.fixture
    def raw(self, url: str) -> Iterator[sa.Engine]:
        """A plain SQLAlchemy engine on the same file."""
        engine = sa.create_engine(url)
        yield engine
        engine.dispose()


# -- SQLite specifics -------------------------------------------------------------------------


@pytest.fixture
def make_store(db_path: Path) -> Iterator[Callable[..., SqlTraceStore]]:
    """Open SQLite stores on the test's database (closed after the test)."""
    opened: list[SqlTraceStore] = []

    def make(**kwargs: Any) -> SqlTraceStore:
        kwargs.setdefault("flush_interval_s", 0.005)
        new = SqlTraceStore(f"sqlite:///{db_path}", **kwargs)
        opened.append(new)
        return new

    yield make
    for opened_store in opened:
        opened_store.close()


@pytest.fixture
def lock(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of another process's kind, to hold the database's write lock."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    yield conn
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.close()


def test_sqlite_runs_in_wal_mode_with_normal_sync(
    make_store: Callable[..., SqlTraceStore], db_path: Path
) -> None:
    """The file is in WAL mode; store connections use synchronous=NORMAL and a busy timeout."""
    store = make_store(timeout=2.0)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
    # The per-connection settings are only visible on the store's own connections.
    with store._engine.connect() as own:
        assert own.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert own.exec_driver_sql("PRAGMA busy_timeout").scalar() == 500


def test_a_locked_database_makes_flush_raise_and_loses_nothing(
    make_store: Callable[..., SqlTraceStore], lock: sqlite3.Connection
) -> None:
    """A write lock held elsewhere makes `flush` raise `StoreUnavailable` naming the URL.

    Once the lock is released, the same records are written and none is lost.
    """
    store = make_store(timeout=1.0)
    records = make_run("run-1")
    lock.execute("BEGIN EXCLUSIVE")
    store.append(records)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as excinfo:
        store.flush()
    assert time.monotonic() - started < 5
    message = str(excinfo.value)
    assert store.url in message
    assert "database is locked" in message
    assert f"{len(records)} buffered" in message
    assert isinstance(excinfo.value.__cause__, sa.exc.OperationalError)
    lock.execute("ROLLBACK")
    store.flush()
    assert store.get_run("run-1").records == tuple(records)
    assert store.verify("run-1").ok


def test_append_raises_when_failing_long_with_a_big_backlog_and_keeps_records(
    make_store: Callable[..., SqlTraceStore], lock: sqlite3.Connection
) -> None:
    """Past the timeout and the backlog bound, `append` raises but still buffers its records."""
    store = make_store(timeout=0.4, max_backlog=5)
    first, second = make_run("run-1"), make_run("run-2", created_at=2e9)
    lock.execute("BEGIN EXCLUSIVE")
    store.append(first)
    time.sleep(1.0)
    with pytest.raises(StoreUnavailable, match="buffered"):
        store.append(second)
    lock.execute("ROLLBACK")
    store.flush()
    assert store.get_run("run-1").records == tuple(first)
    assert store.get_run("run-2").records == tuple(second)
    store.append(make_run("run-3"))  # recovered: appending works again


def test_reads_while_locked_raise_store_unavailable(
    make_store: Callable[..., SqlTraceStore], lock: sqlite3.Connection
) -> None:
    """Feedback and state writes on a locked database raise `StoreUnavailable`, not SQLAlchemy."""
    store = make_store(timeout=0.4)
    store.append(make_run("run-1"))
    store.flush()
    lock.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreUnavailable, match="locked or unreachable"):
        store.add_feedback("run-1", score=1.0)
    with pytest.raises(StoreUnavailable, match=r"writing state 'k'"):
        store.put_state("k", {}, expected_version=None)
    assert store.get_run("run-1").run.run_id == "run-1"  # WAL readers are never blocked


def test_a_missing_directory_is_a_clear_configuration_error(tmp_path: Path) -> None:
    """A SQLite path in a directory that does not exist fails at once, naming the directory."""
    missing = tmp_path / "nope"
    with pytest.raises(ConfigurationError, match="does not exist") as excinfo:
        SqlTraceStore(f"sqlite:///{missing}/traces.db")
    assert str(missing) in str(excinfo.value)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_is_refused(url: str) -> None:
    """In-memory SQLite is refused with a pointer to `memory://`."""
    with pytest.raises(ConfigurationError, match="memory://"):
        SqlTraceStore(url)


@pytest.mark.parametrize("url", ["mysql://u@h/db", "oracle://x", "not a url"])
def test_unsupported_urls_are_configuration_errors(url: str) -> None:
    """Schemes other than SQLite and PostgreSQL raise `ConfigurationError`."""
    with pytest.raises(ConfigurationError):
        SqlTraceStore(url)


@pytest.mark.parametrize(
    "kwargs",
    [{"batch_size": 0}, {"flush_interval_s": 0}, {"timeout": -1}, {"max_backlog": 0}],
)
def test_invalid_parameters_are_configuration_errors(tmp_path: Path, kwargs: Any) -> None:
    """Non-positive sizes and intervals raise `ConfigurationError`."""
    with pytest.raises(ConfigurationError, match="SqlTraceStore needs"):
        SqlTraceStore(f"sqlite:///{tmp_path}/t.db", **kwargs)


def test_postgres_without_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """A PostgreSQL URL without psycopg installed raises ImportError naming the pip extra."""
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "psycopg" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ImportError, match=r"pip install 'agentroute\[postgres\]'"):
        SqlTraceStore("postgresql://u:secret@127.0.0.1/db")


def test_open_store_opens_sqlite_urls(tmp_path: Path) -> None:
    """`open_store` hands SQLite URLs to `SqlTraceStore`."""
    store = open_store(f"sqlite:///{tmp_path}/t.db")
    try:
        assert isinstance(store, SqlTraceStore)
        assert store.url == f"sqlite:///{tmp_path}/t.db"
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://app:S3cretPw@db.internal/prod", "unsupported store URL scheme 'mysql'"),
        ("postgresql://app:S3cretPw@db.internal:5432x/prod", r"invalid store URL \(.*5432x"),
    ],
)
def test_a_bad_store_url_is_a_configuration_error_that_never_shows_the_password(
    url: str, message: str
) -> None:
    """An unsupported scheme or an unparsable port is a `ConfigurationError` without the password.

    Before, the scheme error quoted the whole URL, password included, and a bad port raised a
    bare `ValueError`.
    """
    with pytest.raises(ConfigurationError, match=message) as info:
        open_store(url)
    assert "S3cretPw" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("agentroute.db", r"has no scheme; for a SQLite file write 'sqlite:///agentroute\.db'"),
        ("sqlite://agentroute.db", r"names a host: .* \('sqlite:///agentroute\.db'\)"),
        ("sqlite://data/trace.db", r"names a host: .* \('sqlite:///data/trace\.db'\)"),
    ],
)
def test_a_store_url_missing_its_scheme_or_a_slash_says_which_url_was_meant(
    url: str, message: str
) -> None:
    """A bare path, or `sqlite://` with two slashes, gets the URL it most likely meant.

    Before, the first was an "unsupported scheme 'agentroute.db'" and the second a message
    about in-memory SQLite.
    """
    with pytest.raises(ConfigurationError, match=message):
        open_store(url)


# -- the schema ---------------------------------------------------------------------------------

_ROWS: list[tuple[type[SQLModel], type[BaseModel]]] = [
    (RunRow, RunRecord),
    (DecisionRow, DecisionRecord),
    (ModelCallRow, ModelCallRecord),
    (AgentOutputRow, AgentOutputRecord),
    (RunEndRow, RunEndRecord),
    (FeedbackRow, FeedbackRecord),
    (StateRow, StateRecord),
]


@pytest.mark.parametrize(("row", "record"), _ROWS, ids=[r.__name__ for r, _ in _ROWS])
def test_every_record_field_has_a_column(row: type[SQLModel], record: type[BaseModel]) -> None:
    """Each table has exactly one column per record field (the table itself is the kind)."""
    table = row.metadata.tables[str(row.__tablename__)]
    assert {c.name for c in table.columns} == set(record.model_fields) - {"kind"}


def test_tables_use_their_own_metadata() -> None:
    """The store's tables are not in `SQLModel.metadata`, so users' tables never collide."""
    assert not [name for name in SQLModel.metadata.tables if name.startswith("agentroute_")]
    assert sorted(RunRow.metadata.tables) == [
        "agentroute_agent_outputs",
        "agentroute_decisions",
        "agentroute_feedback",
        "agentroute_model_calls",
        "agentroute_run_ends",
        "agentroute_runs",
        "agentroute_state",
    ]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_schema_sql_is_deterministic_and_complete(dialect: str) -> None:
    """The DDL is the same on every call and creates tables, indexes and triggers."""
    ddl = schema_sql(dialect)
    assert ddl == schema_sql(dialect)
    assert ddl.count("CREATE TABLE IF NOT EXISTS") == 7
    assert "PRIMARY KEY (run_id, seq)" in ddl
    assert re.search(r'PRIMARY KEY \("?key"?, version\)', ddl)
    assert "ix_agentroute_decisions_created_at" in ddl
    assert "append-only" in ddl
    assert not [line for line in ddl.splitlines() if line != line.rstrip()]


def test_schema_sql_of_an_unknown_dialect_raises() -> None:
    """Asking for a dialect the store does not support raises `ConfigurationError`."""
    with pytest.raises(ConfigurationError, match="postgresql"):
        schema_sql("mysql")


def test_schema_sql_applied_by_hand_serves_a_store_without_create(tmp_path: Path) -> None:
    """`schema.sql`'s SQLite statements prepare a database for `create=False`."""
    path = tmp_path / "by-hand.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(schema_sql("sqlite"))
    conn.close()
    with SqlTraceStore(f"sqlite:///{path}", create=False) as store:
        store.append(make_run("run-1"))
        assert store.verify("run-1").ok


def test_committed_schema_sql_is_fresh() -> None:
    """`stores/schema.sql` equals `python -m agentroute.stores._sql` output (regenerate if not)."""
    done = subprocess.run(
        [sys.executable, "-m", "agentroute.stores._sql"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
        timeout=120,
    )
    committed = (REPO_ROOT / "stores" / "schema.sql").read_text(encoding="utf-8")
    assert committed == done.stdout, (
        "stores/schema.sql is stale: run `python -m agentroute.stores._sql > stores/schema.sql`"
    )
