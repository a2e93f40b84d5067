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


def canonical_json_parts(
    mapping: dict[str, Any], nested: Iterable[str]
) -> tuple[str, dict[str, str]] | None:
    """`canonical_json(mapping)`, plus the canonical JSON of the values under the keys `nested`.

    For a dict with string keys. Each nested value is encoded once and spliced into the whole
    verbatim, so a trace record's hash input and the JSON column texts a store writes come from
    one encoding. Returns None when a value needs the standard-library fallback:
    `canonical_json` decides that fallback for the whole value, so the caller must use it.
    """
    spliced = dict(mapping)
    texts: dict[str, str] = {}
    try:
        for key in nested:
            encoded = orjson.dumps(mapping[key], option=_SORTED)
            spliced[key] = orjson.Fragment(encoded)
            texts[key] = encoded.decode()
        whole = orjson.dumps(spliced, option=_SORTED)
    except TypeError:
        return None
    return whole.decode(), texts


def sha256_hex(text: str) -> str:
    """Return the hex SHA-256 of a UTF-8 string."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_hash(value: Any) -> str:
    """Return the SHA-256 of `value`'s canonical JSON."""
    return sha256_hex(canonical_json(value))
