"""The conformance suite every `TraceStore` backend passes.

Subclass `TraceStoreConformance` in a `test_*.py` module and supply a `store` fixture; the
subclass collects every test below against that backend. `SqlTraceStoreConformance` adds what a
SQL backend must also do (tamper detection, append-only triggers, batching, crash durability,
concurrency); its subclasses supply `url`, a `raw` SQLAlchemy engine on the same database and
the dialect's trigger names.
"""

from __future__ import annotations

import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from agentroute.errors import RunNotFinished, RunNotFound, StateConflict, StoreError
from agentroute.stores import (
    GENESIS_HASH,
    AgentOutputRecord,
    CandidateRecord,
    DecisionRecord,
    FeedbackRecord,
    ModelCallRecord,
    RunEndRecord,
    RunRecord,
    RunStatus,
    SqlTraceStore,
    TraceRecord,
    TraceStore,
)

T0 = 1_700_000_000.0
"""A fixed start time, so ordering by time is deterministic."""

REPO_ROOT = Path(__file__).resolve().parents[2]


def chain(*records: TraceRecord) -> list[TraceRecord]:
    """Number, link and seal one run's records in the given order."""
    out: list[TraceRecord] = []
    prev = GENESIS_HASH
    for seq, rec in enumerate(records):
        sealed: TraceRecord = rec.model_copy(update={"seq": seq, "prev_hash": prev}).sealed()
        out.append(sealed)
        prev = sealed.hash
    return out


def make_run(
    run_id: str,
    *,
    created_at: float = T0,
    task: str = "Where is my refund for order #42?",
    status: RunStatus | None = "completed",
    cost_usd: float = 0.0125,
    steps: int = 2,
    answer: str | None = "Your refund was issued on Monday.",
    decisions: int = 2,
) -> list[TraceRecord]:
    """A sealed run with every record kind; no end record when `status` is None."""
    at = created_at
    records: list[TraceRecord] = [
        RunRecord(
            run_id=run_id,
            seq=0,
            created_at=at,
            task=task,
            router={"agent": {"strategy": "retrieve-rerank", "params": {"k": 3}}},
            registry_hash="f" * 64,
            budget_usd=0.5,
            metadata={"tenant": "acme", "channel": "chat"},
        )
    ]
    for step in range(decisions):
        records.append(
            DecisionRecord(
                run_id=run_id,
                seq=0,
                created_at=at + 0.001 * (step + 1),
                step=step,
                slot="agent",
                strategy="retrieve-rerank",
                strategy_version="2",
                params={"k": 3, "alpha": 0.5},
                chosen=["billing"],
                candidates=[
                    CandidateRecord(name=name, score=score, detail={"similarity": score})
                    for name, score in (("billing", 0.91), ("shipping", 0.42), ("general", 0.1))
                ],
                reason="closest to the billing examples",
                evidence={"query_tokens": 9, "top": ["refund", "order"]},
                latency_ms=0.37,
            )
        )
    records.append(
        ModelCallRecord(
            run_id=run_id,
            seq=0,
            created_at=at + 0.01,
            step=0,
            branch="billing",
            call_index=0,
            model="cheap",
            model_id="openai/gpt-4o-mini",
            messages=[{"role": "user", "content": task}],
            response="Refund issued.",
            input_tokens=120,
            output_tokens=14,
            estimated_cost_usd=0.0001,
            cost_usd=0.00009,
            latency_ms=812.5,
        )
    )
    records.append(
        AgentOutputRecord(
            run_id=run_id,
            seq=0,
            created_at=at + 0.02,
            step=0,
            agent="billing",
            task=task,
            input_hash="a" * 64,
            skills=["refund-policy"],
            model="cheap",
            output="Refund issued.",
        )
    )
    if status is not None:
        records.append(
            RunEndRecord(
                run_id=run_id,
                seq=0,
                created_at=at + 0.03,
                status=status,
                reason="the agent answered",
                answer=answer,
                cost_usd=cost_usd,
                steps=steps,
                error="boom" if status == "failed" else None,
                error_type="AgentError" if status == "failed" else None,
            )
        )
    return chain(*records)


