"""`open_store(url)`: a store from a URL."""

from __future__ import annotations

from agentroute.errors import ConfigurationError
from agentroute.stores._base import TraceStore
from agentroute.stores._memory import InMemoryTraceStore

__all__ = ["DEFAULT_STORE_URL", "open_store"]

DEFAULT_STORE_URL = "sqlite:///agentroute.db"
"""Where runs go when no store is given."""


def open_store(url: str | TraceStore | None = None) -> TraceStore:
    """Open a trace store by URL, or pass a store through unchanged.

    Args:
        url: `memory://`, `sqlite:///path.db` (the default, `sqlite:///agentroute.db`),
            `postgresql://user@host:5432/db` (needs `pip install 'agentroute[postgres]'`),
            or a `TraceStore` instance.

    Raises:
        ConfigurationError: The URL's scheme is not supported.
    """
    if isinstance(url, TraceStore):
        return url
    url = url or DEFAULT_STORE_URL
    if url.startswith("memory:"):
        return InMemoryTraceStore()
    if url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
        from agentroute.stores._sql import SqlTraceStore

        return SqlTraceStore(url)
    if ":" not in url:
        # A bare path (no scheme, so no password to hide): say which URL it probably meant.
        msg = (
            f"store URL {url!r} has no scheme; for a SQLite file write 'sqlite:///{url}' "
            "(three slashes, then the path), or use 'memory://' or "
            "'postgresql://user@host:5432/db'"
        )
        raise ConfigurationError(msg)
    scheme = url.partition(":")[0]
    # Only the scheme is shown: the rest of a URL may carry a password.
    msg = (
        f"unsupported store URL scheme {scheme!r}: use 'memory://', 'sqlite:///path.db' or "
        "'postgresql://user@host:5432/db'"
    )
    raise ConfigurationError(msg)
