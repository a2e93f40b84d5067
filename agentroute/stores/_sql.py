"""`SqlTraceStore`: run traces in SQLite or PostgreSQL, through SQLModel and SQLAlchemy.

One table per record kind, with a typed column for every field of the record (the table *is* the
record's `kind`, so `kind` has no column). Dicts and lists are `JSON` columns holding exactly what
`record.model_dump(mode="json")` gives, so a record read back has the same hash it was sealed
with. Chained tables have the primary key `(run_id, seq)`, which doubles as the index for
run-id lookups, and an index on `created_at`; learned state has the primary key `(key, version)`.

Writing is off the hot path. `append` only puts records on a queue; one daemon writer thread
drains it in batches (up to `batch_size` records, or whatever arrived within
`flush_interval_s`) and commits each batch in one transaction with Core `INSERT ... executemany`,
grouped per table. When the database is locked or unreachable the writer keeps the batch and
retries with backoff, so nothing appended is lost while the process lives; `flush` and, once the
backlog is large, `append` raise `StoreUnavailable` meanwhile. A record whose `(run_id, seq)` is
already stored can never be written: the writer isolates such rows one by one, logs how many it
dropped and writes the rest.

Rows are append-only: the store has no update or delete, and `create=True` installs triggers that
make the database itself reject `UPDATE` and `DELETE` on the chained tables.

`python -m agentroute.stores._sql > stores/schema.sql` (or `python -m agentroute._schemas`, which
writes every generated file) regenerates the repository's DDL file from `schema_sql`.
"""

from __future__ import annotations

import atexit
import importlib.util
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import pydantic_core
import structlog
from pydantic import TypeAdapter
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    and_,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.orm import registry
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel import Field, SQLModel

from agentroute.errors import (
    ConfigurationError,
    MissingExtraError,
    RunNotFound,
    StateConflict,
    StoreError,
    StoreUnavailable,
)
from agentroute.stores._base import (
    BudgetKeyStatus,
    RunSummary,
    RunTrace,
    TraceStore,
    VerifyReport,
    verify_chain,
)
from agentroute.stores._records import (
    AgentOutputRecord,
    DecisionRecord,
    FeedbackRecord,
    ModelCallRecord,
    RunEndRecord,
    RunRecord,
    StateRecord,
    TraceRecord,
    sealed_json_texts,
)

__all__ = [
    "AgentOutputRow",
    "BudgetKeyRow",
    "BudgetReservationRow",
    "DecisionRow",
    "FeedbackRow",
    "ModelCallRow",
    "RunEndRow",
    "RunRow",
    "SqlTraceStore",
    "StateRow",
    "ledger_schema_sql",
    "schema_sql",
]

logger = structlog.get_logger(__name__)

# -- tables ------------------------------------------------------------------------------------

# A registry (and so a MetaData) of our own: users' SQLModel tables live in `SQLModel.metadata`
# and never collide with ours, and `create_all` on either touches only its own tables.
_REGISTRY = registry(metadata=MetaData())


class _Row(SQLModel, registry=_REGISTRY):
    pass


class _ChainedRow(_Row):
    run_id: str = Field(primary_key=True)
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    created_at: float = Field(index=True)
    prev_hash: str
    hash: str


class RunRow(_ChainedRow, table=True):
    """A `RunRecord`: the start of a run."""

    __tablename__ = "agentroute_runs"

    task: str
    router: dict[str, Any] = Field(sa_type=JSON)
    registry_hash: str
    budget_usd: float | None
    budget: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    # `metadata` is taken by SQLAlchemy's declarative base; the column keeps the record's name.
    metadata_: dict[str, Any] = Field(sa_column=Column("metadata", JSON, nullable=False))
    seed: int = Field(sa_type=BigInteger)
    """Any seed in [0, 2**63) (`Router.run` checks it), so 64-bit, not SQL's 32-bit INTEGER."""
    replay_of: str | None


class DecisionRow(_ChainedRow, table=True):
    """A `DecisionRecord`: one slot's decision at one step."""

    __tablename__ = "agentroute_decisions"

    step: int
    slot: str
    branch: str
    strategy: str
    strategy_version: str
    params: dict[str, Any] = Field(sa_type=JSON)
    outcome: str
    chosen: list[str] = Field(sa_type=JSON)
    candidates: list[dict[str, Any]] = Field(sa_type=JSON)
    reason: str
    evidence: dict[str, Any] = Field(sa_type=JSON)
    latency_ms: float
    error: str | None


class ModelCallRow(_ChainedRow, table=True):
    """A `ModelCallRecord`: one attempt of one model call."""

    __tablename__ = "agentroute_model_calls"

    step: int
    branch: str
    call_index: int
    attempt: int
    model: str
    model_id: str
    messages: list[dict[str, Any]] = Field(sa_type=JSON)
    response: str | None
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: float
    cost_usd: float
    latency_ms: float
    error: str | None
    error_type: str | None


class AgentOutputRow(_ChainedRow, table=True):
    """An `AgentOutputRecord`: what one agent produced at one step."""

    __tablename__ = "agentroute_agent_outputs"

    step: int
    agent: str
    task: str
    input_hash: str
    skills: list[str] = Field(sa_type=JSON)
    model: str | None
    output: str | None
    final: bool
    # `metadata` is taken by SQLAlchemy's declarative base; the column keeps the record's name.
    metadata_: dict[str, Any] = Field(sa_column=Column("metadata", JSON, nullable=False))
    latency_ms: float
    error: str | None
    error_type: str | None


class RunEndRow(_ChainedRow, table=True):
    """A `RunEndRecord`: how a run ended."""

    __tablename__ = "agentroute_run_ends"

    status: str
    reason: str
    answer: str | None
    cost_usd: float
    steps: int
    error: str | None
    error_type: str | None


class FeedbackRow(_ChainedRow, table=True):
    """A `FeedbackRecord`: feedback on a finished run."""

    __tablename__ = "agentroute_feedback"

    score: float | None
    label: str | None
    agent: str | None
    comment: str | None
    source: str


class StateRow(_Row, table=True):
    """A `StateRecord`: one version of a piece of learned state."""

    __tablename__ = "agentroute_state"

    key: str = Field(primary_key=True)
    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    value: dict[str, Any] = Field(sa_type=JSON)
    created_at: float = Field(index=True)
    note: str


