"""`CachedEmbedder`: embeddings by content hash, persisted, so unchanged texts never re-embed."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from agentroute.routing.embeddings._protocol import Embedder, Matrix

__all__ = ["CachedEmbedder", "default_cache_dir"]


def default_cache_dir() -> Path:
    """`$AGENTROUTE_CACHE` or `~/.cache/agentroute`."""
    import os

    root = os.environ.get("AGENTROUTE_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "agentroute"


class CachedEmbedder:
    """Wraps an embedder with a content-addressed cache (memory, plus a SQLite file if given).

    The key is SHA-256 of the inner embedder's `name` and the text, so changing the model or
    its settings never serves stale vectors, and re-indexing after one text changes embeds
    only that text. If the inner embedder fails part-way, everything embedded before the
    failure is kept.

    Args:
        inner: The embedder to cache.
        path: SQLite file to persist vectors in; `None` = memory only.
        chunk: Texts embedded per call to `inner` (progress and failure granularity).
        progress: Called with (done, total) after each chunk.
        memory_limit: Vectors kept in memory (least recently used are dropped first).
    """

    def __init__(
        self,
        inner: Embedder,
        path: str | Path | None = None,
        *,
        chunk: int = 512,
        progress: Callable[[int, int], None] | None = None,
        memory_limit: int = 50_000,
    ) -> None:
        self.inner = inner
        self.path = Path(path) if path is not None else None
        self.chunk = chunk
        self.progress = progress
        # Recently used vectors; bounded so a large index is not held twice in memory (the
        # file, when given, keeps everything).
        self._mem: OrderedDict[str, Matrix] = OrderedDict()
        self.memory_limit = memory_limit
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.hits = 0
        self.misses = 0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=60)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)"
            )
            self._db.commit()

    @property
    def name(self) -> str:
        """The inner embedder's name (the cache is transparent)."""
        return self.inner.name

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.inner.name}\x00{text}".encode()).hexdigest()

    def embed(self, texts: Sequence[str]) -> Matrix:
        """Return cached vectors, embedding (and storing) only the missing texts."""
        keys = [self._key(t) for t in texts]
        found: dict[str, Matrix] = {}
        with self._lock:
            missing_keys = []
            for k in dict.fromkeys(keys):
                if k in self._mem:
                    found[k] = self._mem[k]
                    self._mem.move_to_end(k)
                else:
                    missing_keys.append(k)
            if missing_keys and self._db is not None:
                for start in range(0, len(missing_keys), 900):
                    part = missing_keys[start : start + 900]
                    marks = ",".join("?" * len(part))
                    rows = self._db.execute(
                        f"SELECT key, vec FROM vectors WHERE key IN ({marks})", part
                    ).fetchall()
                    for k, blob in rows:
                        vec = np.frombuffer(blob, dtype=np.float32)
                        self._remember(k, vec)
                        found[k] = vec
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
        self.hits += len(keys) - len(todo)
        self.misses += len(todo)
        items = list(todo.items())
        for start in range(0, len(items), self.chunk):
            batch = items[start : start + self.chunk]
            vectors = self.inner.embed([t for _, t in batch])
            with self._lock:
                for (k, _), vec in zip(batch, vectors, strict=True):
                    v = np.asarray(vec, dtype=np.float32)
                    self._remember(k, v)
                    found[k] = v
                if self._db is not None:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)",
                        [(k, found[k].tobytes()) for k, _ in batch],
                    )
                    self._db.commit()
            if self.progress is not None:
                self.progress(min(start + self.chunk, len(items)), len(items))
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def _remember(self, key: str, vector: Matrix) -> None:
        self._mem[key] = vector
        if len(self._mem) > self.memory_limit:
            self._mem.popitem(last=False)

    def close(self) -> None:
        """Close the cache file."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
