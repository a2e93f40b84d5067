"""`RunRecorder`: seals a run's records into its hash chain and hands them to the store."""

from __future__ import annotations

import asyncio
import contextvars
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from agentroute.stores import GENESIS_HASH, RunEndRecord, TraceRecord, TraceStore

__all__ = ["RunRecorder", "add_capture_sink", "remove_capture_sink", "scrub_text"]

log = structlog.get_logger(__name__)

_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone UTF-16 surrogate: not encodable as UTF-8, so neither hashable nor storable."""

Sink = Callable[[TraceRecord], None]

_capture_sinks: contextvars.ContextVar[tuple[Sink, ...]] = contextvars.ContextVar(
    "agentroute_capture_sinks", default=()
)


def add_capture_sink(sink: Sink) -> contextvars.Token[tuple[Sink, ...]]:
    """Send every record sealed in this context to `sink` too (see `testing.capture_traces`)."""
    return _capture_sinks.set((*_capture_sinks.get(), sink))


def remove_capture_sink(token: contextvars.Token[tuple[Sink, ...]]) -> None:
    """Undo `add_capture_sink`."""
    _capture_sinks.reset(token)


def scrub_text(text: str) -> str:
    """`text` with NUL characters and lone UTF-16 surrogates replaced by U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
    return text


def _clean(value: Any) -> Any:
    # PostgreSQL rejects NUL in text, and no database takes a lone UTF-16 surrogate (half an
    # emoji from a client that cut a string): a refused row would break the run's chain, and a
    # surrogate cannot even be hashed. Replace both before sealing, so the hash covers exactly
    # what every backend stores.
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


class RunRecorder:
    """Chains one run's records (seq, prev_hash, hash) and appends them to the store.

    One recorder per run, in the process that runs it, so the sequence needs no coordination.
    Thread-safe: sync agents record from worker threads.
    """

    def __init__(self, run_id: str, store: TraceStore) -> None:
        self.run_id = run_id
        self.store = store
        self._lock = threading.Lock()
        self._seq = 0
        self._prev = GENESIS_HASH
        self._sinks = _capture_sinks.get()
        self._listeners: list[asyncio.Queue[TraceRecord]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ended = False

    def listen(self, queue: asyncio.Queue[TraceRecord]) -> None:
        """Also put every record on `queue` (for `Router.stream`)."""
        self._loop = asyncio.get_running_loop()
        self._listeners.append(queue)

    def record(self, cls: type[Any], **fields: Any) -> Any:
        """Build, seal and append one record of type `cls`; return it.

        After the run's `RunEndRecord`, records are dropped (and `None` returned): an
        abandoned agent thread or a late callback must not extend a finished run's chain.
        """
        fields = {k: _clean(v) for k, v in fields.items()}
        with self._lock:
            if self._ended:
                log.warning("record after run end dropped", run_id=self.run_id, kind=cls.__name__)
                return None
            rec = cls(
                run_id=self.run_id,
                seq=self._seq,
                created_at=time.time(),
                prev_hash=self._prev,
                **fields,
            ).sealed()
            self._seq += 1
            self._prev = rec.hash
            self._ended = isinstance(rec, RunEndRecord)
            self.store.append([rec])
        for sink in self._sinks:
            sink(rec)
        for queue in self._listeners:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(queue.put_nowait, rec)
        return rec
