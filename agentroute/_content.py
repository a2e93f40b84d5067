"""Where the first-party content folders (`skills/`, `graphs/`) are, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

__all__ = ["content_dir"]


def content_dir(name: str) -> Path:
    """Return the bundled `skills` or `graphs` folder.

    A wheel carries them under `agentroute/_bundled/`; a source checkout has them at the top.

    Raises:
        FileNotFoundError: Neither exists (a broken install).
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "_bundled" / name, here.parent / name):
        if candidate.is_dir():
            return candidate
    msg = f"agentroute's bundled {name!r} folder is missing; reinstall agentroute"
    raise FileNotFoundError(msg)
