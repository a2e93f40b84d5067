"""Retrieval metrics and the JSON-lines formats of `agentroute eval skills`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentroute._jsonl import json_lines
from agentroute.errors import ConfigurationError

__all__ = [
    "EvalQuery",
    "SkillRecord",
    "metric_table",
    "query_metrics",
    "read_queries",
    "read_skills",
]

METRICS = ("hit@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
"""The metrics `metric_table` reports, in order."""


@dataclass(frozen=True, slots=True)
class SkillRecord:
    """A skill read from JSON lines (ids may be any non-empty string)."""

    id: str
    name: str
    description: str
    body: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EvalQuery:
    """A labelled query."""

    id: str
    text: str
    gold: frozenset[str] = field(default_factory=frozenset)


def query_metrics(ranked: Sequence[str], gold: Iterable[str]) -> dict[str, float]:
    """Hit@1, Recall@5/10, MRR@10 and binary nDCG@10 of one ranking."""
    g = set(gold)
    if not g:
        msg = "a query needs at least one gold id"
        raise ValueError(msg)
    top = list(ranked[:10])
    rr = next((1.0 / (i + 1) for i, s in enumerate(top) if s in g), 0.0)
    dcg = sum(1.0 / math.log2(i + 2) for i, s in enumerate(top) if s in g)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(g), 10)))
    return {
        "hit@1": 1.0 if ranked[:1] and ranked[0] in g else 0.0,
        "recall@5": len(g & set(ranked[:5])) / len(g),
        "recall@10": len(g & set(top)) / len(g),
        "mrr@10": rr,
        "ndcg@10": dcg / ideal,
    }


def metric_table(
    rankings: Sequence[Sequence[str]], golds: Sequence[Iterable[str]]
) -> dict[str, float]:
    """Mean of `query_metrics` over queries."""
    if not rankings:
        return dict.fromkeys(METRICS, 0.0)
    rows = [query_metrics(r, g) for r, g in zip(rankings, golds, strict=True)]
    return {m: sum(r[m] for r in rows) / len(rows) for m in METRICS}


def _text(value: Any, where: str, key: str, *, required: bool) -> str:
    if value is None:
        if required:
            msg = f"{where}: missing {key!r}"
            raise ConfigurationError(msg)
        return ""
    if not isinstance(value, str):
        msg = f"{where}: {key!r} must be a string, got {type(value).__name__}"
        raise ConfigurationError(msg)
    return value


def read_skills(path: str | Path) -> list[SkillRecord]:
    """Read `{"id","name","description","body","tags"?}` lines.

    Raises:
        ConfigurationError: Unreadable or non-UTF-8 file, bad JSON, a missing or empty id,
            a duplicate id (naming both lines), or a field of the wrong type.
    """
    p = Path(path)
    out: list[SkillRecord] = []
    seen: dict[str, int] = {}
    for n, row in json_lines(p):
        where = f"{p}:{n}"
        sid = row.get("id")
        if isinstance(sid, int | float) and not isinstance(sid, bool):
            sid = str(sid)
        sid = _text(sid, where, "id", required=True).strip()
        if not sid:
            msg = f"{where}: empty 'id'"
            raise ConfigurationError(msg)
        if sid in seen:
            msg = (
                f"{where}: duplicate skill id {sid!r} (first on line {seen[sid]}); "
                "ids must be unique"
            )
            raise ConfigurationError(msg)
        seen[sid] = n
        tags = row.get("tags") or ()
        if isinstance(tags, str):
            tags = (tags,)
        if not isinstance(tags, list | tuple):
            msg = f"{where}: 'tags' must be a list of strings"
            raise ConfigurationError(msg)
        out.append(
            SkillRecord(
                id=sid,
                name=_text(row.get("name"), where, "name", required=False) or sid,
                description=_text(row.get("description"), where, "description", required=False),
                body=_text(row.get("body"), where, "body", required=False),
                tags=tuple(str(t) for t in tags),
            )
        )
    if not out:
        msg = f"{p}: no skills (expected one JSON object per line)"
        raise ConfigurationError(msg)
    return out


def read_queries(path: str | Path, known: Iterable[str] | None = None) -> list[EvalQuery]:
    """Read `{"id","text","gold":[skill ids]}` lines.

    Args:
        path: The file.
        known: Skill ids; a gold id outside them is an error (a typo would silently lower
            every metric).

    Raises:
        ConfigurationError: Bad JSON, a missing text, an empty gold list or an unknown gold id.
    """
    p = Path(path)
    ids = set(known) if known is not None else None
    out: list[EvalQuery] = []
    for n, row in json_lines(p):
        where = f"{p}:{n}"
        text = _text(row.get("text"), where, "text", required=True)
        gold = row.get("gold")
        if isinstance(gold, str):
            gold = [gold]
        if not isinstance(gold, list) or not gold:
            msg = f"{where}: 'gold' must be a non-empty list of skill ids"
            raise ConfigurationError(msg)
        gold_ids = frozenset(str(g) for g in gold)
        if ids is not None:
            unknown = sorted(gold_ids - ids)
            if unknown:
                msg = f"{where}: gold id(s) {unknown[:5]} are not in the skills file"
                raise ConfigurationError(msg)
        qid = row.get("id", n)
        out.append(EvalQuery(id=str(qid), text=text, gold=gold_ids))
    if not out:
        msg = f"{p}: no queries (expected one JSON object per line)"
        raise ConfigurationError(msg)
    return out