# Budget ledgers are operational state, not trace: tables of their own metadata, created with
# the trace tables (`create=True`) and, for stores opened with `create=False`, on first use.
_LEDGER_REGISTRY = registry(metadata=MetaData())


class _LedgerRow(SQLModel, registry=_LEDGER_REGISTRY):
    pass


class BudgetKeyRow(_LedgerRow, table=True):
    """A shared budget key's totals. Operational state: updated in place, never chained."""

    __tablename__ = "agentroute_budget_keys"

    key: str = Field(primary_key=True)
    limit_usd: float | None
    strong_limit: int | None
    spent_nano: int = Field(sa_type=BigInteger)
    """Settled spend in nano-dollars (integers, so sums are exact)."""
    strong_used: int
    updated_at: float


class BudgetReservationRow(_LedgerRow, table=True):
    """One reservation in flight on a budget key; deleted when settled, released or expired."""

    __tablename__ = "agentroute_budget_ledger"
    # SQLite otherwise hands the id of a deleted row to the next insert: after a key's reset,
    # settling an old reservation would delete a new one of the same id.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True)
    run_id: str
    amount_nano: int = Field(sa_type=BigInteger)
    strong: bool
    created_at: float
    expires_at: float


def _table(row: type[_Row]) -> Table:
    return _REGISTRY.metadata.tables[str(row.__tablename__)]


_KIND_TABLES: Final[dict[str, Table]] = {
    "run": _table(RunRow),
    "decision": _table(DecisionRow),
    "model_call": _table(ModelCallRow),
    "agent_output": _table(AgentOutputRow),
    "run_end": _table(RunEndRow),
    "feedback": _table(FeedbackRow),
}
"""Record kind -> its table, in chain-building order."""

_RECORD_TYPES: Final = (
    RunRecord,
    DecisionRecord,
    ModelCallRecord,
    AgentOutputRecord,
    RunEndRecord,
    FeedbackRecord,
)

_RUNS: Final = _KIND_TABLES["run"]
_RUN_ENDS: Final = _KIND_TABLES["run_end"]
_STATE: Final = _table(StateRow)
_CHAINED_TABLES: Final = tuple(_KIND_TABLES.values())
_BUDGET_KEYS: Final = _LEDGER_REGISTRY.metadata.tables["agentroute_budget_keys"]
_BUDGET_LEDGER: Final = _LEDGER_REGISTRY.metadata.tables["agentroute_budget_ledger"]
_ALL_TABLES: Final = (*_CHAINED_TABLES, _STATE)
_LEDGER_TABLES: Final = (_BUDGET_KEYS, _BUDGET_LEDGER)

_JSON_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    kind: tuple(c.name for c in table.columns if isinstance(c.type, JSON))
    for kind, table in _KIND_TABLES.items()
}

# Per kind: the table's columns in order, each flagged when it holds JSON. The writer builds
# positional rows from it directly (no intermediate dicts: fewer allocations, less GC work).
_ROW_PLANS: Final[dict[str, tuple[tuple[str, bool], ...]]] = {
    kind: tuple((c.name, isinstance(c.type, JSON)) for c in table.columns)
    for kind, table in _KIND_TABLES.items()
}

_TRACE_RECORD: Final[TypeAdapter[TraceRecord]] = TypeAdapter(TraceRecord)

_APPEND_ONLY_MESSAGE: Final = "agentroute traces are append-only"

# -- DDL ---------------------------------------------------------------------------------------

_PG_APPEND_ONLY_FUNCTION: Final = f"""\
CREATE OR REPLACE FUNCTION agentroute_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{_APPEND_ONLY_MESSAGE}'
        USING HINT = 'rows of ' || TG_TABLE_NAME || ' cannot be updated or deleted';
END;
$$"""


def _trigger_ddl(dialect_name: str, table: Table) -> list[str]:
    name = table.name
    if dialect_name == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {name}_no_{op.lower()}\n"
            f"BEFORE {op} ON {name}\n"
            f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY_MESSAGE}'); END"
            for op in ("UPDATE", "DELETE")
        ]
    # PostgreSQL before 14 has no CREATE OR REPLACE TRIGGER: create it only when it is missing.
    return [
        "DO $$\nBEGIN\n"
        f"    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{name}_{suffix}'\n"
        f"                   AND tgrelid = '{name}'::regclass) THEN\n"
        f"        CREATE TRIGGER {name}_{suffix} BEFORE {ops} ON {name}\n"
        f"            FOR EACH {each} EXECUTE FUNCTION agentroute_append_only();\n"
        "    END IF;\nEND\n$$"
        for suffix, ops, each in (
            ("append_only", "UPDATE OR DELETE", "ROW"),
            ("no_truncate", "TRUNCATE", "STATEMENT"),
        )
    ]


def _tidy(ddl: str) -> str:
    return "\n".join(line.rstrip().replace("\t", "    ") for line in ddl.strip().splitlines())


def _ddl_statements(dialect: Dialect, tables: Sequence[Table] = _ALL_TABLES) -> list[str]:
    statements: list[str] = []
    for table in tables:
        statements.append(
            _tidy(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)))
        )
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            statements.append(
                _tidy(str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect)))
            )
    if tables is not _ALL_TABLES:
        return statements
    if dialect.name == "postgresql":
        statements.append(_PG_APPEND_ONLY_FUNCTION)
    for table in _CHAINED_TABLES:
        statements.extend(_trigger_ddl(dialect.name, table))
    return statements


_DIALECTS: Final[dict[str, Dialect]] = {
    "sqlite": sqlite.dialect(),
    "postgresql": postgresql.dialect(),  # type: ignore[no-untyped-call]
}


def schema_sql(dialect: str = "sqlite") -> str:
    """Return the DDL `SqlTraceStore(create=True)` runs: tables, indexes and append-only triggers.

    Every statement is idempotent (`IF NOT EXISTS`), so the script can be applied by hand to
    prepare a database for stores opened with `create=False`.

    Args:
        dialect: `"sqlite"` or `"postgresql"`.

    Raises:
        ConfigurationError: Another dialect was asked for.
    """
    try:
        compiled_for = _DIALECTS[dialect]
    except KeyError:
        msg = f"no schema for dialect {dialect!r}: use 'sqlite' or 'postgresql'"
        raise ConfigurationError(msg) from None
    return "".join(f"{statement};\n\n" for statement in _ddl_statements(compiled_for))


