"""Canonical JSON for hashes, and the compact JSON texts sealed records keep for SQL stores."""

from __future__ import annotations

import json

from agentroute._hashing import canonical_json, compact_json
from agentroute.stores import CandidateRecord, DecisionRecord


def test_canonical_json_sorts_keys_and_is_compact() -> None:
    """The hash input is independent of key order and whitespace."""
    assert canonical_json({"b": 1, "a": [1, {"d": None, "c": "é"}]}) == (
        '{"a":[1,{"c":"é","d":null}],"b":1}'
    )
    assert canonical_json({"a": 1, "b": 2}) == canonical_json({"b": 2, "a": 1})


def test_canonical_json_falls_back_for_values_orjson_refuses() -> None:
    """Integers beyond 64 bits still serialise, deterministically, through the standard library."""
    assert canonical_json({"big": 2**70}) == '{"big":1180591620717411303424}'


def test_compact_json_keeps_each_value_and_its_key_order() -> None:
    """Each field's text parses back to the payload's value, with the record's key order."""
    record = DecisionRecord(
        run_id="r",
        seq=1,
        created_at=1.5,
        step=0,
        slot="agent",
        strategy="rules",
        chosen=["billing"],
        candidates=[CandidateRecord(name="billing", score=0.9, detail={"z": 1, "a": [2, "é"]})],
        reason="rule 'billing' fired",
        evidence={"zeta": {"y": 1.0, "b": None}, "alpha": [3, 2, 1]},
    )
    payload = record.payload()
    texts = compact_json(payload, ("chosen", "candidates", "evidence"))
    assert texts is not None
    assert set(texts) == {"chosen", "candidates", "evidence"}
    for name, text in texts.items():
        assert json.loads(text) == payload[name]
    assert texts["evidence"] == '{"zeta":{"y":1.0,"b":null},"alpha":[3,2,1]}'


def test_compact_json_gives_up_on_values_it_cannot_encode() -> None:
    """A value orjson refuses gives None, so the caller encodes the record another way."""
    assert compact_json({"metadata": {"big": 2**70}}, ("metadata",)) is None
    assert compact_json({"metadata": {"ok": 1}}, ()) == {}
