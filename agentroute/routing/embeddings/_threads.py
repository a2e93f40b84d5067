"""Thread limits for numpy's BLAS and torch on small machines."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["limit_threads"]

_limited: dict[str, Any] = {}


def limit_threads(n: int | None = None) -> int:
    """Cap torch threads, and pin numpy's BLAS to one thread, so they stop fighting.

    On a 2-core machine, numpy's BLAS pool and torch's intra-op pool each default to every
    core; run back to back they oversubscribe the CPU (a 17 ms query becomes 40 ms, and a
    per-query matrix-vector product on a busy machine 30 ms instead of 0.04 ms). Routing does
    small per-query products, which one BLAS thread serves best. Call once per process before
    heavy work; idempotent. On a shared or busy machine set `AGENTROUTE_THREADS=1`.

    Args:
        n: Torch threads; default `AGENTROUTE_THREADS` or the number of cores, at most 4.

    Returns:
        The limit applied.
    """
    if n is None and "n" in _limited:
        return int(_limited["n"])  # an explicit earlier limit stands
    if n is None:
        n = int(os.environ.get("AGENTROUTE_THREADS", "0")) or min(os.cpu_count() or 1, 4)
    if _limited.get("n") == n:
        return n
    try:
        from threadpoolctl import threadpool_limits

        _limited["blas"] = threadpool_limits(limits=1, user_api="blas")
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        pass
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    _limited["n"] = n
    return n
