"""`SqlTraceStore` on PostgreSQL: the conformance suites, URLs and an unreachable server.

The server and a schema per test come from the `pg_url` fixture (tests/conftest.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from agentroute.errors import StoreError, StoreUnavailable
from agentroute.stores import SqlTraceStore, open_store

from .conformance import SqlTraceStoreConformance, make_run

pytestmark = pytest.mark.postgres

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/test"


class TestPostgresTraceStore(SqlTraceStoreConformance):
    trigger_names = ("DROP TRIGGER agentroute_decisions_append_only ON agentroute_decisions",)

    @pytest.fixture
    def url(self, pg_url: str) -> str:
        """A PostgreSQL URL on the test's own schema."""
        return pg_url

    @pytest.fixture
    def raw(self, pg_url: str) -> Iterator[sa.Engine]:
        """A plain SQLAlchemy engine on the test's schema."""
        engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
        yield engine
        engine.dispose()

    def test_truncate_is_rejected_too(self, store: SqlTraceStore, raw: sa.Engine) -> None:
        """TRUNCATE, which skips row triggers, is rejected by a statement trigger."""
        store.append(make_run("run-1"))
        store.flush()
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), raw.begin() as conn:
            conn.execute(sa.text("TRUNCATE agentroute_decisions"))
        assert store.verify("run-1").ok

    def test_opening_twice_keeps_one_set_of_triggers(self, url: str, raw: sa.Engine) -> None:
        """`create=True` is idempotent: reopening adds no second trigger or table."""
        SqlTraceStore(url).close()
        SqlTraceStore(url).close()
        with raw.connect() as conn:
            triggers = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_trigger "
                    "WHERE tgrelid = 'agentroute_decisions'::regclass AND NOT tgisinternal"
                )
            ).scalar()
        assert triggers == 2


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_every_postgres_scheme_is_accepted(pg_url: str, scheme: str) -> None:
    """`postgresql://`, `postgres://` and `postgresql+psycopg://` open the same store."""
    url = pg_url.replace("postgresql://", f"{scheme}://", 1)
    with SqlTraceStore(url) as store:
        store.append(make_run("run-1"))
        assert store.verify("run-1").ok
        assert store.url.startswith(f"{scheme}://")


def test_the_password_is_masked_in_the_url() -> None:
    """`store.url` never shows the password (nor a `password=` query parameter)."""
    store = SqlTraceStore(
        "postgresql://alice:s3cret@127.0.0.1:1/db?password=other", create=False, timeout=1
    )
    try:
        assert "s3cret" not in store.url
        assert "other" not in store.url
        assert store.url.startswith("postgresql://alice:***@127.0.0.1:1/db")
        assert "s3cret" not in repr(store)
    finally:
        store.close()


def test_an_unreachable_server_raises_store_unavailable_at_open() -> None:
    """Opening a store on a closed port raises `StoreUnavailable` naming the URL, quickly."""
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:1") as excinfo:
        SqlTraceStore(UNREACHABLE, timeout=2)
    assert time.monotonic() - started < 5
    assert isinstance(excinfo.value.__cause__, sa.exc.OperationalError)


def test_an_unreachable_server_fails_flush_and_reads_without_losing_records() -> None:
    """With `create=False`, appends buffer; `flush` and reads raise `StoreUnavailable` in time."""
    store = SqlTraceStore(UNREACHABLE, create=False, timeout=1)
    records = make_run("run-1")
    store.append(records)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=f"{len(records)} buffered") as excinfo:
        store.flush()
    assert "127.0.0.1:1" in str(excinfo.value)
    assert "Connection refused" in str(excinfo.value)
    with pytest.raises(StoreUnavailable):
        store.list_runs()
    with pytest.raises(StoreUnavailable, match="locked or unreachable"):
        store.get_state("k")
    assert time.monotonic() - started < 8
    with pytest.raises(StoreUnavailable):
        store.close()  # cannot flush: the store stays open, the records stay buffered
    store._shutdown()  # give up on the records, as the exit handler would


def test_open_store_opens_postgres_urls(pg_url: str) -> None:
    """`open_store` hands PostgreSQL URLs to `SqlTraceStore`."""
    store = open_store(pg_url)
    try:
        assert isinstance(store, SqlTraceStore)
    finally:
        store.close()
    with pytest.raises(StoreError, match="closed"):
        store.run_ids()


async def test_nul_characters_in_a_run_are_stored_and_verify(pg_url: str) -> None:
    """An agent output with NUL bytes (PostgreSQL rejects them in text) still lands whole.

    The recorder replaces NUL before sealing, so the chain verifies on PostgreSQL too.
    """
    import agentroute as ar
    from agentroute.testing import ScriptedModelClient

    registry = ar.Registry()
    registry.model("m", "x/m", input_price_per_mtok=1.0, output_price_per_mtok=1.0)

    @registry.agent
    async def echo(ctx: ar.AgentContext, task: str) -> str:
        """Echoes with a NUL."""
        return "before\x00after " + await ctx.complete(task)

    store = SqlTraceStore(pg_url)
    try:
        router = ar.Router(
            registry, agent=ar.Static("echo"), store=store, client=ScriptedModelClient()
        )
        result = await router.run("hello\x00world")
        trace = router.trace(result.run_id)
        assert trace.run.task == "hello\ufffdworld"
        assert trace.outputs[0].output is not None
        assert "\x00" not in trace.outputs[0].output
        assert store.verify(result.run_id).ok
    finally:
        store.close()
