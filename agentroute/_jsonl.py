"""Reading the JSON-lines files users hand to the `eval` commands and loaders.

One reader so every file format gets the same errors: an unreadable or non-UTF-8 file, and a
line that is not JSON or not an object, fail with a `ConfigurationError` naming `path:line`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentroute.errors import ConfigurationError

__all__ = ["json_lines"]


def json_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield `(line number, object)` for every non-blank line of a JSON-lines file.

    A UTF-8 byte-order mark is accepted.

    Raises:
        ConfigurationError: The file cannot be read or is not UTF-8, or a line is not a JSON
            object (the message names `path:line`).
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        msg = f"{p}: cannot read: {exc.strerror or exc}"
        raise ConfigurationError(msg) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        msg = f"{p}: not UTF-8 (byte {exc.start}); save the file as UTF-8"
        raise ConfigurationError(msg) from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            msg = f"{p}:{number}: not valid JSON ({getattr(exc, 'msg', exc)})"
            raise ConfigurationError(msg) from exc
        if not isinstance(value, dict):
            msg = f"{p}:{number}: expected a JSON object, got {type(value).__name__}"
            raise ConfigurationError(msg)
        yield number, value