class TraceStoreConformance:
    """The contract of `TraceStore`, run against the backend of each subclass."""

    @pytest.fixture
    def store(self) -> TraceStore:
        """The store under test (supplied by each backend's subclass)."""
        raise NotImplementedError

    # -- round trip --------------------------------------------------------------------------

    def test_round_trip_returns_the_original_records(self, store: TraceStore) -> None:
        """Appending a run with every record kind and reading it back gives equal records."""
        records = make_run("run-1")
        store.append(records)
        trace = store.get_run("run-1")
        assert trace.records == tuple(records)
        assert trace.run == records[0]
        assert trace.run_id == "run-1"
        assert len(trace.decisions) == 2
        assert len(trace.model_calls) == 1
        assert len(trace.outputs) == 1
        assert trace.end is not None
        assert trace.end.status == "completed"

    def test_round_trip_keeps_unicode_and_nested_values(self, store: TraceStore) -> None:
        """Unicode, nested JSON, extreme floats and None survive a round trip unchanged."""
        task = "Rückerstattung für 注文 #42 — 🌍 «ça va?» \\ \" ' \n\ttab"
        records = chain(
            RunRecord(
                run_id="run-ü-🌍",
                seq=0,
                created_at=T0 + 0.123456789,
                task=task,
                metadata={
                    "nested": {"list": [1, 2.5, None, True, "x"], "empty": {}},
                    "tiny": 1e-300,
                    "big": 2**62,
                    "third": 1 / 3,
                    "emoji": "🧾",
                },
                budget_usd=None,
            ),
            DecisionRecord(
                run_id="run-ü-🌍",
                seq=0,
                created_at=T0 + 1,
                step=0,
                slot="model",
                branch="billing",
                strategy="budget-switch",
                outcome="route",
                chosen=["strong"],
                candidates=[CandidateRecord(name="strong"), CandidateRecord(name="cheap", score=0)],
                reason="prix élevé → modèle fort",
                latency_ms=float("inf"),
            ),
            RunEndRecord(
                run_id="run-ü-🌍", seq=0, created_at=T0 + 2, status="completed", answer=""
            ),
        )
        store.append(records)
        assert store.get_run("run-ü-🌍").records == tuple(records)
        assert store.verify("run-ü-🌍").ok

    def test_values_that_are_not_json_native_still_verify(self, store: TraceStore) -> None:
        """Tuples, datetimes and NaN inside JSON fields are stored as JSON and keep the hash."""
        records = chain(
            RunRecord(
                run_id="run-odd",
                seq=0,
                created_at=T0,
                task="odd values",
                metadata={
                    "when": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
                    "pair": (1, "a"),
                    "not_a_number": math.nan,
                },
            ),
            RunEndRecord(run_id="run-odd", seq=0, created_at=T0 + 1, status="completed"),
        )
        store.append(records)
        read = store.get_run("run-odd").records
        assert [r.hash for r in read] == [r.hash for r in records]
        assert [r.compute_hash() for r in read] == [r.hash for r in records]
        assert store.verify("run-odd").ok

    def test_append_of_nothing_is_a_no_op(self, store: TraceStore) -> None:
        """Appending an empty sequence stores nothing and does not fail."""
        store.append([])
        store.flush()
        assert store.run_ids() == []

    # -- verify ------------------------------------------------------------------------------

    def test_verify_is_ok_on_an_untouched_run(self, store: TraceStore) -> None:
        """An untouched, ended run verifies: every link holds and the run is complete."""
        records = make_run("run-1")
        store.append(records)
        report = store.verify("run-1")
        assert report.ok, report.problems
        assert report.complete
        assert report.records == len(records)
        assert report.problems == []

    def test_verify_is_ok_but_incomplete_while_running(self, store: TraceStore) -> None:
        """A run without an end record verifies as ok but not complete."""
        store.append(make_run("run-1", status=None))
        report = store.verify("run-1")
        assert report.ok
        assert not report.complete

    def test_verify_of_an_unknown_run_raises(self, store: TraceStore) -> None:
        """Verifying a run that does not exist raises `RunNotFound`."""
        with pytest.raises(RunNotFound):
            store.verify("nope")

    # -- listing -----------------------------------------------------------------------------

    def test_list_runs_newest_first_with_summaries(self, store: TraceStore) -> None:
        """`list_runs` lists newest first with status, cost, steps and answer from the end."""
        store.append(make_run("old", created_at=T0, cost_usd=0.5, steps=3, answer="a1"))
        store.append(make_run("mid", created_at=T0 + 10, status="failed", answer=None))
        store.append(make_run("new", created_at=T0 + 20, status=None))
        runs = store.list_runs()
        assert [r.run_id for r in runs] == ["new", "mid", "old"]
        new, mid, old = runs
        assert new.status is None
        assert new.cost_usd == 0.0
        assert new.steps == 0
        assert new.answer is None
        assert mid.status == "failed"
        assert old.status == "completed"
        assert old.cost_usd == 0.5
        assert old.steps == 3
        assert old.answer == "a1"
        assert old.created_at == T0
        assert old.task == "Where is my refund for order #42?"

    def test_list_runs_filters_by_status(self, store: TraceStore) -> None:
        """`status=` keeps only runs that ended that way."""
        store.append(make_run("ok-1", created_at=T0))
        store.append(make_run("bad", created_at=T0 + 1, status="failed"))
        store.append(make_run("ok-2", created_at=T0 + 2))
        store.append(make_run("running", created_at=T0 + 3, status=None))
        assert [r.run_id for r in store.list_runs(status="completed")] == ["ok-2", "ok-1"]
        assert [r.run_id for r in store.list_runs(status="failed")] == ["bad"]
        assert store.list_runs(status="step_limit") == []

    def test_list_runs_pages_with_limit_and_offset(self, store: TraceStore) -> None:
        """`limit` and `offset` page through the newest-first list."""
        for i in range(7):
            store.append(make_run(f"run-{i}", created_at=T0 + i))
        assert [r.run_id for r in store.list_runs(limit=3)] == ["run-6", "run-5", "run-4"]
        assert [r.run_id for r in store.list_runs(limit=3, offset=3)] == [
            "run-3",
            "run-2",
            "run-1",
        ]
        assert [r.run_id for r in store.list_runs(limit=3, offset=6)] == ["run-0"]
        assert store.list_runs(offset=7) == []

    def test_list_runs_of_an_empty_store_is_empty(self, store: TraceStore) -> None:
        """A new store lists no runs and no run ids."""
        assert store.list_runs() == []
        assert store.run_ids() == []

    def test_run_ids_are_oldest_first(self, store: TraceStore) -> None:
        """`run_ids` lists every run, oldest first, whatever the append order."""
        store.append(make_run("b", created_at=T0 + 5))
        store.append(make_run("c", created_at=T0 + 9, status=None))
        store.append(make_run("a", created_at=T0))
        assert store.run_ids() == ["a", "b", "c"]
        assert [t.run_id for t in store.iter_runs()] == ["a", "b", "c"]

    def test_get_run_of_an_unknown_run_names_how_to_find_ids(self, store: TraceStore) -> None:
        """`get_run` of an unknown id raises `RunNotFound` with the hint to list ids."""
        store.append(make_run("run-1"))
        with pytest.raises(RunNotFound, match="agentroute runs list") as excinfo:
            store.get_run("run-2")
        assert "run-2" in str(excinfo.value)

    def test_many_interleaved_runs_keep_their_chains(self, store: TraceStore) -> None:
        """Records of 40 runs appended interleaved, in small chunks, come back per run intact."""
        runs = {f"run-{i:02d}": make_run(f"run-{i:02d}", created_at=T0 + i) for i in range(40)}
        longest = max(len(r) for r in runs.values())
        for position in range(longest):
            chunk = [r[position] for r in runs.values() if position < len(r)]
            for start in range(0, len(chunk), 7):
                store.append(chunk[start : start + 7])
        assert store.run_ids() == sorted(runs)
        for run_id, records in runs.items():
            assert store.get_run(run_id).records == tuple(records)
            assert store.verify(run_id).ok

    # -- feedback ----------------------------------------------------------------------------

    def test_feedback_chains_after_the_end_record(self, store: TraceStore) -> None:
        """Feedback gets the next seq, links to the end record's hash, and the run verifies."""
        records = make_run("run-1")
        store.append(records)
        fb = store.add_feedback("run-1", score=0.8, label="resolved", agent="billing", comment="ok")
        assert isinstance(fb, FeedbackRecord)
        assert fb.seq == len(records)
        assert fb.prev_hash == records[-1].hash
        assert fb.hash == fb.compute_hash()
        assert fb.source == "user"
        second = store.add_feedback("run-1", label="misrouted", source="judge")
        assert second.seq == fb.seq + 1
        assert second.prev_hash == fb.hash
        trace = store.get_run("run-1")
        assert trace.feedback == [fb, second]
        assert trace.records[-2:] == (fb, second)
        report = store.verify("run-1")
        assert report.ok, report.problems
        assert report.records == len(records) + 2
        assert store.list_runs()[0].status == "completed"

    def test_feedback_on_an_unknown_run_raises(self, store: TraceStore) -> None:
        """Feedback on a run that does not exist raises `RunNotFound`."""
        with pytest.raises(RunNotFound):
            store.add_feedback("nope", score=1.0)

    def test_feedback_on_a_run_still_running_is_refused_and_not_stored(
        self, store: TraceStore
    ) -> None:
        """A run without its end record takes no feedback: `RunNotFinished`, nothing stored.

        Before, the feedback took the next seq, the run's recorder then wrote a record with the
        same seq, and the run's chain was broken for good.
        """
        records = make_run("run-1", status=None)
        store.append(records)
        with pytest.raises(RunNotFinished, match="has not ended"):
            store.add_feedback("run-1", score=1.0)
        assert store.get_run("run-1").records == tuple(records)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"score": 1.5}, "within"),
            ({"score": -0.1}, "within"),
            ({}, "score .* or a label"),
            ({"comment": "no score"}, "score .* or a label"),
        ],
    )
    def test_invalid_feedback_is_rejected_and_not_stored(
        self, store: TraceStore, kwargs: dict[str, Any], message: str
    ) -> None:
        """A score outside [0, 1], or neither score nor label, raises `ValueError`."""
        records = make_run("run-1")
        store.append(records)
        with pytest.raises(ValueError, match=message):
            store.add_feedback("run-1", **kwargs)
        assert store.get_run("run-1").records == tuple(records)

    # -- learned state -----------------------------------------------------------------------

    def test_state_versions_append_and_read_back(self, store: TraceStore) -> None:
        """`put_state` appends versions 1, 2, 3; `get_state` and `list_state` read them."""
        assert store.get_state("ant/desk") is None
        assert store.list_state("ant/desk") == []
        v1 = store.put_state("ant/desk", {"tau": {"a": 1.0}}, expected_version=None)
        v2 = store.put_state("ant/desk", {"tau": {"a": 1.5}}, expected_version=1, note="step")
        v3 = store.put_state("ant/desk", {"tau": {"a": 1.0}}, expected_version=2, note="rollback")
        assert (v1.version, v2.version, v3.version) == (1, 2, 3)
        assert v2.note == "step"
        assert store.get_state("ant/desk") == v3
        assert store.get_state("ant/desk", version=2) == v2
        assert store.get_state("ant/desk", version=9) is None
        assert store.list_state("ant/desk") == [v1, v2, v3]

    def test_expected_version_zero_means_nothing_read(self, store: TraceStore) -> None:
        """`expected_version=0` behaves like `None` for the first write."""
        assert store.put_state("k", {"x": 1}, expected_version=0).version == 1

    def test_stale_expected_version_raises_state_conflict(self, store: TraceStore) -> None:
        """A writer that read an old version loses: `StateConflict`, and nothing is written."""
        store.put_state("k", {"n": 1}, expected_version=None)
        store.put_state("k", {"n": 2}, expected_version=1)
        with pytest.raises(StateConflict, match="re-read"):
            store.put_state("k", {"n": 99}, expected_version=1)
        with pytest.raises(StateConflict):
            store.put_state("k", {"n": 99}, expected_version=None)
        with pytest.raises(StateConflict):
            store.put_state("k", {"n": 99}, expected_version=5)
        latest = store.get_state("k")
        assert latest is not None
        assert latest.version == 2
        assert latest.value == {"n": 2}

    def test_state_keys_are_independent(self, store: TraceStore) -> None:
        """Versions count per key."""
        store.put_state("a", {"v": 1}, expected_version=None)
        store.put_state("a", {"v": 2}, expected_version=1)
        b = store.put_state("b", {"v": 1}, expected_version=None)
        assert b.version == 1
        assert [s.version for s in store.list_state("a")] == [1, 2]

    def test_store_is_a_context_manager(self, store: TraceStore) -> None:
        """`with store:` returns the store and leaves what was appended readable until then."""
        with store as entered:
            assert entered is store
            entered.append(make_run("run-1"))
            assert entered.verify("run-1").ok


