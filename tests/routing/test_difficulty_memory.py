"""The kNN scorer's online memory lives in the trace store: versioned, shared, no lost update.

Uses the dependency-free hashing embedder, so the tests need no model files.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import agentroute as ar
from agentroute.errors import StoreError
from agentroute.routing._budget_switch import BudgetSwitch
from agentroute.routing._difficulty import EnsembleScorer, KnnScorer, LogisticScorer
from agentroute.routing._difficulty_features import HashingEmbedder
from agentroute.routing._difficulty_memory import (
    MEMORY_FORMAT,
    KnnMemoryBook,
    MemoryItem,
    merge_items,
    round_vector,
)
from agentroute.stores import InMemoryTraceStore, SqlTraceStore, StateRecord, TraceStore

from ._switch import model_decision, switch_router

KEY = "budget-switch/test-memory"


def _data(n: int = 40) -> tuple[list[str], list[float], list[float]]:
    texts = [f"proof of theorem {i}" if i % 2 else f"say hello to {i}" for i in range(n)]
    cheap = [0.0 if i % 2 else 1.0 for i in range(n)]
    return texts, cheap, [1.0] * n


def _knn(**options: Any) -> KnnScorer:
    return KnnScorer(HashingEmbedder(), k=5, temperature=0.0, **options).fit(*_data())


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TraceStore]:
    """An in-memory store, or a SQLite store in a temporary file."""
    if request.param == "memory":
        yield InMemoryTraceStore()
        return
    sql = SqlTraceStore(f"sqlite:///{tmp_path / 'memory.db'}")
    yield sql
    sql.close()


def test_a_new_scorer_on_the_same_store_and_key_starts_with_the_learned_memory(
    store: TraceStore,
) -> None:
    """Outcomes one scorer learns are in a second scorer bound later to the same store and key.

    The second scorer scores the learned prompt exactly as the first does (the stored vectors
    are the ones the first scorer uses), and a third scorer on another key sees nothing.
    """
    first = _knn()
    first.bind_store(store, KEY)
    first.update("a brand new riddle about ducks", cheap=0.0, strong=1.0)
    first.update("another riddle about geese", cheap=1.0, strong=0.0)
    second = _knn()
    second.bind_store(store, KEY)
    assert [i.text for i in second.online_items] == [
        "a brand new riddle about ducks",
        "another riddle about geese",
    ]
    assert second.memory_version == first.memory_version == 2
    assert second.size == first.size == 42
    query = ["a brand new riddle about ducks"]
    assert second.score(query)[0].value == first.score(query)[0].value
    assert second.score(query)[0].evidence["neighbours"][0]["text"] == query[0]
    other = _knn()
    other.bind_store(store, "budget-switch/other")
    assert other.online_items == []


def test_every_update_is_a_new_version_with_its_note_and_counts(store: TraceStore) -> None:
    """Each learned outcome appends a version; `versions()` lists them with item counts."""
    scorer = _knn()
    scorer.bind_store(store, KEY)
    for i in range(3):
        scorer.update(f"question {i}", strong=1.0)
    book = scorer.memory_book
    assert book is not None
    versions = book.versions()
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert [v["kind"] for v in versions] == ["snapshot", "delta", "delta"]
    assert [v["items"] for v in versions] == [1, 1, 1]  # a delta stores only what it added
    assert [v["added"] for v in versions] == [1, 2, 3]
    assert versions[-1]["note"] == "learn 1 outcome(s)"
    rec = store.get_state(KEY)
    assert rec is not None
    assert rec.value["format"] == MEMORY_FORMAT
    assert rec.value["embedder"] == "hashing:256"


def _learn(book: KnnMemoryBook, text: str, *, limit: int) -> None:
    item = MemoryItem.new(text, np.ones(4), cheap=0.0, strong=1.0)
    book.commit(
        lambda current: merge_items(current, [item], embedder="test", limit=limit),
        note="learn",
    )


def test_snapshots_every_compact_every_versions_bound_what_is_stored(store: TraceStore) -> None:
    """Deltas between periodic snapshots: storage grows with outcomes, not outcomes x memory.

    With a 5-item memory and a snapshot every 4 versions, 12 outcomes store snapshots at
    versions 1, 5 and 9 and one item per delta; every version, read cold by a new book or
    incrementally by the writer's own, holds the newest 5 outcomes as of that version.
    """
    writer = KnnMemoryBook(store, KEY, compact_every=4)
    for i in range(12):
        _learn(writer, f"outcome {i}", limit=5)
    versions = writer.versions()
    assert [v["kind"] == "snapshot" for v in versions] == [i % 4 == 0 for i in range(12)]
    assert [v["items"] for v in versions] == [1, 1, 1, 1, 5, 1, 1, 1, 5, 1, 1, 1]
    assert versions[-1]["dropped"] == 7
    for version in range(1, 13):
        expected = [f"outcome {i}" for i in range(max(0, version - 5), version)]
        cold = KnnMemoryBook(store, KEY, compact_every=4).load(version)
        assert cold is not None
        assert [item.text for item in cold.items] == expected, version
    latest = writer.load()
    assert latest is not None
    assert [item.text for item in latest.items] == [f"outcome {i}" for i in range(7, 12)]


def test_a_missing_version_in_a_delta_chain_is_a_clear_error() -> None:
    """A delta whose snapshot is gone (a store pruned by hand) names the missing version."""
    store = InMemoryTraceStore()
    _learn(KnnMemoryBook(store, KEY), "first", limit=5)
    _learn(KnnMemoryBook(store, KEY), "second", limit=5)
    delta = store.get_state(KEY)
    assert delta is not None
    other = InMemoryTraceStore()
    other.put_state(KEY, {"format": MEMORY_FORMAT}, expected_version=None)
    other.put_state(KEY, delta.value, expected_version=1)
    other.put_state(KEY, dict(delta.value, base=7), expected_version=2)
    with pytest.raises(ValueError, match="lacks version 7"):
        KnnMemoryBook(other, KEY).load()


def test_outcomes_learned_before_binding_are_written_at_bind(store: TraceStore) -> None:
    """Outcomes learned before `bind_store` are written at bind time.

    They are merged with what other writers stored meanwhile, and reach those writers.
    """
    writer = _knn()
    writer.bind_store(store, KEY)
    writer.update("stored first", cheap=1.0)
    offline = _knn()
    offline.update("learned offline", strong=0.0)
    offline.bind_store(store, KEY)
    assert sorted(i.text for i in offline.online_items) == ["learned offline", "stored first"]
    assert writer.refresh() is True
    assert sorted(i.text for i in writer.online_items) == ["learned offline", "stored first"]
    assert writer.refresh() is False


class _RacingStore(InMemoryTraceStore):
    """Lets another writer commit just before this store's next `put_state` of the key."""

    def __init__(self) -> None:
        super().__init__()
        self.intruder: KnnScorer | None = None

    def put_state(
        self, key: str, value: dict[str, Any], *, expected_version: int | None, note: str = ""
    ) -> StateRecord:
        intruder, self.intruder = self.intruder, None
        if intruder is not None:
            intruder.update("the intruder's outcome", strong=1.0)
        return super().put_state(key, value, expected_version=expected_version, note=note)