def ledger_schema_sql(dialect: str = "sqlite") -> str:
    """Return the DDL of the shared budget ledger tables (idempotent, `IF NOT EXISTS`).

    `agentroute_budget_keys` (one row per key: limit, settled spend in nano-dollars, strong calls
    used) and `agentroute_budget_ledger` (one row per reservation in flight, with its expiry).
    They hold operational state, updated in place, so they carry no append-only triggers.

    Raises:
        ConfigurationError: Another dialect was asked for.
    """
    try:
        compiled_for = _DIALECTS[dialect]
    except KeyError:
        msg = f"no schema for dialect {dialect!r}: use 'sqlite' or 'postgresql'"
        raise ConfigurationError(msg) from None
    statements = _ddl_statements(compiled_for, _LEDGER_TABLES)
    return "".join(f"{statement};\n\n" for statement in statements)


# -- the SQLAlchemy boundary -------------------------------------------------------------------

_TRANSIENT_ERRORS: Final = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
)
"""Locked, unreachable, disconnected, pool exhausted: worth retrying, nothing is wrong with data."""

_ROW_ERRORS: Final = (
    sa_exc.IntegrityError,
    sa_exc.DataError,
    # Raised by the DB-API driver itself while binding a value (SQLite's sqlite3 does not wrap
    # them): an integer past 64 bits, text that is not valid UTF-8.
    OverflowError,
    UnicodeError,
)
"""A row can never be written (duplicate `(run_id, seq)`, a value the database rejects)."""


def _row_error_hint(exc: BaseException) -> str:
    """Why a row was refused, in words, for the `trace_records_dropped` log line."""
    cause = getattr(exc, "orig", None) or exc
    if getattr(cause, "sqlstate", None) == "23505" or "UNIQUE constraint" in str(cause):
        return "a record with the same (run_id, seq) is already stored"
    return "the database refused a value of the record (see error)"


def _describe(exc: BaseException) -> str:
    """A one-line description of a database error, without SQL or parameters."""
    cause = getattr(exc, "orig", None) or exc
    first_line = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first_line}" if first_line else type(cause).__name__


def _store_error(
    exc: sa_exc.SQLAlchemyError, url: str, action: str, *, conflict: str | None = None
) -> StoreError:
    """Translate a SQLAlchemy exception into agentroute's tree (the one place this happens).

    Args:
        exc: What SQLAlchemy raised.
        url: The store's URL, password masked.
        action: What the store was doing, for the message.
        conflict: When given, an integrity error means a lost optimistic-concurrency race and
            becomes `StateConflict` with this message.
    """
    if conflict is not None and isinstance(exc, sa_exc.IntegrityError):
        return StateConflict(conflict)
    detail = _describe(exc)
    if isinstance(exc, _TRANSIENT_ERRORS) or getattr(exc, "connection_invalidated", False):
        return StoreUnavailable(
            f"{action}: the database at {url} is locked or unreachable ({detail}); "
            "check that it is running and reachable, then retry"
        )
    return StoreError(f"{action} failed on {url}: {detail}")


# -- URLs and engines --------------------------------------------------------------------------

_PG_DRIVERS: Final = frozenset({"postgres", "postgresql", "postgresql+psycopg"})
_SQLITE_DRIVERS: Final = frozenset({"sqlite", "sqlite+pysqlite"})
_BEGIN_IMMEDIATE: Final = "agentroute_begin_immediate"
"""Connection execution option: on SQLite, open the transaction with `BEGIN IMMEDIATE`."""


def _parse_url(url: str) -> tuple[URL, str]:
    """Return the URL to connect to (driver normalised) and the URL to show (password masked)."""
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError) as exc:
        # Not the URL itself: it may carry a password. The parser's message names the bad part.
        msg = (
            f"invalid store URL ({exc}): use 'sqlite:///path.db' or "
            "'postgresql://user:password@host:5432/db'"
        )
        raise ConfigurationError(msg) from exc
    shown = parsed
    if "password" in shown.query:
        shown = shown.update_query_dict({"password": "***"})
    masked = shown.render_as_string(hide_password=True)
    if parsed.drivername in _PG_DRIVERS:
        if importlib.util.find_spec("psycopg") is None:
            msg = (
                f"the store {masked} needs the PostgreSQL driver psycopg: "
                "pip install 'agentroute[postgres]'"
            )
            raise MissingExtraError(msg)
        return parsed.set(drivername="postgresql+psycopg"), masked
    if parsed.drivername in _SQLITE_DRIVERS:
        database = parsed.database or ""
        if parsed.host or parsed.username or parsed.port:
            meant = "/".join(p for p in (parsed.host, database) if p)
            msg = (
                f"the SQLite store {masked} names a host: a SQLite URL has three slashes before "
                f"a relative path ('sqlite:///{meant}') and four before an absolute one "
                "('sqlite:////tmp/trace.db')"
            )
            raise ConfigurationError(msg)
        if database in ("", ":memory:"):
            msg = (
                f"the SQLite store {masked} needs a file: in-memory SQLite is not shared between "
                "the writer thread's connections; use 'memory://' for a throwaway store"
            )
            raise ConfigurationError(msg)
        directory = Path(database).parent
        if not database.startswith("file:") and not directory.is_dir():
            msg = (
                f"the directory {str(directory)!r} of the SQLite store {masked} does not exist; "
                "create it or choose another path"
            )
            raise ConfigurationError(msg)
        return parsed, masked
    msg = (
        f"unsupported store URL {masked!r}: use 'sqlite:///path.db' or "
        "'postgresql://user@host:5432/db'"
    )
    raise ConfigurationError(msg)


