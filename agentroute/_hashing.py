"""Canonical JSON and content hashes, shared by the registry, the trace chain and replay."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import orjson

_SORTED = orjson.OPT_SORT_KEYS


def canonical_json(value: Any) -> str:
    """Serialise `value` to JSON with sorted keys and no insignificant whitespace.

    The same data always gives the same string, so hashes of it are stable across processes.
    orjson does it ten times faster than the standard library; values it refuses (non-string
    keys, integers beyond 64 bits) fall back to the standard library, deterministically.
    """
    try:
        return orjson.dumps(value, option=_SORTED).decode()
    except TypeError:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        )


def compact_json(mapping: dict[str, Any], keys: Iterable[str]) -> dict[str, str] | None:
    """Compact JSON of `mapping[key]` for each of `keys`, keeping each value's own key order.

    For JSON-ready values (what `model_dump(mode="json")` gives). Returns None when a value is
    not something orjson encodes (the caller then encodes it another way).
    """
    try:
        return {key: orjson.dumps(mapping[key]).decode() for key in keys}
    except TypeError:
        return None


def sha256_hex(text: str) -> str:
    """Return the hex SHA-256 of a string's UTF-8 bytes.

    A lone UTF-16 surrogate (which UTF-8 cannot encode) is hashed as its 3-byte
    `surrogatepass` form instead of raising; every other string hashes as plain UTF-8.
    """
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def content_hash(value: Any) -> str:
    """Return the SHA-256 of `value`'s canonical JSON."""
    return sha256_hex(canonical_json(value))
