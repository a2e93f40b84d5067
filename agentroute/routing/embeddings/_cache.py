"""`CachedEmbedder`: embeddings by content hash, persisted, so unchanged texts never re-embed."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import structlog

from agentroute.routing.embeddings._protocol import Embedder, Matrix

__all__ = ["CachedEmbedder", "default_cache_dir"]

_log = structlog.get_logger(__name__)


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
        query_limit: Query vectors kept by `embed_queries` (memory only, least recently used
            dropped first).

    A cache file that cannot be opened (not a SQLite database, or in a directory that cannot
    be created) is logged as a warning naming it, and vectors are then cached in memory only.
    """

    def __init__(
        self,
        inner: Embedder,
        path: str | Path | None = None,
        *,
        chunk: int = 512,
        progress: Callable[[int, int], None] | None = None,
        memory_limit: int = 50_000,
        query_limit: int = 1024,
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
        # Queries rarely repeat: they get their own small LRU and are never written to the
        # file, which would otherwise grow by one row per distinct query forever.
        self._queries: OrderedDict[str, Matrix] = OrderedDict()
        self.query_limit = query_limit
        if self.path is not None:
            self._db = self._open(self.path)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection | None:
        """The cache file's connection; `None` (memory only, with a warning) when unusable."""
        db: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(path), check_same_thread=False, timeout=60)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)"
            )
            db.commit()
        except (OSError, sqlite3.Error) as exc:
            if db is not None:
                db.close()
            _log.warning(
                "embedding cache file unusable; caching in memory only. Delete or move the "
                "file (it is rebuilt), or pass another cache path",
                path=str(path),
                error=f"{type(exc).__name__}: {exc}",
            )
            return None
        return db

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

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        """Embed search queries, caching them in a bounded in-memory LRU, never in the file.

        The file is only read (a query equal to an already stored text is served from it);
        writing every distinct query there would grow it without bound.

        Args:
            texts: The queries.

        Returns:
            One row per query, as `embed` returns them.
        """
        keys = [self._key(t) for t in texts]
        found: dict[str, Matrix] = {}
        with self._lock:
            for k in keys:
                vec = self._queries.get(k)
                if vec is not None:
                    self._queries.move_to_end(k)
                    found[k] = vec
            missing = [k for k in dict.fromkeys(keys) if k not in found]
            if missing and self._db is not None:
                marks = ",".join("?" * len(missing[:900]))
                rows = self._db.execute(
                    f"SELECT key, vec FROM vectors WHERE key IN ({marks})", missing[:900]
                ).fetchall()
                for k, blob in rows:
                    found[k] = np.frombuffer(blob, dtype=np.float32)
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
        self.hits += len(keys) - len(todo)
        self.misses += len(todo)
        if todo:
            vectors = self.inner.embed(list(todo.values()))
            with self._lock:
                for k, vec in zip(todo, vectors, strict=True):
                    v = np.asarray(vec, dtype=np.float32)
                    found[k] = v
                    self._queries[k] = v
                    while len(self._queries) > self.query_limit:
                        self._queries.popitem(last=False)
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