class _Encoded:
    """JSON text pydantic already produced, so the engine's serializer passes it through."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


_dump_json: Final = pydantic_core.to_json


def _to_json(value: Any) -> str:
    # pydantic's JSON mode (NaN and infinities become null): the same data
    # `model_dump(mode="json")` gives, which is what the record's hash covers.
    return _dump_json(value, inf_nan_mode="null").decode()


def _json_serializer(value: Any) -> str:
    if type(value) is _Encoded:
        return value.text
    return _to_json(value)


def _make_engine(url: URL, timeout: float) -> Engine:
    if url.get_backend_name() == "sqlite":
        # Short enough that a locked database surfaces within the store's timeout.
        busy_s = min(5.0, max(0.05, timeout / 4))
        engine = create_engine(
            url,
            hide_parameters=True,  # parameters hold user data; keep them out of messages
            json_serializer=_json_serializer,
            connect_args={"check_same_thread": False, "timeout": busy_s},
        )
        _configure_sqlite(engine, busy_ms=int(busy_s * 1000))
        return engine
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = max(1, int(min(timeout, 10)))
    return create_engine(
        url,
        hide_parameters=True,
        json_serializer=_json_serializer,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def _configure_sqlite(engine: Engine, *, busy_ms: int) -> None:
    # pysqlite opens transactions on its own, and only DEFERRED ones; take that over so that
    # writers can start with BEGIN IMMEDIATE (the SQLAlchemy-documented recipe).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_BEGIN_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# -- records <-> rows --------------------------------------------------------------------------


def _row(rec: TraceRecord) -> dict[str, Any]:
    # Field values as validated are what `model_dump(mode="json")` gives for scalar columns;
    # JSON columns get pydantic's JSON text. Much faster than `model_dump` per record.
    row = rec.__dict__.copy()
    del row["kind"]
    for name in _JSON_COLUMNS[rec.kind]:
        row[name] = _Encoded(_dump_json(row[name], inf_nan_mode="null").decode())
    return row


def _row_builder(kind: str) -> Callable[[TraceRecord], tuple[Any, ...]]:
    names = [name for name, _ in _ROW_PLANS[kind]]
    json_at = [i for i, (_, is_json) in enumerate(_ROW_PLANS[kind]) if is_json]

    def build(rec: TraceRecord) -> tuple[Any, ...]:
        values = rec.__dict__
        out = [values[name] for name in names]
        # The JSON `sealed()` encoded, when it is still the record's: no second encoding.
        texts = sealed_json_texts(rec)
        for i in json_at:
            text = texts.get(names[i])
            out[i] = text if text is not None else _dump_json(out[i], inf_nan_mode="null").decode()
        return tuple(out)

    return build


_ROW_BUILDERS: Final = {kind: _row_builder(kind) for kind in _ROW_PLANS}


def _row_tuple(rec: TraceRecord) -> tuple[Any, ...]:
    """The same values as `_row`, positionally, in the table's column order."""
    return _ROW_BUILDERS[rec.kind](rec)


def _record(kind: str, mapping: Any) -> TraceRecord:
    data = dict(mapping)
    data["kind"] = kind
    return _TRACE_RECORD.validate_python(data)


# -- the store ---------------------------------------------------------------------------------