def test_a_writer_that_loses_a_race_re_reads_and_keeps_both_outcomes() -> None:
    """A writer that loses a race re-applies its outcome to the newer version.

    Another writer commits between our read and our write; the memory ends with both
    outcomes, once each.
    """
    store = _RacingStore()
    ours, theirs = _knn(), _knn()
    ours.bind_store(store, KEY)
    theirs.bind_store(store, KEY)
    store.intruder = theirs
    ours.update("our outcome", cheap=0.0, strong=1.0)
    book = ours.memory_book
    assert book is not None
    assert book.conflicts == 1
    texts = [i.text for i in ours.online_items]
    assert sorted(texts) == ["our outcome", "the intruder's outcome"]
    assert ours.memory_version == 2


def test_concurrent_writers_lose_no_outcome(store: TraceStore) -> None:
    """Concurrent writers on one store and key lose no outcome.

    Three threads, each with its own scorer, learn 15 outcomes each at once: the latest
    version holds all 45, each once.
    """
    scorers = [_knn() for _ in range(3)]
    for s in scorers:
        s.bind_store(store, KEY)
    barrier = threading.Barrier(len(scorers))
    errors: list[BaseException] = []

    def learn(idx: int) -> None:
        barrier.wait()
        try:
            for i in range(15):
                scorers[idx].update(f"writer {idx} outcome {i}", strong=float(i % 2))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=learn, args=(i,)) for i in range(len(scorers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    latest = KnnMemoryBook(store, KEY).load()
    assert latest is not None
    texts = [i.text for i in latest.items]
    assert len(texts) == len(set(texts)) == 45
    assert latest.version == 45
    assert latest.meta["added"] == 45


def test_memory_limit_keeps_the_newest_outcomes_and_counts_the_dropped(
    store: TraceStore,
) -> None:
    """With `memory_limit=3`, five outcomes leave the newest three, stored and in use."""
    scorer = _knn(memory_limit=3)
    scorer.bind_store(store, KEY)
    for i in range(5):
        scorer.update(f"outcome {i}", cheap=1.0)
    assert [i.text for i in scorer.online_items] == ["outcome 2", "outcome 3", "outcome 4"]
    assert scorer.size == 40 + 3
    latest = KnnMemoryBook(store, KEY).load()
    assert latest is not None
    assert latest.meta["dropped"] == 2


def test_a_scorer_with_another_embedder_re_embeds_the_stored_prompts() -> None:
    """A reader with another embedder re-embeds the stored prompts.

    Vectors stored by a 256-dimension embedder are replaced by a 64-dimension reader's, which
    can then score and write to the memory in its own vector space.
    """
    store = InMemoryTraceStore()
    writer = _knn()
    writer.bind_store(store, KEY)
    writer.update("proof of a lemma", cheap=0.0, strong=1.0)
    reader = KnnScorer(HashingEmbedder(64), k=5).fit(*_data())
    reader.bind_store(store, KEY)
    assert reader.online_items[0].vector.shape == (64,)
    assert reader.score(["proof of a lemma"])[0].evidence["neighbours"][0]["similarity"] > 0.99
    reader.update("say hello again", cheap=1.0)
    rec = store.get_state(KEY)
    assert rec is not None
    assert rec.value["embedder"] == "hashing:64"
    assert rec.value["meta"]["reembedded_from"] == "hashing:256"


def test_an_unfitted_scorer_with_a_stored_memory_can_score() -> None:
    """A scorer never fitted on a file, bound to a store holding outcomes, is fitted."""
    store = InMemoryTraceStore()
    writer = _knn()
    writer.bind_store(store, KEY)
    writer.update("proof of a lemma", cheap=0.0, strong=1.0)
    fresh = KnnScorer(HashingEmbedder(), k=1)
    assert not fresh.fitted
    fresh.bind_store(store, KEY)
    assert fresh.fitted
    score = fresh.score(["proof of a lemma"])[0]
    assert (score.p_cheap, score.p_strong, score.value) == (0.0, 1.0, 1.0)


class _BrokenStore(InMemoryTraceStore):
    """Fails every `put_state` while `broken` is set."""

    broken = False

    def put_state(
        self, key: str, value: dict[str, Any], *, expected_version: int | None, note: str = ""
    ) -> StateRecord:
        if self.broken:
            msg = "the database is down"
            raise StoreError(msg)
        return super().put_state(key, value, expected_version=expected_version, note=note)


def test_an_outcome_learned_while_the_store_is_down_is_written_with_the_next_one() -> None:
    """An outcome learned while the store is down is stored with the next update.

    The failing update raises StoreError but keeps the outcome in use and pending.
    """
    store = _BrokenStore()
    scorer = _knn()
    scorer.bind_store(store, KEY)
    store.broken = True
    with pytest.raises(StoreError):
        scorer.update("learned while down", strong=1.0)
    assert [i.text for i in scorer.online_items] == ["learned while down"]
    store.broken = False
    scorer.update("learned after", strong=0.0)
    latest = KnnMemoryBook(store, KEY).load()
    assert latest is not None
    assert [i.text for i in latest.items] == ["learned while down", "learned after"]


def test_outcomes_from_before_a_failed_bind_are_written_with_the_next_update() -> None:
    """A bind whose write fails keeps the unbound outcomes pending: the next update stores them.

    A `refresh()` in between keeps them in use too.
    """
    store = _BrokenStore()
    scorer = _knn()
    scorer.update("learned unbound", strong=1.0)
    store.broken = True
    with pytest.raises(StoreError):
        scorer.bind_store(store, KEY)
    store.broken = False
    writer = _knn()
    writer.bind_store(store, KEY)
    writer.update("someone else's", cheap=1.0)
    assert scorer.refresh()
    assert [i.text for i in scorer.online_items] == ["someone else's", "learned unbound"]
    scorer.update("learned after", strong=0.0)
    latest = KnnMemoryBook(store, KEY).load()
    assert latest is not None
    assert [i.text for i in latest.items] == [
        "someone else's",
        "learned unbound",
        "learned after",
    ]


def test_binding_again_writes_nothing_and_revives_no_dropped_outcome(store: TraceStore) -> None:
    """Re-binding to the same store and key (each `Router.compile`) is a no-op.

    A scorer re-bound after other writers pushed its outcome out of a 3-item memory neither
    writes a version nor brings the dropped outcome back.
    """
    first = _knn(memory_limit=3)
    first.bind_store(store, KEY)
    first.update("a", strong=1.0)
    other = _knn(memory_limit=3)
    other.bind_store(store, KEY)
    for text in ("b", "c", "d"):
        other.update(text, strong=1.0)
    version = store.get_state(KEY)
    assert version is not None
    first.bind_store(store, KEY)
    latest = store.get_state(KEY)
    assert latest is not None
    assert latest.version == version.version
    fresh = _knn(memory_limit=3)
    fresh.bind_store(store, KEY)
    assert [i.text for i in fresh.online_items] == ["b", "c", "d"]


def test_a_writer_with_another_limit_writes_a_snapshot(store: TraceStore) -> None:
    """Readers agree on the memory when writers use different limits: a limit change snapshots."""
    small = _knn(memory_limit=2)
    small.bind_store(store, KEY)
    for text in ("a", "b", "c"):
        small.update(text, strong=1.0)
    large = _knn(memory_limit=5)
    large.bind_store(store, KEY)
    large.update("d", strong=1.0)
    book = KnnMemoryBook(store, KEY)
    assert book.versions()[-1]["kind"] == "snapshot"
    cold = book.load()
    assert cold is not None
    assert [i.text for i in cold.items] == [i.text for i in large.online_items] == ["b", "c", "d"]


def test_the_ensemble_binds_its_knn_memory_and_replays_it_into_the_logistic_member() -> None:
    """The ensemble binds its kNN member's memory and replays it into the logistic member.

    The logistic member takes steps on each stored outcome once (its weights move, and a
    refresh with nothing new leaves them unchanged).
    """
    store = InMemoryTraceStore()
    writer = _knn()
    writer.bind_store(store, KEY)
    for i in range(3):
        writer.update(f"proof of lemma {i}", cheap=0.0, strong=1.0)
    ensemble = EnsembleScorer(HashingEmbedder(), weight=0.5).fit(*_data())
    before = ensemble.logistic._w.copy()
    ensemble.bind_store(store, KEY)
    assert len(ensemble.knn.online_items) == 3
    after = ensemble.logistic._w.copy()
    assert not np.allclose(before, after)
    assert ensemble.refresh() is False
    np.testing.assert_array_equal(ensemble.logistic._w, after)
    ensemble.update("one more", cheap=1.0)
    assert len(ensemble.knn.online_items) == 4


def _switch_router(store: TraceStore) -> tuple[ar.Router, KnnScorer]:
    scorer = _knn()
    return _router_with(store, BudgetSwitch.threshold(scorer, t=0.6, key=KEY)), scorer


def _router_with(store: TraceStore, switch: BudgetSwitch) -> ar.Router:
    router = switch_router(switch, store=store)
    router.compile()
    return router


def test_router_feedback_lands_in_the_store_and_a_second_router_routes_with_it(
    store: TraceStore,
) -> None:
    """Router feedback is stored under the switch's key and used by a later router.

    A router compiled later on the same store starts with the outcome and shows it as a
    neighbour in its decision evidence.
    """
    router, scorer = _switch_router(store)
    res = router.run_sync("riddle of the sphinx")
    asyncio.run(router.feedback(res.run_id, score=0.0))
    assert [i.text for i in scorer.online_items] == ["riddle of the sphinx"]
    later, later_scorer = _switch_router(store)
    assert [i.text for i in later_scorer.online_items] == ["riddle of the sphinx"]
    again = later.run_sync("riddle of the sphinx")
    decision = model_decision(later, again.run_id)
    first = decision.evidence["scorer_evidence"]["neighbours"][0]
    assert first["text"] == "riddle of the sphinx"
    assert decision.evidence["threshold_source"] == "params"


@pytest.mark.parametrize("kind", ["knn", "ensemble"])
def test_each_decision_records_the_memory_version_it_was_scored_with(
    store: TraceStore, kind: str
) -> None:
    """A decision's evidence names the kNN memory version its score was computed from.

    Feedback between two decisions stores a new memory version: the two decisions record
    different versions, each equal to the memory's version when the scorer ran (0 = bound,
    nothing stored yet). Exact replay still matches: it compares decisions, not evidence.
    """
    scorer: KnnScorer | EnsembleScorer = (
        _knn() if kind == "knn" else EnsembleScorer(HashingEmbedder()).fit(*_data())
    )
    knn = scorer if isinstance(scorer, KnnScorer) else scorer.knn
    router = _router_with(store, BudgetSwitch.threshold(scorer, t=0.6, key=KEY))
    seen: list[int] = []
    real_score = scorer.score

    def spy(texts: Any) -> Any:
        seen.append(knn.memory_version)
        return real_score(texts)

    scorer.score = spy  # type: ignore[method-assign]

    first = router.run_sync("riddle of the sphinx")
    asyncio.run(router.feedback(first.run_id, score=0.0))
    second = router.run_sync("riddle of the sphinx")
    before, after = model_decision(router, first.run_id), model_decision(router, second.run_id)
    assert seen == [0, 1]
    assert before.evidence["memory_version"] == 0
    assert after.evidence["memory_version"] == 1
    assert KnnMemoryBook(store, KEY).latest_version() == 1
    knn_evidence = after.evidence["scorer_evidence"]
    knn_evidence = knn_evidence if kind == "knn" else knn_evidence["knn"]
    assert knn_evidence["unstored_outcomes"] == 0
    report = ar.replay_sync(second.run_id, router)
    assert report.mode == "exact"
    assert report.identical


def test_a_score_names_the_stored_version_and_counts_outcomes_it_does_not_hold() -> None:
    """While an outcome's write has failed, scores name the last stored version plus 1 unstored.

    So an audit can tell that the memory which decided was that version and something more;
    once the next write stores it, the new version is named and nothing is unstored.
    """
    store = _BrokenStore()
    scorer = _knn()
    scorer.bind_store(store, KEY)
    scorer.update("stored first", strong=1.0)
    store.broken = True
    with pytest.raises(StoreError):
        scorer.update("learned while down", strong=1.0)
    during = scorer.score(["a riddle"])[0]
    assert (during.memory_version, during.evidence["unstored_outcomes"]) == (1, 1)
    store.broken = False
    scorer.update("learned after", strong=0.0)
    after = scorer.score(["a riddle"])[0]
    assert (after.memory_version, after.evidence["unstored_outcomes"]) == (2, 0)


def test_scorers_without_a_stored_memory_record_no_memory_version() -> None:
    """Logistic scores, an unbound kNN scorer's scores and cold starts record `None`."""
    logistic = LogisticScorer(HashingEmbedder()).fit(*_data())
    assert logistic.score(["a riddle"])[0].memory_version is None
    unbound = _knn()
    assert unbound.score(["a riddle"])[0].memory_version is None
    unbound.update("a riddle", strong=1.0)
    score = unbound.score(["a riddle"])[0]
    assert score.memory_version is None
    assert score.evidence["unstored_outcomes"] == 1
    for switch in (
        BudgetSwitch.threshold(logistic, t=0.6),
        BudgetSwitch.threshold(KnnScorer(HashingEmbedder()), t=0.6, cold_start="cheap"),
    ):
        router = _router_with(InMemoryTraceStore(), switch)
        run = router.run_sync("riddle of the sphinx")
        decision = model_decision(router, run.run_id)
        assert "memory_version" in decision.evidence
        assert decision.evidence["memory_version"] is None


_CHILD = """
import sys
from agentroute.routing._difficulty import KnnScorer
from agentroute.routing._difficulty_features import HashingEmbedder
from agentroute.stores import SqlTraceStore

texts = [f"proof of theorem {i}" if i % 2 else f"say hello to {i}" for i in range(40)]
cheap = [0.0 if i % 2 else 1.0 for i in range(40)]
scorer = KnnScorer(HashingEmbedder(), k=5, temperature=0.0).fit(texts, cheap, [1.0] * 40)
store = SqlTraceStore(sys.argv[1])
scorer.bind_store(store, sys.argv[2])
print(len(scorer.online_items), repr(scorer.score(["a riddle about ducks"])[0].value))
scorer.update("learned by the child", strong=1.0)
store.close()
"""


def test_a_new_process_on_the_same_sqlite_file_starts_with_the_memory(tmp_path: Path) -> None:
    """A separate Python process on the same SQLite file and key starts with the memory.

    It scores exactly as the parent does, and its own outcome reaches the parent.
    """
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    store = SqlTraceStore(url)
    scorer = _knn()
    scorer.bind_store(store, KEY)
    scorer.update("a riddle about ducks", cheap=0.0, strong=1.0)
    expected = scorer.score(["a riddle about ducks"])[0].value
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, url, KEY],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    count, value = child.stdout.split()
    assert int(count) == 1
    assert float(value) == expected
    assert scorer.refresh() is True
    assert [i.text for i in scorer.online_items] == ["a riddle about ducks", "learned by the child"]
    store.close()


@pytest.mark.postgres
def test_two_postgres_handles_learning_at_once_lose_no_outcome(pg_url: str) -> None:
    """Two PostgreSQL store handles learning at once lose no outcome.

    Two threads, each with its own scorer and store handle, learn 20 outcomes each at once:
    the latest version holds all 40.
    """
    stores = [SqlTraceStore(pg_url), SqlTraceStore(pg_url)]
    scorers = [_knn(), _knn()]
    for scorer, store in zip(scorers, stores, strict=True):
        scorer.bind_store(store, KEY)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def learn(idx: int) -> None:
        barrier.wait()
        try:
            for i in range(20):
                scorers[idx].update(f"pg writer {idx} outcome {i}", cheap=float(i % 2))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=learn, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    latest = KnnMemoryBook(stores[0], KEY).load()
    assert latest is not None
    assert len({i.text for i in latest.items}) == len(latest.items) == 40
    for s in stores:
        s.close()


def test_the_writer_reads_one_version_per_commit_not_its_whole_chain() -> None:
    """A book that wrote the newest version reuses it: each later commit reads only the head.

    Without that, every feedback update re-read the snapshot and every delta since it (up to
    `compact_every` reads and a 2,000-item decode per outcome).
    """
    store = InMemoryTraceStore()
    writer = KnnMemoryBook(store, KEY, compact_every=64)
    _learn(writer, "outcome 0", limit=50)
    reads: list[int | None] = []
    real_get = store.get_state

    def counting_get(key: str, version: int | None = None) -> Any:
        reads.append(version)
        return real_get(key, version)

    store.get_state = counting_get  # type: ignore[method-assign]
    for i in range(1, 20):
        reads.clear()
        _learn(writer, f"outcome {i}", limit=50)
        assert reads == [None], (i, reads)
    latest = KnnMemoryBook(store, KEY).load()
    assert latest is not None
    assert [item.text for item in latest.items] == [f"outcome {i}" for i in range(20)]


def test_an_update_to_a_full_memory_preps_only_its_new_row(
    store: TraceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At `memory_limit`, an update preps (centres, normalises) one row, not the whole memory.

    So does a reader taking in another writer's outcome (`refresh`). The rows kept equal the
    whole online memory prepped at once, after the fitted rows.
    """
    writer, reader = _knn(memory_limit=3), _knn(memory_limit=3)
    writer.bind_store(store, KEY)
    reader.bind_store(store, KEY)
    for i in range(3):
        writer.update(f"outcome {i}", cheap=1.0)
    reader.refresh()
    prepped: dict[str, list[int]] = {"writer": [], "reader": []}
    for name, scorer in (("writer", writer), ("reader", reader)):
        prep = scorer._prep

        def counting_prep(vectors: Any, rows: list[int] = prepped[name], prep: Any = prep) -> Any:
            rows.append(len(vectors))
            return prep(vectors)

        monkeypatch.setattr(scorer, "_prep", counting_prep)
    for i in range(3, 8):
        writer.update(f"outcome {i}", cheap=0.0, strong=1.0)
        assert reader.refresh()
    assert prepped == {"writer": [1] * 5, "reader": [1] * 5}
    for scorer in (writer, reader):
        online = scorer.online_items
        assert [item.text for item in online] == ["outcome 5", "outcome 6", "outcome 7"]
        whole = scorer._base.vectors, KnnScorer._prep(scorer, np.stack([i.vector for i in online]))
        assert np.array_equal(scorer._mem.vectors, np.vstack(whole))
        assert scorer._mem.texts[40:] == [item.text for item in online]
        assert scorer._mem.cheap[40:].tolist() == [0.0] * 3


def test_an_outcome_whose_vector_changed_gets_its_row_prepped_again() -> None:
    """Rows are reused only for an unchanged outcome: a new vector under the same id is re-prepped.

    (A memory re-embedded by a writer with another embedder keeps the outcomes' ids.)
    """
    scorer = _knn()
    for i in range(3):
        scorer.update(f"outcome {i}", cheap=1.0)
    items = scorer.online_items
    moved = [items[0], replace(items[1], vector=round_vector(-items[1].vector)), items[2]]
    scorer._set_online(moved)
    whole = scorer._base.vectors, scorer._prep(np.stack([i.vector for i in moved]))
    assert np.array_equal(scorer._mem.vectors, np.vstack(whole))


def test_a_reader_and_a_writer_re_embed_a_foreign_memory_alike() -> None:
    """Loading (`KnnScorer` binding) and merging (`merge_items`) share one re-embedding step.

    Both turn vectors stored by another embedder into this embedder's, rounded as the store
    keeps them; merging without a way to re-embed is refused.
    """
    store = InMemoryTraceStore()
    writer = _knn()
    writer.bind_store(store, KEY)
    writer.update("proof of a lemma", cheap=0.0, strong=1.0)
    writer.update("say hello again", cheap=1.0)
    reader = KnnScorer(HashingEmbedder(64), k=5).fit(*_data())
    reader.bind_store(store, KEY)
    snapshot = KnnMemoryBook(store, KEY).load()
    assert snapshot is not None
    merged = merge_items(
        snapshot, [], embedder="hashing:64", limit=10, reembed=HashingEmbedder(64).embed
    )
    expected = round_vector(HashingEmbedder(64).embed(["proof of a lemma", "say hello again"]))
    for items in (reader.online_items, merged.items):
        assert np.array_equal(np.stack([i.vector for i in items]), expected)
    with pytest.raises(ValueError, match="no embedder was given"):
        merge_items(snapshot, [], embedder="hashing:64", limit=10)
