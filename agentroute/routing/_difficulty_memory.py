"""The kNN scorer's online memory and its versioned home in the trace store.

Outcomes a `KnnScorer` learns from feedback (`update`) are its *online memory*; the prompts it
was fitted on are not part of it (they come from the training file, which every process reads
itself). The online memory lives under one key of the trace store's learned state
(`TraceStore.get_state/put_state/list_state`), like the ant colony's pheromone tables: each
write appends the next version. Most versions are *deltas* holding only the outcomes that write
added, on top of the last *snapshot* (named by `base`); every `compact_every`-th version (and any
write that re-embeds the memory) is a snapshot of the whole memory. So storage grows with the
outcomes learned, not with outcomes × memory size, and reading a version takes at most
`compact_every` point reads (fewer when the book already holds an older version of the chain).

Writers never lose each other's outcomes: a writer reads version v, adds its *new items* (each
with a unique id) to what it read and writes v+1 with `expected_version=v`; when another writer
got there first the store raises `StateConflict`, and the writer re-reads and adds the same items
to the newer memory (`KnnMemoryBook.commit`). Items are deduplicated by id, so a retry never
stores an outcome twice. The memory keeps the newest `limit` items; older ones are dropped
(counted in `meta.dropped`).

Each item stores its prompt (cut to `TEXT_LIMIT` characters, for evidence and for re-embedding
under another embedder) and its embedding rounded to float16 (base64), so a new process does
not have to embed the memory again. The writer uses the rounded vectors itself, so every process
scores with exactly the same memory.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from agentroute.routing._state_book import StateBook
from agentroute.stores import TraceStore

__all__ = ["MEMORY_FORMAT", "TEXT_LIMIT", "KnnMemoryBook", "MemoryItem", "MemorySnapshot"]


MEMORY_FORMAT = "agentroute.knn-memory/1"
"""Format tag of the stored value."""

TEXT_LIMIT = 2000
"""Characters of each prompt kept in the stored memory."""


def round_vector(vector: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """A vector as it reads back from the store (float16 precision, as float32)."""
    return np.asarray(vector, dtype=np.float32).astype(np.float16).astype(np.float32)


@dataclass(frozen=True, eq=False)
class MemoryItem:
    """One outcome learned from feedback.

    Attributes:
        id: Unique id (deduplicates retried writes).
        text: The prompt, cut to `TEXT_LIMIT` characters.
        cheap: Observed quality of the cheap tier's answer (`None` = not observed).
        strong: Observed quality of the strong tier's answer (`None` = not observed).
        vector: The prompt's embedding (not centred), float16 precision.
        at: When it was learned (Unix seconds).
    """

    id: str
    text: str
    cheap: float | None
    strong: float | None
    vector: npt.NDArray[np.float32]
    at: float

    @classmethod
    def new(
        cls, text: str, vector: npt.ArrayLike, *, cheap: float | None, strong: float | None
    ) -> MemoryItem:
        """A new item with a fresh id, the current time and a rounded vector."""
        return cls(
            id=uuid.uuid4().hex,
            text=text[:TEXT_LIMIT],
            cheap=cheap,
            strong=strong,
            vector=round_vector(np.ravel(np.asarray(vector))),
            at=time.time(),
        )

    def to_value(self) -> dict[str, Any]:
        """JSON-ready form (the vector as base64 float16)."""
        raw = np.asarray(self.vector, dtype=np.float16).tobytes()
        return {
            "id": self.id,
            "text": self.text,
            "cheap": self.cheap,
            "strong": self.strong,
            "vector": base64.b64encode(raw).decode("ascii"),
            "at": round(self.at, 3),
        }

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> MemoryItem:
        """Read one stored item back.

        Raises:
            ValueError: The item is malformed.
        """
        try:
            raw = base64.b64decode(str(value["vector"]))
            vector = np.frombuffer(raw, dtype=np.float16).astype(np.float32)
            return cls(
                id=str(value["id"]),
                text=str(value["text"]),
                cheap=None if value.get("cheap") is None else float(value["cheap"]),
                strong=None if value.get("strong") is None else float(value["strong"]),
                vector=vector,
                at=float(value.get("at", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"malformed kNN memory item: {exc}"
            raise ValueError(msg) from exc


@dataclass
class MemorySnapshot:
    """The online memory at one version.

    Attributes:
        items: Oldest first.
        embedder: Name of the embedder that made the vectors.
        version: Store version this snapshot was read at (0 = never stored).
        meta: Counters (`added`, `dropped`).
        limit: Most items kept (the newest); 0 = no limit recorded.
        base: Version of the stored snapshot this version builds on (its own version for a
            snapshot; 0 = never stored).
    """

    items: list[MemoryItem]
    embedder: str
    version: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    limit: int = 0
    base: int = 0

    def to_value(self, *, since: int = 0) -> dict[str, Any]:
        """JSON-ready value for `TraceStore.put_state`: the whole memory, or a delta.

        Args:
            since: 0 for a snapshot; otherwise the version of the snapshot this delta builds on,
                and only the items not already stored since that snapshot are given.
        """
        value: dict[str, Any] = {
            "format": MEMORY_FORMAT,
            "kind": "delta" if since else "snapshot",
            "embedder": self.embedder,
            "limit": self.limit,
            "items": [item.to_value() for item in self.items],
            "meta": self.meta,
        }
        if since:
            value["base"] = since
        return value

    @classmethod
    def from_value(cls, value: Mapping[str, Any], version: int) -> MemorySnapshot:
        """Read a stored snapshot back (a delta gives just its own items; see `KnnMemoryBook`).

        Raises:
            ValueError: The value is not a kNN memory.
        """
        if value.get("format") != MEMORY_FORMAT:
            msg = f"not a kNN memory (format {value.get('format')!r})"
            raise ValueError(msg)
        items = [MemoryItem.from_value(v) for v in value.get("items", [])]
        base = int(value["base"]) if value.get("kind") == "delta" else version
        return cls(
            items,
            str(value.get("embedder", "")),
            version,
            dict(value.get("meta", {})),
            int(value.get("limit", 0)),
            base,
        )


def items_for(
    snapshot: MemorySnapshot,
    embedder: str,
    reembed: Callable[[Sequence[str]], Any] | None,
) -> list[MemoryItem]:
    """The snapshot's items, in `embedder`'s vector space.

    As stored when `embedder` made their vectors; otherwise `reembed` (texts → vectors) embeds
    their texts again, rounded as the store keeps vectors.

    Raises:
        ValueError: The vectors come from another embedder and `reembed` is `None`.
    """
    items = list(snapshot.items)
    if snapshot.embedder == embedder or not items:
        return items
    if reembed is None:
        msg = (
            f"kNN memory vectors come from {snapshot.embedder!r}, not {embedder!r}, "
            "and no embedder was given to re-embed them"
        )
        raise ValueError(msg)
    vectors = np.asarray(reembed([item.text for item in items]), dtype=np.float32)
    return [replace(i, vector=round_vector(v)) for i, v in zip(items, vectors, strict=True)]


def merge_items(
    snapshot: MemorySnapshot | None,
    new: Sequence[MemoryItem],
    *,
    embedder: str,
    limit: int,
    reembed: Callable[[Sequence[str]], Any] | None = None,
) -> MemorySnapshot:
    """`snapshot` (or an empty memory) plus the items of `new` it lacks, newest `limit` kept.

    A pure function of its inputs, so a writer that lost a race applies it again to the newer
    snapshot. When the stored vectors come from another embedder, `reembed` (texts → vectors)
    replaces them so the memory stays in one vector space.
    """
    old = items_for(snapshot, embedder, reembed) if snapshot is not None else []
    meta: dict[str, Any] = (
        dict(snapshot.meta) if snapshot is not None else {"added": 0, "dropped": 0}
    )
    if snapshot is not None and snapshot.embedder != embedder and old:
        meta["reembedded_from"] = snapshot.embedder
    seen = {item.id for item in old}
    fresh = [item for item in new if item.id not in seen]
    items = old + fresh
    dropped = max(0, len(items) - limit)
    meta["added"] = int(meta.get("added", 0)) + len(fresh)
    meta["dropped"] = int(meta.get("dropped", 0)) + dropped
    return MemorySnapshot(
        items[dropped:],
        embedder,
        snapshot.version if snapshot else 0,
        meta,
        limit,
        snapshot.base if snapshot else 0,
    )


class KnnMemoryBook(StateBook):
    """A kNN scorer's online memory in a trace store: load, commit, list versions.

    Args:
        store: Any `TraceStore` (in memory, SQLite, PostgreSQL).
        key: State key, e.g. `budget-switch/memory`.
        max_retries: Re-reads after a lost race before giving up on one commit.
        compact_every: Versions per snapshot: the others are deltas. Higher stores less and
            reads more (a load reads up to this many versions). 64 keeps a load of a cold book
            within tens of milliseconds on SQLite while storing a 2,000-item memory whole only
            once per 64 outcomes.
    """

    def __init__(
        self, store: TraceStore, key: str, *, max_retries: int = 20, compact_every: int = 64
    ) -> None:
        if compact_every < 1:
            msg = f"compact_every must be >= 1, got {compact_every}"
            raise ValueError(msg)
        super().__init__(store, key, max_retries=max_retries)
        self.compact_every = compact_every
        self._last: MemorySnapshot | None = None

    def latest_version(self) -> int:
        """The newest stored version (0 when nothing is stored)."""
        rec = self.store.get_state(self.key)
        return 0 if rec is None else rec.version

    def load(self, version: int | None = None) -> MemorySnapshot | None:
        """The memory at the latest (or a given) version, or `None` when nothing is stored.

        A delta version is read with its snapshot and the deltas between them; versions this
        book read before are not read again.

        Raises:
            StoreError: The store failed.
            ValueError: The stored value is not a kNN memory, or a version of its chain is
                missing.
        """
        rec = self.store.get_state(self.key, version)
        if rec is None:
            return None
        head = MemorySnapshot.from_value(rec.value, rec.version)
        if head.base == head.version:
            self._last = head
            return head
        last = self._last
        if last is not None and last.base == head.base and last.version == head.version:
            return last  # what this book wrote or read last is still the newest version
        if last is not None and last.base == head.base and last.version < head.version:
            items, start = list(last.items), last.version + 1
        else:
            items, start = self._read(head.base).items, head.base + 1
        for between in range(start, head.version):
            items.extend(self._read(between).items)
        items.extend(head.items)
        # The chain's items are newest last; ids repeat only if a retried write got through
        # twice, which `expected_version` prevents, but a reader should not count them twice.
        unique = list({item.id: item for item in items}.values())
        kept = unique[-head.limit :] if head.limit else unique
        memory = MemorySnapshot(kept, head.embedder, head.version, head.meta, head.limit, head.base)
        self._last = memory
        return memory

    def _read(self, version: int) -> MemorySnapshot:
        rec = self.store.get_state(self.key, version)
        if rec is None:
            msg = f"kNN memory {self.key!r} lacks version {version}, which later versions build on"
            raise ValueError(msg)
        return MemorySnapshot.from_value(rec.value, rec.version)

    def commit(
        self, change: Callable[[MemorySnapshot | None], MemorySnapshot], note: str
    ) -> MemorySnapshot:
        """Apply `change` to the latest version and store the result as the next version.

        `change` must be a pure function of the snapshot it is given (`None` when nothing is
        stored): after a lost race it is applied again to the newer version, so no writer's
        outcomes are lost. The next version is a delta of the items `change` added, or a
        snapshot every `compact_every` versions and whenever `change` re-embedded the memory.

        Raises:
            StateConflict: More than `max_retries` races lost in a row.
            StoreError: The store failed.
        """

        def attempt() -> MemorySnapshot:
            current = self.load()
            new = change(current)
            next_version = (current.version if current is not None else 0) + 1
            # A snapshot when the memory was re-embedded or its limit changed: a delta is read
            # back on top of the old snapshot, trimmed to the delta's limit.
            delta = (
                current is not None
                and current.embedder == new.embedder
                and current.limit == new.limit
                and next_version - current.base < self.compact_every
            )
            if delta and current is not None:
                known = {item.id for item in current.items}
                added = [item for item in new.items if item.id not in known]
                value = replace(new, items=added).to_value(since=current.base)
            else:
                value = new.to_value()
            rec = self.store.put_state(
                self.key,
                value,
                expected_version=current.version if current is not None else None,
                note=note,
            )
            new.version = rec.version
            new.base = current.base if delta and current is not None else rec.version
            self._last = new
            return new

        return self.retrying(attempt, "writing")

    def versions(self) -> list[dict[str, Any]]:
        """Every version, oldest first.

        Each as `{version, created_at, note, kind, items, added, dropped}`: `kind` is
        `snapshot` or `delta`, `items` the items stored in that version.
        """
        out = []
        for rec in self.store.list_state(self.key):
            meta = rec.value.get("meta", {})
            out.append(
                {
                    "version": rec.version,
                    "created_at": rec.created_at,
                    "note": rec.note,
                    "kind": rec.value.get("kind", "snapshot"),
                    "items": len(rec.value.get("items", [])),
                    "added": meta.get("added", 0),
                    "dropped": meta.get("dropped", 0),
                }
            )
        return out