# -- SQL backends ------------------------------------------------------------------------------

KILL_SCRIPT = """
import sys, time
from agentroute.stores import DecisionRecord, RunEndRecord, RunRecord, SqlTraceStore

url, flushed_runs = sys.argv[1], int(sys.argv[2])
store = SqlTraceStore(url, flush_interval_s=0.005, batch_size=64)

def run(i):
    records, prev = [], "0" * 64
    for seq in range(8):
        fields = dict(run_id=f"run-{i:05d}", seq=seq, created_at=time.time(), prev_hash=prev)
        if seq == 0:
            rec = RunRecord(task=f"task {i}", **fields)
        elif seq == 7:
            rec = RunEndRecord(status="completed", answer="done", **fields)
        else:
            rec = DecisionRecord(step=seq, slot="agent", strategy="s", reason="r" * 80, **fields)
        rec = rec.sealed()
        prev = rec.hash
        records.append(rec)
    return records

for i in range(flushed_runs):
    store.append(run(i))
store.flush()
print("FLUSHED", flush=True)
i = flushed_runs
while True:
    for rec in run(i):
        store.append([rec])  # one by one, so batch boundaries split runs
    i += 1
    if i % 50 == 0:
        time.sleep(0.001)
"""

EXIT_SCRIPT = """
import sys, time
from agentroute.stores import RunEndRecord, RunRecord, SqlTraceStore

store = SqlTraceStore(sys.argv[1], flush_interval_s=60)  # only the exit handler flushes
start = RunRecord(run_id="at-exit", seq=0, created_at=time.time(), task="t").sealed()
end = RunEndRecord(
    run_id="at-exit", seq=1, created_at=time.time(), prev_hash=start.hash, status="completed"
).sealed()
store.append([start, end])
"""