class SqlTraceStore(TraceStore):
    """Runs and learned state in SQLite (the default, WAL mode) or PostgreSQL.

    Appends return at once; a background thread writes them in batches. Reads flush first, so a
    process always sees its own writes.

    Args:
        url: `sqlite:///path.db` (the file's directory must exist), or
            `postgresql://user:password@host:5432/db` (`postgres://` and
            `postgresql+psycopg://` work too; needs `pip install 'agentroute[postgres]'`).
        batch_size: Most records written in one transaction.
        flush_interval_s: Longest a record waits in the queue before its batch is written.
        timeout: Seconds `flush` waits before raising `StoreUnavailable`; also how long the writer
            may fail before `append` starts raising.
        max_backlog: Buffered records above which `append` raises while the writer is failing.
        create: Create missing tables, indexes and append-only triggers (idempotent).

    Raises:
        ConfigurationError: The URL or a parameter is invalid.
        ImportError: A PostgreSQL URL was given and psycopg is not installed.
        StoreUnavailable: `create=True` and the database cannot be reached.
    """

    def __init__(
        self,
        url: str = "sqlite:///agentroute.db",
        *,
        batch_size: int = 512,
        flush_interval_s: float = 0.05,
        timeout: float = 30.0,
        max_backlog: int = 100_000,
        create: bool = True,
    ) -> None:
        self._insert_cache: dict[str, tuple[str, tuple[str, ...]]] = {}
        if batch_size < 1 or flush_interval_s <= 0 or timeout <= 0 or max_backlog < 1:
            msg = (
                "SqlTraceStore needs batch_size >= 1, flush_interval_s > 0, timeout > 0 and "
                f"max_backlog >= 1; got {batch_size}, {flush_interval_s}, {timeout}, "
                f"{max_backlog}"
            )
            raise ConfigurationError(msg)
        engine_url, self.url = _parse_url(url)
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._timeout = timeout
        self._max_backlog = max_backlog
        self._engine = _make_engine(engine_url, timeout)
        self._postgres = engine_url.get_backend_name() == "postgresql"

        # Writer state, guarded by one lock. `_work` wakes the writer; `_progress` wakes flushers.
        # `_done` counts records committed or dropped: the writer takes batches from the front
        # of `_pending`, so they are always the first `_done` of the `_appended` records.
        # Every `flush` bumps `_flush_calls`, which cuts a failing writer's back-off short.
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._progress = threading.Condition(self._lock)
        self._pending: deque[TraceRecord] = deque()
        self._appended = 0
        self._done = 0
        self._flush_waiters = 0
        self._flush_calls = 0
        self._failing_since: float | None = None
        self._last_error: BaseException | None = None
        self._closed = False
        self._stop = threading.Event()
        self._ledger_ready = False

        if create:
            try:
                self._create_schema()
            except BaseException:
                self._engine.dispose()
                raise
        self._writer = threading.Thread(
            target=self._write_loop, name="agentroute-sql-writer", daemon=True
        )
        self._writer.start()
        atexit.register(self._close_at_exit)

    def __repr__(self) -> str:
        return f"SqlTraceStore({self.url!r})"

    # -- lifecycle ---------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Block until every record appended before the call is committed.

        Args:
            timeout: Seconds to wait; the store's `timeout` when `None`.

        Raises:
            StoreUnavailable: Not everything could be written in time (the database is locked or
                unreachable). The records stay buffered and the writer keeps retrying.
        """
        wait_s = self._timeout if timeout is None else timeout
        with self._lock:
            target = self._appended
            if self._done >= target:
                return
            deadline = time.monotonic() + wait_s
            self._flush_waiters += 1
            self._flush_calls += 1
            self._work.notify()
            try:
                while self._done < target:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise self._unavailable(f"within {wait_s:g} s") from self._last_error
                    self._progress.wait(remaining)
            finally:
                self._flush_waiters -= 1

    def close(self) -> None:
        """Flush, stop the writer thread and release the connections. Idempotent.

        Raises:
            StoreUnavailable: The buffered records could not be written; the store stays open,
                so `close()` can be called again once the database is back.
        """
        if self._closed:
            return
        self.flush()
        self._shutdown()

    def _shutdown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            self._work.notify_all()
        atexit.unregister(self._close_at_exit)
        self._writer.join(timeout=self._timeout)
        self._engine.dispose()

    def _close_at_exit(self) -> None:
        try:
            self.close()
        except StoreError as exc:
            logger.error(
                "trace_store_records_lost_at_exit",
                url=self.url,
                records=self._backlog(),
                error=_describe(exc),
            )
            self._shutdown()

    def _check_open(self) -> None:
        if self._closed:
            msg = f"the trace store {self.url} is closed; open a new store to use it again"
            raise StoreError(msg)

    # -- writing -----------------------------------------------------------------------------

    def append(self, records: Sequence[TraceRecord]) -> None:
        """Queue sealed records for the writer thread; returns without touching the database.

        Raises:
            StoreUnavailable: The writer has been failing for longer than the store's timeout and
                more than `max_backlog` records are waiting. These records are kept too.
            StoreError: The store is closed.
            TypeError: Something other than a trace record was given.
        """
        if not records:
            return
        # Checked here, not in the writer: a record it cannot store would be lost silently.
        stray = next((r for r in records if not isinstance(r, _RECORD_TYPES)), None)
        if stray is not None:
            msg = (
                "a trace store appends run records (RunRecord, DecisionRecord, ...), "
                f"not {type(stray).__name__}"
            )
            raise TypeError(msg)
        with self._lock:
            self._check_open()
            before = len(self._pending)
            self._pending.extend(records)
            self._appended += len(records)
            if before == 0 or before < self._batch_size <= len(self._pending):
                self._work.notify()
            failing_since = self._failing_since
            if (
                failing_since is not None
                and time.monotonic() - failing_since > self._timeout
                and self._appended - self._done > self._max_backlog
            ):
                raise self._unavailable(
                    f"for {time.monotonic() - failing_since:.0f} s"
                ) from self._last_error

    def _backlog(self) -> int:
        return self._appended - self._done

    def _unavailable(self, how_long: str) -> StoreUnavailable:
        # Called with the lock held.
        error = _describe(self._last_error) if self._last_error else "no answer yet"
        return StoreUnavailable(
            f"could not write {self._backlog()} buffered trace records to {self.url} {how_long} "
            f"({error}); they stay buffered and are retried in the background — check that the "
            "database is running, reachable and not locked"
        )

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._stop.is_set():
                    self._work.wait()
                if not self._pending:
                    return
                deadline = time.monotonic() + self._flush_interval_s
                while (
                    len(self._pending) < self._batch_size
                    and not self._flush_waiters
                    and not self._stop.is_set()
                ):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._work.wait(remaining)
                count = min(len(self._pending), self._batch_size)
                batch = [self._pending.popleft() for _ in range(count)]
            if not self._write_batch(batch):
                with self._lock:
                    lost = count + len(self._pending)
                logger.error("trace_records_lost", url=self.url, count=lost, reason="store closed")
                return
            with self._lock:
                self._done += count
                self._progress.notify_all()

    def _write_batch(self, batch: list[TraceRecord]) -> bool:
        """Write one batch, retrying until it is written; False if abandoned at exit."""
        rows: dict[Table, list[tuple[Any, ...]]] | None = None
        attempt = 0
        while True:
            try:
                if rows is None:
                    rows = self._rows(batch)
                try:
                    self._insert(rows)
                except _ROW_ERRORS:
                    self._insert_one_by_one(rows)
            except Exception as exc:  # the writer thread must never die
                attempt += 1
                self._note_failure(exc, attempt, len(batch))
                if self._back_off(min(2.0, 0.05 * 2 ** (attempt - 1))):
                    return False
                continue
            if attempt:
                self._note_recovery(attempt)
            return True

    def _rows(self, batch: list[TraceRecord]) -> dict[Table, list[tuple[Any, ...]]]:
        rows: dict[Table, list[tuple[Any, ...]]] = {}
        unusable: list[TraceRecord] = []
        error = ""
        for rec in batch:
            try:
                rows.setdefault(_KIND_TABLES[rec.kind], []).append(_row_tuple(rec))
            except Exception as exc:  # a record built without validation; never retry it
                unusable.append(rec)
                error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if unusable:
            logger.error(
                "trace_records_dropped",
                url=self.url,
                count=len(unusable),
                first=[f"{r.run_id}#{r.seq}" for r in unusable[:5]],
                error=error,
                hint="the record cannot be serialised to JSON",
            )
        return rows

    def _back_off(self, delay: float) -> bool:
        """Wait before a retry (cut short by a new `flush` call); True when the store stops."""
        with self._lock:
            calls = self._flush_calls
            self._work.wait_for(
                lambda: self._stop.is_set() or self._flush_calls != calls, timeout=delay
            )
            return self._stop.is_set()

    def _insert(self, rows: dict[Table, list[tuple[Any, ...]]]) -> None:
        # One prebuilt INSERT per table, executed by the DB-API driver with positional tuples:
        # SQLAlchemy Core's per-row parameter processing was half the writer's time, and the
        # values are already final (JSON columns hold the JSON text the hash was computed on).
        with self._engine.connect() as conn:
            conn.execution_options(**{_BEGIN_IMMEDIATE: True})
            with conn.begin():
                for table, table_rows in rows.items():
                    if table_rows:
                        conn.exec_driver_sql(self._insert_sql(table)[0], table_rows)

    def _insert_sql(self, table: Table) -> tuple[str, tuple[str, ...]]:
        cached = self._insert_cache.get(table.name)
        if cached is None:
            dialect = self._engine.dialect
            columns = tuple(c.name for c in table.columns)
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            quote = dialect.identifier_preparer.quote
            sql = (
                f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
                f"VALUES ({', '.join(mark for _ in columns)})"
            )
            cached = self._insert_cache[table.name] = (sql, columns)
        return cached

    def _insert_one_by_one(self, rows: dict[Table, list[tuple[Any, ...]]]) -> None:
        # A row of the batch can never be written. Write each row in its own transaction, drop
        # the ones that fail on their own and keep the rest. Written rows leave `rows` as we go,
        # so a transient error part way through retries only what is left.
        dropped: list[tuple[str, int]] = []
        error = hint = ""
        for table, table_rows in rows.items():
            while table_rows:
                row = table_rows[-1]
                try:
                    self._insert({table: [row]})
                except _ROW_ERRORS as exc:
                    columns = self._insert_sql(table)[1]
                    run_id, seq = row[columns.index("run_id")], row[columns.index("seq")]
                    dropped.append((str(run_id), int(seq)))
                    error, hint = _describe(exc), _row_error_hint(exc)
                table_rows.pop()
        if dropped:
            logger.error(
                "trace_records_dropped",
                url=self.url,
                count=len(dropped),
                first=[f"{run_id}#{seq}" for run_id, seq in dropped[:5]],
                error=error,
                hint=hint,
            )

    def _note_failure(self, exc: Exception, attempt: int, count: int) -> None:
        with self._lock:
            if self._failing_since is None:
                self._failing_since = time.monotonic()
            self._last_error = exc
        # Log the first failure and then at doubling intervals, not on every retry.
        if attempt & (attempt - 1) == 0:
            logger.warning(
                "trace_store_write_failed",
                url=self.url,
                records=count,
                attempt=attempt,
                error=_describe(exc),
                retrying=True,
            )

    def _note_recovery(self, attempts: int) -> None:
        with self._lock:
            since = self._failing_since
            self._failing_since = None
            self._last_error = None
        logger.info(
            "trace_store_write_recovered",
            url=self.url,
            attempts=attempts,
            failed_for_s=round(time.monotonic() - since, 3) if since else 0.0,
        )

    # -- synchronous database access ---------------------------------------------------------

    @contextmanager
    def _transaction(
        self, action: str, *, write: bool = False, conflict: str | None = None
    ) -> Iterator[Connection]:
        self._check_open()
        try:
            with self._engine.connect() as conn:
                if write:
                    conn.execution_options(**{_BEGIN_IMMEDIATE: True})
                with conn.begin():
                    yield conn
        except sa_exc.SQLAlchemyError as exc:
            raise _store_error(exc, self.url, action, conflict=conflict) from exc

    def _create_schema(self) -> None:
        with self._transaction("creating the trace tables", write=True) as conn:
            if self._postgres:
                # Serialise concurrent creators: DDL races otherwise (duplicate type/table).
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('agentroute.schema'))"))
            for statement in _ddl_statements(self._engine.dialect):
                conn.exec_driver_sql(statement)
            for statement in _ddl_statements(self._engine.dialect, _LEDGER_TABLES):
                conn.exec_driver_sql(statement)
        self._ledger_ready = True

    def _ensure_ledger(self) -> None:
        """Create the budget ledger tables once per store (stores opened with create=False)."""
        if self._ledger_ready:
            return
        with self._transaction("creating the budget ledger tables", write=True) as conn:
            if self._postgres:
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('agentroute.schema'))"))
            for statement in _ddl_statements(self._engine.dialect, _LEDGER_TABLES):
                conn.exec_driver_sql(statement)
        self._ledger_ready = True

    def add_feedback(
        self,
        run_id: str,
        *,
        score: float | None = None,
        label: str | None = None,
        agent: str | None = None,
        comment: str | None = None,
        source: str = "user",
    ) -> FeedbackRecord:
        """Append feedback to a run's chain, committed before returning.

        The next `seq` is allocated under a lock (PostgreSQL advisory lock on the run, SQLite
        `BEGIN IMMEDIATE`), so concurrent feedback from several processes chains correctly.

        Raises:
            RunNotFound: No such run.
            RunNotFinished: The run has no end record yet.
            ValueError: `score` is outside [0, 1], or neither score nor label is given.
            StoreUnavailable: The database is locked or unreachable.
        """
        self.flush()
        with self._transaction(f"adding feedback to run {run_id!r}", write=True) as conn:
            if self._postgres:
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:run_id))"), {"run_id": run_id}
                )
            last = self._last_record(conn, run_id)
            ended = conn.execute(
                select(_RUN_ENDS.c.seq).where(_RUN_ENDS.c.run_id == run_id).limit(1)
            ).first()
            rec = self._next_feedback(
                last,
                ended=ended is not None,
                score=score,
                label=label,
                agent=agent,
                comment=comment,
                source=source,
            )
            conn.execute(insert(_KIND_TABLES["feedback"]), [_row(rec)])
        return rec

    def _last_record(self, conn: Connection, run_id: str) -> TraceRecord:
        last: TraceRecord | None = None
        for kind, table in _KIND_TABLES.items():
            row = conn.execute(
                select(table).where(table.c.run_id == run_id).order_by(table.c.seq.desc()).limit(1)
            ).first()
            if row is not None and (last is None or row.seq > last.seq):
                last = _record(kind, row._mapping)
        if last is None:
            raise _run_not_found(run_id)
        return last

    # -- reading -----------------------------------------------------------------------------

    def list_runs(
        self, *, limit: int = 50, offset: int = 0, status: str | None = None
    ) -> list[RunSummary]:
        """List runs, newest first, with how they ended (`status=None` while running)."""
        self.flush()
        last_end = (
            select(_RUN_ENDS.c.run_id, func.max(_RUN_ENDS.c.seq).label("seq"))
            .group_by(_RUN_ENDS.c.run_id)
            .subquery("last_end")
        )
        end = _RUN_ENDS.alias("run_end")
        query = (
            select(
                _RUNS.c.run_id,
                _RUNS.c.created_at,
                _RUNS.c.task,
                end.c.status,
                end.c.cost_usd,
                end.c.steps,
                end.c.answer,
            )
            .select_from(
                _RUNS.outerjoin(last_end, last_end.c.run_id == _RUNS.c.run_id).outerjoin(
                    end, and_(end.c.run_id == last_end.c.run_id, end.c.seq == last_end.c.seq)
                )
            )
            .order_by(_RUNS.c.created_at.desc(), _RUNS.c.run_id.desc())
            .limit(limit)
            .offset(offset)
        )
        if status is not None:
            query = query.where(end.c.status == status)
        with self._transaction("listing runs") as conn:
            rows = conn.execute(query).all()
        return [_summary(row) for row in rows]

    def get_run(self, run_id: str) -> RunTrace:
        """Return every record of one run, in chain order.

        Raises:
            RunNotFound: No such run.
        """
        records = sorted(self._raw_records(run_id), key=lambda r: r.seq)
        run = next((r for r in records if isinstance(r, RunRecord)), None)
        if run is None:
            msg = f"run {run_id!r} has no start record (list ids with `agentroute runs list`)"
            raise RunNotFound(msg)
        return RunTrace(run=run, records=tuple(records))

    def run_ids(self) -> list[str]:
        """Every run id, oldest first (including runs whose start record is missing)."""
        self.flush()
        every = union_all(*(select(t.c.run_id, t.c.created_at) for t in _CHAINED_TABLES)).subquery(
            "every_record"
        )
        first = func.min(every.c.created_at)
        query = select(every.c.run_id).group_by(every.c.run_id).order_by(first, every.c.run_id)
        with self._transaction("listing run ids") as conn:
            return list(conn.execute(query).scalars())

    def verify(self, run_id: str) -> VerifyReport:
        """Check one run's hash chain; a row that is not a valid record is a problem too.

        Raises:
            RunNotFound: No such run.
        """
        records, unreadable = self._read_records(run_id)
        report = verify_chain(run_id, records)
        if not unreadable:
            return report
        return report.model_copy(update={"ok": False, "problems": [*unreadable, *report.problems]})

    def _raw_records(self, run_id: str) -> list[TraceRecord]:
        records, unreadable = self._read_records(run_id)
        if unreadable:
            msg = (
                f"run {run_id!r} has rows that are not valid records ({unreadable[0]}): the "
                "database was written to outside agentroute; `agentroute runs verify` lists them"
            )
            raise StoreError(msg)
        return records

    def _read_records(self, run_id: str) -> tuple[list[TraceRecord], list[str]]:
        """The run's records as stored, and a problem line for each row that does not parse."""
        self.flush()
        records: list[TraceRecord] = []
        unreadable: list[str] = []
        with self._transaction(f"reading run {run_id!r}") as conn:
            for kind, table in _KIND_TABLES.items():
                for row in conn.execute(select(table).where(table.c.run_id == run_id)):
                    try:
                        records.append(_record(kind, row._mapping))
                    except pydantic_core.ValidationError as exc:
                        first = exc.errors()[0]
                        where = ".".join(str(p) for p in first["loc"])
                        unreadable.append(
                            f"seq {row.seq} ({kind}): the row is not a valid record "
                            f"({where}: {first['msg']}): it was written outside agentroute"
                        )
        if not records and not unreadable:
            raise _run_not_found(run_id)
        return records, unreadable

    # -- learned state -----------------------------------------------------------------------

    def get_state(self, key: str, version: int | None = None) -> StateRecord | None:
        """Return the latest (or a given) version of a learned state, or `None`."""
        query = select(_STATE).where(_STATE.c.key == key)
        if version is None:
            query = query.order_by(_STATE.c.version.desc()).limit(1)
        else:
            query = query.where(_STATE.c.version == version)
        with self._transaction(f"reading state {key!r}") as conn:
            row = conn.execute(query).first()
        return None if row is None else StateRecord.model_validate(dict(row._mapping))

    def put_state(
        self, key: str, value: dict[str, Any], *, expected_version: int | None, note: str = ""
    ) -> StateRecord:
        """Append the next version of a learned state (optimistic concurrency).

        The primary key `(key, version)` makes this race-free across processes: of two writers
        that read the same version, one inserts the next version and the other fails.

        Raises:
            StateConflict: The latest version is not `expected_version`; re-read and retry.
            StoreUnavailable: The database is locked or unreachable.
        """
        expected = expected_version or 0
        lost_race = (
            f"state {key!r} was changed by another writer after version {expected}; "
            "re-read it and apply your change again"
        )
        with self._transaction(f"writing state {key!r}", write=True, conflict=lost_race) as conn:
            current = conn.execute(
                select(func.max(_STATE.c.version)).where(_STATE.c.key == key)
            ).scalar_one_or_none()
            current = current or 0
            if current != expected:
                msg = (
                    f"state {key!r} is at version {current}, not {expected_version}; "
                    "re-read it and apply your change again"
                )
                raise StateConflict(msg)
            rec = StateRecord(
                key=key, version=current + 1, value=value, created_at=time.time(), note=note
            )
            row = dict(rec.__dict__)
            row["value"] = _Encoded(_to_json(rec.value))
            conn.execute(insert(_STATE), [row])
        return rec

    def list_state(self, key: str) -> list[StateRecord]:
        """Every version of a learned state, oldest first."""
        query = select(_STATE).where(_STATE.c.key == key).order_by(_STATE.c.version)
        with self._transaction(f"reading state {key!r}") as conn:
            rows = conn.execute(query).all()
        return [StateRecord.model_validate(dict(row._mapping)) for row in rows]

    # -- shared budget ledgers ---------------------------------------------------------------

    keeps_budgets = True

    def _lock_budget_key(
        self, conn: Connection, key: str, limit_usd: float | None, strong_limit: int | None
    ) -> Any:
        """Create the key's row if missing, then lock it for this transaction."""
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        conn.execute(
            dialect_insert(_BUDGET_KEYS)
            .values(
                key=key,
                limit_usd=limit_usd,
                strong_limit=strong_limit,
                spent_nano=0,
                strong_used=0,
                updated_at=time.time(),
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )
        # PostgreSQL: a row lock serialises every reservation on the key. SQLite: the
        # transaction began with BEGIN IMMEDIATE, which already serialises writers.
        return conn.execute(
            select(_BUDGET_KEYS).where(_BUDGET_KEYS.c.key == key).with_for_update()
        ).one()

    def _open_totals(self, conn: Connection, key: str, now: float) -> tuple[int, int, int]:
        row = conn.execute(
            select(
                func.coalesce(func.sum(_BUDGET_LEDGER.c.amount_nano), 0),
                func.coalesce(func.sum(case((_BUDGET_LEDGER.c.strong, 1), else_=0)), 0),
                func.count(),
            ).where(_BUDGET_LEDGER.c.key == key, _BUDGET_LEDGER.c.expires_at > now)
        ).one()
        return int(row[0]), int(row[1]), int(row[2])

    @staticmethod
    def _key_status(key: str, row: Any, totals: tuple[int, int, int]) -> BudgetKeyStatus:
        return BudgetKeyStatus(
            key=key,
            limit_usd=row.limit_usd,
            strong_limit=row.strong_limit,
            spent_usd=int(row.spent_nano) / 1e9,
            reserved_usd=totals[0] / 1e9,
            strong_used=int(row.strong_used),
            strong_reserved=totals[1],
            open_reservations=totals[2],
        )

    def budget_reserve(
        self,
        key: str,
        *,
        amount_nano: int,
        strong: bool,
        limit_usd: float | None,
        strong_limit: int | None,
        run_id: str,
        ttl_s: float,
    ) -> tuple[int | None, BudgetKeyStatus]:
        """Reserve atomically (row lock in PostgreSQL, `BEGIN IMMEDIATE` in SQLite).

        Raises:
            StoreUnavailable: The database is locked or unreachable.
        """
        self._ensure_ledger()
        now = time.time()
        with self._transaction(f"reserving budget on key {key!r}", write=True) as conn:
            row = self._lock_budget_key(conn, key, limit_usd, strong_limit)
            conn.execute(
                delete(_BUDGET_LEDGER).where(
                    _BUDGET_LEDGER.c.key == key, _BUDGET_LEDGER.c.expires_at <= now
                )
            )
            totals = self._open_totals(conn, key, now)
            before = self._key_status(key, row, totals)
            refused = (
                limit_usd is not None
                and int(row.spent_nano) + totals[0] + amount_nano > round(limit_usd * 1e9)
            ) or (
                strong
                and strong_limit is not None
                and int(row.strong_used) + totals[1] >= strong_limit
            )
            if refused:
                return None, before
            conn.execute(
                update(_BUDGET_KEYS)
                .where(_BUDGET_KEYS.c.key == key)
                .values(limit_usd=limit_usd, strong_limit=strong_limit, updated_at=now)
            )
            result = conn.execute(
                insert(_BUDGET_LEDGER).values(
                    key=key,
                    run_id=run_id,
                    amount_nano=amount_nano,
                    strong=strong,
                    created_at=now,
                    expires_at=now + ttl_s,
                )
            )
            rid = int(result.inserted_primary_key[0])  # type: ignore[index]
        return rid, before

    def budget_settle(
        self, key: str, reservation_id: int, *, actual_nano: int, strong: bool
    ) -> BudgetKeyStatus:
        """Charge the actual cost to the key and delete the reservation, in one transaction.

        Raises:
            StoreUnavailable: The database is locked or unreachable.
        """
        self._ensure_ledger()
        now = time.time()
        with self._transaction(f"settling budget on key {key!r}", write=True) as conn:
            self._lock_budget_key(conn, key, None, None)
            conn.execute(
                delete(_BUDGET_LEDGER).where(
                    _BUDGET_LEDGER.c.id == reservation_id, _BUDGET_LEDGER.c.key == key
                )
            )
            conn.execute(
                update(_BUDGET_KEYS)
                .where(_BUDGET_KEYS.c.key == key)
                .values(
                    spent_nano=_BUDGET_KEYS.c.spent_nano + actual_nano,
                    strong_used=_BUDGET_KEYS.c.strong_used + int(strong),
                    updated_at=now,
                )
            )
            row = conn.execute(select(_BUDGET_KEYS).where(_BUDGET_KEYS.c.key == key)).one()
            return self._key_status(key, row, self._open_totals(conn, key, now))

    def budget_release(self, key: str, reservation_id: int) -> BudgetKeyStatus:
        """Delete a reservation.

        Raises:
            StoreUnavailable: The database is locked or unreachable.
        """
        self._ensure_ledger()
        now = time.time()
        with self._transaction(f"releasing budget on key {key!r}", write=True) as conn:
            conn.execute(
                delete(_BUDGET_LEDGER).where(
                    _BUDGET_LEDGER.c.id == reservation_id, _BUDGET_LEDGER.c.key == key
                )
            )
            row = conn.execute(select(_BUDGET_KEYS).where(_BUDGET_KEYS.c.key == key)).first()
            if row is None:
                return BudgetKeyStatus(key=key)
            return self._key_status(key, row, self._open_totals(conn, key, now))

    def budget_status(self, key: str) -> BudgetKeyStatus:
        """The key's totals (unexpired reservations only)."""
        self._ensure_ledger()
        now = time.time()
        with self._transaction(f"reading budget key {key!r}") as conn:
            row = conn.execute(select(_BUDGET_KEYS).where(_BUDGET_KEYS.c.key == key)).first()
            if row is None:
                return BudgetKeyStatus(key=key)
            return self._key_status(key, row, self._open_totals(conn, key, now))

    def budget_reset(self, key: str) -> None:
        """Delete the key's totals and reservations."""
        self._ensure_ledger()
        with self._transaction(f"resetting budget key {key!r}", write=True) as conn:
            conn.execute(delete(_BUDGET_LEDGER).where(_BUDGET_LEDGER.c.key == key))
            conn.execute(delete(_BUDGET_KEYS).where(_BUDGET_KEYS.c.key == key))


def _summary(row: Any) -> RunSummary:
    """A listed run; a run whose end record does not parse is listed without its end."""
    values = {
        "run_id": row.run_id,
        "created_at": row.created_at,
        "task": row.task,
        "status": row.status,
        "cost_usd": row.cost_usd or 0.0,
        "steps": row.steps or 0,
        "answer": row.answer,
    }
    try:
        return RunSummary.model_validate(values)
    except pydantic_core.ValidationError as exc:
        logger.warning(
            "run_end_unreadable",
            run_id=row.run_id,
            error=str(exc.errors()[0]["msg"]),
            hint="a row was written outside agentroute; `agentroute runs verify` checks the run",
        )
        return RunSummary.model_validate({**values, "status": None, "answer": None})


def _run_not_found(run_id: str) -> RunNotFound:
    return RunNotFound(f"no run {run_id!r} in this store (list ids with `agentroute runs list`)")


if __name__ == "__main__":
    # The same text `python -m agentroute._schemas` writes to stores/schema.sql.
    from agentroute._schemas import generated_files

    print(generated_files()["stores/schema.sql"], end="")
