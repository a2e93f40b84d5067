"""A structlog logger that imports structlog on first use.

`structlog` pulls in `structlog.dev` and, through it, rich and pygments (~70–250 ms). Modules on
the `import agentroute` path log through this proxy so importing the package stays cheap; the
logger behaves exactly like `structlog.get_logger(name)` once used. The library never
configures structlog.
"""

from __future__ import annotations

from typing import Any

__all__ = ["get_logger"]


class _LazyLogger:
    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, attr)


def get_logger(name: str) -> Any:
    """Return a logger for `name` that imports structlog when it first logs."""
    return _LazyLogger(name)
