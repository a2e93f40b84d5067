"""Canonical JSON: the whole-record text and the per-field texts a SQL store reuses."""

from __future__ import annotations

import json

import pytest

from agentroute._hashing import canonical_json, canonical_json_parts
from agentroute.stores import CandidateRecord, DecisionRecord, RunRecord


def test_parts_splice_to_exactly_the_canonical_json() -> None:
    """The text built from per-field pieces is byte-identical to `canonical_json` of the whole."""
    record = DecisionRecord(
        run_id="r",
        seq=1,
        created_at=1.5,
        step=0,
        slot="agent",
        strategy="rules",
        chosen=["billing"],
        candidates=[CandidateRecord(name="billing", score=0.9, detail={"z": 1, "a": [2, "é"]})],
        reason="rule 'billing' fired — «refund»",
        evidence={"zeta": {"y": 1.0, "b": None}, "alpha": [3, 2, 1]},
    )
    payload = record.payload()
    whole, texts = canonical_json_parts(payload, ("params", "chosen", "candidates", "evidence"))
    assert whole == canonical_json(payload)
    assert set(texts) == {"params", "chosen", "candidates", "evidence"}
    for name, text in texts.items():
        assert text == canonical_json(payload[name])
        assert json.loads(text) == payload[name]
    assert texts["evidence"].startswith('{"alpha":')  # keys sorted, not insertion order


def test_parts_give_up_when_the_whole_needs_the_stdlib_fallback() -> None:
    """A value orjson refuses makes `canonical_json_parts` return None instead of a wrong text."""
    payload = {"metadata": {"big": 2**70}, "task": "t"}
    assert canonical_json_parts(payload, ("metadata",)) is None
    assert '"big":1180591620717411303424' in canonical_json(payload)


@pytest.mark.parametrize("nested", [(), ("router",)])
def test_parts_with_or_without_nested_keys_agree(nested: tuple[str, ...]) -> None:
    """Which keys are split out changes the pieces returned, never the whole text."""
    payload = RunRecord(
        run_id="r", seq=0, created_at=0.0, task="hi", router={"b": 1, "a": 2}
    ).payload()
    parts = canonical_json_parts(payload, nested)
    assert parts is not None
    assert parts[0] == canonical_json(payload)
    assert set(parts[1]) == set(nested)