class SqlTraceStoreConformance(TraceStoreConformance):
    """What a SQL backend does beyond the contract. Subclasses supply the fixtures below."""

    trigger_names: tuple[str, ...] = ()
    """The append-only triggers on `agentroute_decisions`, dropped to simulate an attacker."""

    @pytest.fixture
    def url(self) -> str:
        """The store URL (supplied by each backend's subclass)."""
        raise NotImplementedError

    @pytest.fixture
    def raw(self) -> sa.Engine:
        """A plain SQLAlchemy engine on the store's database, to poke at rows directly."""
        raise NotImplementedError

    @pytest.fixture
    def make_store(self, url: str) -> Iterator[Callable[..., SqlTraceStore]]:
        """Open stores on `url` (closed after the test)."""
        opened: list[SqlTraceStore] = []

        def make(**kwargs: Any) -> SqlTraceStore:
            kwargs.setdefault("flush_interval_s", 0.005)
            new = SqlTraceStore(url, **kwargs)
            opened.append(new)
            return new

        yield make
        for opened_store in opened:
            opened_store.close()

    @pytest.fixture
    def store(self, make_store: Callable[..., SqlTraceStore]) -> TraceStore:
        """A SQL store on a fresh database."""
        return make_store()

    def drop_append_only_triggers(self, raw: sa.Engine) -> None:
        """What an attacker with database access does first."""
        with raw.begin() as conn:
            for statement in self.trigger_names:
                conn.execute(sa.text(statement))

    # -- tamper evidence ---------------------------------------------------------------------

    def test_verify_detects_an_edited_decision(self, store: TraceStore, raw: sa.Engine) -> None:
        """Rewriting a decision's `reason` in SQL makes `verify` report that seq as edited."""
        store.append(make_run("run-1"))
        store.flush()
        self.drop_append_only_triggers(raw)
        with raw.begin() as conn:
            changed = conn.execute(
                sa.text(
                    "UPDATE agentroute_decisions SET reason = 'routed by hand' "
                    "WHERE run_id = 'run-1' AND seq = 2"
                )
            )
            assert changed.rowcount == 1
        report = store.verify("run-1")
        assert not report.ok
        assert report.problems == [
            "seq 2 (decision): content does not match its hash (edited)",
        ]

    def test_sealed_records_are_not_json_encoded_again_by_the_writer(
        self, store: TraceStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The writer stores the JSON texts `sealed()` kept; only a copied record is re-encoded."""
        from agentroute.stores import _sql

        encoded: list[object] = []
        real = _sql._dump_json

        def counting(value: object, **kwargs: Any) -> bytes:
            encoded.append(value)
            return real(value, **kwargs)

        monkeypatch.setattr(_sql, "_dump_json", counting)
        records = make_run("run-1")
        store.append(records)
        store.flush()
        assert encoded == []
        copied = [rec.model_copy() for rec in make_run("run-2")]
        store.append(copied)
        store.flush()
        assert encoded  # no kept texts on copies: the writer encoded their JSON columns
        assert store.get_run("run-1").records == tuple(records)
        assert store.get_run("run-2").records == tuple(copied)
        assert store.verify("run-1").ok
        assert store.verify("run-2").ok

    def test_a_record_copied_after_sealing_is_stored_as_copied(self, store: TraceStore) -> None:
        """A sealed record copied with new content but the old hash is stored with the new content.

        The JSON texts kept by `sealed()` must not outlive a copy: otherwise the store would
        write the old, matching content and hide the edit from `verify`.
        """
        records = make_run("run-1")
        edited = records[1].model_copy(update={"evidence": {"routed": "by hand"}})
        assert edited.hash == records[1].hash
        store.append([records[0], edited, *records[2:]])
        store.flush()
        stored = store.get_run("run-1").records[1]
        assert isinstance(stored, DecisionRecord)
        assert stored.evidence == {"routed": "by hand"}
        report = store.verify("run-1")
        assert report.problems == ["seq 1 (decision): content does not match its hash (edited)"]

    def test_verify_detects_a_deleted_row(self, store: TraceStore, raw: sa.Engine) -> None:
        """Deleting a middle row makes `verify` report the gap in the sequence."""
        store.append(make_run("run-1"))
        store.flush()
        self.drop_append_only_triggers(raw)
        with raw.begin() as conn:
            conn.execute(
                sa.text("DELETE FROM agentroute_decisions WHERE run_id = 'run-1' AND seq = 1")
            )
        report = store.verify("run-1")
        assert not report.ok
        # Exactly one problem: the gap. Later records are not reported again.
        assert report.problems == ["seq 1 missing (next is 2): records were deleted"]

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE agentroute_decisions SET reason = 'x' WHERE run_id = 'run-1'",
            "DELETE FROM agentroute_decisions WHERE run_id = 'run-1'",
            "UPDATE agentroute_runs SET task = 'x'",
            "DELETE FROM agentroute_run_ends",
            "DELETE FROM agentroute_feedback",
        ],
    )
    def test_append_only_triggers_reject_updates_and_deletes(
        self, store: TraceStore, raw: sa.Engine, statement: str
    ) -> None:
        """The database itself refuses UPDATE and DELETE on the chained tables."""
        store.append(make_run("run-1"))
        store.add_feedback("run-1", score=1.0)
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), raw.begin() as conn:
            conn.execute(sa.text(statement))
        assert store.verify("run-1").ok

    # -- writing -----------------------------------------------------------------------------

    @pytest.mark.slow
    def test_twenty_thousand_records_are_batched_and_all_land(
        self, store: TraceStore, raw: sa.Engine
    ) -> None:
        """20,000 records appended in small calls are all committed by one flush."""
        runs = [make_run(f"run-{i:04d}", created_at=T0 + i, decisions=4) for i in range(2500)]
        for records in runs:
            store.append(records)
        store.flush()
        with raw.connect() as conn:
            decisions = conn.execute(sa.text("SELECT count(*) FROM agentroute_decisions")).scalar()
            ended = conn.execute(sa.text("SELECT count(*) FROM agentroute_run_ends")).scalar()
        assert decisions == 4 * 2500
        assert ended == 2500
        assert sum(len(r) for r in runs) == 2500 * 8 == 20_000
        assert store.get_run("run-1234").records == tuple(runs[1234])

    def test_a_duplicate_seq_is_dropped_and_the_rest_of_the_batch_lands(
        self, store: TraceStore
    ) -> None:
        """Re-appending stored records logs and drops only them; new records in the batch land."""
        first = make_run("run-1")
        store.append(first)
        store.flush()
        second = make_run("run-2", created_at=T0 + 1)
        with capture_logs() as logs:
            store.append([*first[:3], *second])  # one batch: three duplicates, one new run
            store.flush()
        dropped = [e for e in logs if e["event"] == "trace_records_dropped"]
        assert len(dropped) == 1
        assert dropped[0]["count"] == 3
        assert dropped[0]["log_level"] == "error"
        assert dropped[0]["hint"] == "a record with the same (run_id, seq) is already stored"
        assert "Where is my refund" not in repr(logs)  # never log record contents
        assert store.get_run("run-1").records == tuple(first)
        assert store.get_run("run-2").records == tuple(second)

    def test_a_value_the_database_refuses_is_dropped_alone_and_the_store_goes_on(
        self, store: TraceStore
    ) -> None:
        """A seed past 64 bits is refused by the database (or its driver): only that row goes.

        The rest of the batch lands, the log says a value was refused (not "duplicate"), and
        later writes still work. Before, SQLite's driver raised `OverflowError`, which the writer
        retried forever, so every later write and read of the store failed.
        """
        good = make_run("run-1")
        bad = make_run("run-bad", created_at=T0 + 1)
        bad[0] = bad[0].model_copy(update={"seed": 2**64})
        with capture_logs() as logs:
            store.append([*bad[:1], *good])
            store.flush()
        dropped = [e for e in logs if e["event"] == "trace_records_dropped"]
        assert [e["first"] for e in dropped] == [["run-bad#0"]]
        assert dropped[0]["hint"] == "the database refused a value of the record (see error)"
        assert store.get_run("run-1").records == tuple(good)
        later = make_run("run-2", created_at=T0 + 2)
        store.append(later)
        store.flush()
        assert store.get_run("run-2").records == tuple(later)

    def test_appending_something_else_than_records_raises_at_once(self, store: TraceStore) -> None:
        """A stray object is refused by `append` itself, so the writer never meets it."""
        with pytest.raises(TypeError, match="RunRecord"):
            store.append([{"run_id": "x"}])  # type: ignore[list-item]
        assert store.run_ids() == []

    def test_a_record_that_cannot_be_serialised_is_dropped_alone(self, store: TraceStore) -> None:
        """An unvalidated record with an unserialisable value is logged and dropped, not retried."""
        good = make_run("run-1")
        bad = good[1].model_copy(update={"run_id": "run-bad", "evidence": {"x": object()}})
        with capture_logs() as logs:
            store.append([bad, *good])
            store.flush()
        dropped = [e for e in logs if e["event"] == "trace_records_dropped"]
        assert [e["first"] for e in dropped] == [["run-bad#1"]]
        assert store.get_run("run-1").records == tuple(good)

    def test_a_forged_row_is_reported_by_verify_not_raised(
        self, store: TraceStore, raw: sa.Engine
    ) -> None:
        """A row inserted behind agentroute's back that is not a valid record is a problem.

        `verify` reports it (and fails), `get_run` raises a `StoreError` that names it, and
        `list_runs` still lists the store's runs. Before, all three raised pydantic's
        `ValidationError`, `list_runs` for every run in the store.
        """
        records = make_run("run-1")
        store.append(records)
        store.flush()
        with raw.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO agentroute_run_ends (run_id, seq, created_at, prev_hash, hash, "
                    "status, reason, answer, cost_usd, steps, error, error_type) VALUES "
                    "('run-1', :seq, 0, 'x', 'y', 'refunded', '', 'forged', 0, 0, NULL, NULL)"
                ),
                {"seq": len(records)},
            )
        report = store.verify("run-1")
        assert not report.ok
        assert f"seq {len(records)} (run_end): the row is not a valid record" in report.problems[0]
        with pytest.raises(StoreError, match="not valid records"):
            store.get_run("run-1")
        (listed,) = store.list_runs()
        assert listed.run_id == "run-1"
        assert listed.status is None

    def test_a_second_store_sees_committed_records(
        self, store: TraceStore, make_store: Callable[..., SqlTraceStore]
    ) -> None:
        """Records one store flushed are read, and chained onto, by another store."""
        records = make_run("run-1")
        store.append(records)
        store.flush()
        other = make_store()
        assert other.get_run("run-1").records == tuple(records)
        fb = other.add_feedback("run-1", score=0.5)
        assert fb.seq == len(records)
        assert store.verify("run-1").ok

    def test_concurrent_feedback_from_two_stores_chains_without_gaps(
        self, store: TraceStore, make_store: Callable[..., SqlTraceStore]
    ) -> None:
        """Feedback added concurrently from two stores gets distinct, gapless seqs."""
        records = make_run("run-1")
        store.append(records)
        store.flush()
        writers = [make_store(), make_store()]
        errors: list[BaseException] = []

        def give_feedback(writer: TraceStore) -> None:
            try:
                for _ in range(10):
                    writer.add_feedback("run-1", score=0.5)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=give_feedback, args=(w,)) for w in writers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        report = store.verify("run-1")
        assert report.ok, report.problems
        assert report.records == len(records) + 20

    def test_concurrent_put_state_never_loses_an_update(
        self, make_store: Callable[..., SqlTraceStore]
    ) -> None:
        """Two writers incrementing a counter with retries end at versions 1..N, no lost update."""
        per_writer = 15
        conflicts = [0, 0]
        errors: list[BaseException] = []

        def increment(index: int, writer: TraceStore) -> None:
            done = 0
            try:
                while done < per_writer:
                    latest = writer.get_state("counter")
                    count = latest.value["count"] if latest else 0
                    try:
                        writer.put_state(
                            "counter",
                            {"count": count + 1, "by": index},
                            expected_version=latest.version if latest else None,
                        )
                    except StateConflict:
                        conflicts[index] += 1
                        continue
                    done += 1
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        writers = [make_store(), make_store()]
        threads = [threading.Thread(target=increment, args=(i, w)) for i, w in enumerate(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        versions = writers[0].list_state("counter")
        assert [v.version for v in versions] == list(range(1, 2 * per_writer + 1))
        assert [v.value["count"] for v in versions] == list(range(1, 2 * per_writer + 1))
        assert {v.value["by"] for v in versions} == {0, 1}

    def test_state_written_by_one_store_conflicts_in_another(
        self, make_store: Callable[..., SqlTraceStore]
    ) -> None:
        """Two stores that read the same version: the second write raises `StateConflict`."""
        a, b = make_store(), make_store()
        a.put_state("k", {"v": 0}, expected_version=None)
        seen_by_a = a.get_state("k")
        seen_by_b = b.get_state("k")
        assert seen_by_a is not None
        assert seen_by_b is not None
        a.put_state("k", {"v": "a"}, expected_version=seen_by_a.version)
        with pytest.raises(StateConflict):
            b.put_state("k", {"v": "b"}, expected_version=seen_by_b.version)
        assert [s.value["v"] for s in b.list_state("k")] == [0, "a"]

    # -- lifecycle ---------------------------------------------------------------------------

    def test_close_is_idempotent_and_later_use_raises(
        self, make_store: Callable[..., SqlTraceStore]
    ) -> None:
        """`close` flushes; a second close is a no-op; appending or reading afterwards raises."""
        first = make_store()
        first.append(make_run("run-1"))
        first.close()
        first.close()
        with pytest.raises(StoreError, match="closed"):
            first.append(make_run("run-2"))
        with pytest.raises(StoreError, match="closed"):
            first.get_run("run-1")
        assert make_store().verify("run-1").ok

    def test_records_survive_kill_9_once_flushed(
        self, url: str, raw: sa.Engine, tmp_path: Path
    ) -> None:
        """After SIGKILL, every flushed run is complete and whatever else landed verifies."""
        flushed_runs = 30
        stderr_path = tmp_path / "stderr.txt"
        with stderr_path.open("w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-c", KILL_SCRIPT, url, str(flushed_runs)],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                cwd=REPO_ROOT,
            )
        assert proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
        reader.start()
        try:
            flushed = _wait_for_line(lines, "FLUSHED", timeout=60)
            if flushed:
                # Let part of the un-flushed tail reach the database, then kill mid-stream.
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and _count_runs(raw) <= flushed_runs + 5:
                    time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
            reader.join()
            proc.stdout.close()
        assert flushed, stderr_path.read_text()
        assert proc.returncode == -signal.SIGKILL
        with SqlTraceStore(url, create=False) as after:
            run_ids = after.run_ids()
            assert run_ids[:flushed_runs] == [f"run-{i:05d}" for i in range(flushed_runs)]
            assert len(run_ids) > flushed_runs + 5
            for i, run_id in enumerate(run_ids):
                report = after.verify(run_id)
                assert report.ok, (run_id, report.problems)
                if i < flushed_runs:
                    assert report.complete
                    assert report.records == 8

    def test_a_normal_exit_flushes_what_was_appended(self, url: str) -> None:
        """A process that appends and exits without flush or close still commits its records."""
        done = subprocess.run(
            [sys.executable, "-c", EXIT_SCRIPT, url],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        with SqlTraceStore(url, create=False) as after:
            report = after.verify("at-exit")
        assert report.ok
        assert report.complete


def _read_lines(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line.strip())


def _wait_for_line(lines: queue.Queue[str], wanted: str, *, timeout: float) -> bool:
    """Wait until the process printed `wanted` on a line of its own; False on timeout."""
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            if lines.get(timeout=remaining) == wanted:
                return True
        except queue.Empty:
            return False
    return False


def _count_runs(raw: sa.Engine) -> int:
    with raw.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM agentroute_runs")).scalar_one())
