"""YAML loading with YAML 1.2 booleans.

PyYAML follows YAML 1.1, where `on`, `off`, `yes`, `no`, `y` and `n` are booleans: a graph's
`on: previous` would silently become `{True: "previous"}`. Content files here are read with only
`true` and `false` as booleans, as YAML 1.2 (and most people) expect.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["safe_load"]


class _Loader(yaml.SafeLoader):
    """SafeLoader whose implicit booleans are only true/false."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def safe_load(text: str) -> Any:
    """Parse YAML safely, with YAML 1.2 booleans (`on`/`yes`/`no` stay strings)."""
    return yaml.load(text, Loader=_Loader)
