"""Signals: each detector, their composition, and their config (YAML) form."""

from __future__ import annotations

import pytest

import agentroute as ar
from agentroute.routing import AllOf, AnyOf, Not, Signal, signal_from_config

from .conftest import MakeCtx

# -- Keywords ------------------------------------------------------------------------------------


def test_keywords_any_fires_on_one_word(make_ctx: MakeCtx) -> None:
    """mode=any fires when one word occurs, case-insensitively, and reports the hits."""
    sig = ar.Keywords("refund", "invoice")
    res = sig.evaluate(make_ctx("I want a REFUND please"))
    assert res.matched
    assert res.detail == {"keywords": ["refund"]}
    assert not sig.evaluate(make_ctx("where is my parcel")).matched


def test_keywords_all_needs_every_word(make_ctx: MakeCtx) -> None:
    """mode=all fires only when every word occurs."""
    sig = ar.Keywords("charged", "twice", mode="all")
    assert sig.evaluate(make_ctx("I was charged twice")).matched
    res = sig.evaluate(make_ctx("I was charged once"))
    assert not res.matched
    assert res.detail == {"keywords": ["charged"]}


def test_keywords_match_whole_words_only(make_ctx: MakeCtx) -> None:
    """`refund` does not fire inside `refunded` or `nonrefundable`."""
    sig = ar.Keywords("refund")
    assert not sig.evaluate(make_ctx("it was refunded yesterday")).matched
    assert not sig.evaluate(make_ctx("the ticket is nonrefundable")).matched
    assert sig.evaluate(make_ctx("refund, now!")).matched


def test_keywords_phrases_match_across_whitespace(make_ctx: MakeCtx) -> None:
    """A multi-word phrase matches with any whitespace between its words, not with other words."""
    sig = ar.Keywords("charged twice")
    assert sig.evaluate(make_ctx("I was Charged \n  Twice!")).matched
    assert not sig.evaluate(make_ctx("charged me twice")).matched


@pytest.mark.parametrize(
    ("word", "text"),
    [("c++", "I code in c++ daily"), ("$5", "they took $5 extra"), ("2fa?", "what is 2fa?")],
)
def test_keywords_with_punctuation_at_the_edges_still_match(
    make_ctx: MakeCtx, word: str, text: str
) -> None:
    """Whole-word matching works for words that start or end with punctuation."""
    assert ar.Keywords(word).evaluate(make_ctx(text)).matched
    assert not ar.Keywords(word).evaluate(make_ctx("nothing here")).matched


def test_keywords_regex_characters_are_literal(make_ctx: MakeCtx) -> None:
    """Words are escaped: `a.c` does not match `abc`."""
    assert not ar.Keywords("a.c").evaluate(make_ctx("abc")).matched
    assert ar.Keywords("a.c").evaluate(make_ctx("file a.c here")).matched


def test_keywords_on_previous(make_ctx: MakeCtx) -> None:
    """on='previous' looks at the previous answer, and never fires at step 0 (no previous)."""
    sig = ar.Keywords("escalate", on="previous")
    assert sig.evaluate(make_ctx("escalate", previous="please escalate this")).matched
    assert not sig.evaluate(make_ctx("escalate")).matched


def test_keywords_bad_arguments() -> None:
    """No words, an unknown mode, or an unknown `on` → ConfigurationError."""
    with pytest.raises(ar.ConfigurationError, match="at least one word"):
        ar.Keywords()
    with pytest.raises(ar.ConfigurationError, match="mode="):
        ar.Keywords("x", mode="some")  # type: ignore[arg-type]
    with pytest.raises(ar.ConfigurationError, match="on="):
        ar.Keywords("x", on="taks")  # type: ignore[arg-type]


@pytest.mark.parametrize("words", [("",), ("refund", "  ")])
def test_keywords_refuse_blank_words(make_ctx: MakeCtx, words: tuple[str, ...]) -> None:
    """A blank word would fire on every request; it is refused."""
    with pytest.raises(ar.ConfigurationError, match="non-blank"):
        ar.Keywords(*words)


# -- Regex, Length, Metadata, Predicate ----------------------------------------------------------


def test_regex_searches_case_insensitively(make_ctx: MakeCtx) -> None:
    """A regex fires anywhere in the text, ignoring case by default, and reports the match."""
    sig = ar.Regex(r"order\s*#?\d{5}")
    res = sig.evaluate(make_ctx("Where is ORDER #12345?"))
    assert res.matched
    assert res.detail == {"regex": "ORDER #12345"}
    assert not sig.evaluate(make_ctx("order 12")).matched


def test_regex_case_sensitive_and_invalid(make_ctx: MakeCtx) -> None:
    """ignore_case=False is honoured; an invalid pattern → ConfigurationError."""
    assert not ar.Regex("REFUND", ignore_case=False).evaluate(make_ctx("refund")).matched
    with pytest.raises(ar.ConfigurationError, match="not a valid regular expression"):
        ar.Regex("(unclosed")


def test_regex_on_previous(make_ctx: MakeCtx) -> None:
    """on='previous' searches the previous answer."""
    assert ar.Regex("done", on="previous").evaluate(make_ctx("x", previous="all done")).matched
    assert not ar.Regex("done", on="previous").evaluate(make_ctx("done")).matched


@pytest.mark.parametrize(
    ("kwargs", "length", "matched"),
    [
        ({"min_chars": 5}, 4, False),
        ({"min_chars": 5}, 5, True),
        ({"max_chars": 5}, 5, True),
        ({"max_chars": 5}, 6, False),
        ({"min_chars": 2, "max_chars": 3}, 3, True),
        ({"min_chars": 2, "max_chars": 3}, 1, False),
    ],
)
def test_length_bounds_are_inclusive(
    make_ctx: MakeCtx, kwargs: dict[str, int], length: int, matched: bool
) -> None:
    """Length fires within [min_chars, max_chars], bounds included, and reports the length."""
    res = ar.Length(**kwargs).evaluate(make_ctx("x" * length))
    assert res.matched is matched
    assert res.detail == {"chars": length}


def test_length_needs_a_bound() -> None:
    """Length() without bounds → ConfigurationError."""
    with pytest.raises(ar.ConfigurationError, match="min_chars and/or max_chars"):
        ar.Length()


def test_metadata_equals(make_ctx: MakeCtx) -> None:
    """equals= fires only on that exact value, and not when the key is missing."""
    sig = ar.Metadata("tier", equals="plus")
    assert sig.evaluate(make_ctx(metadata={"tier": "plus"})).detail == {
        "metadata": {"tier": "plus"}
    }
    assert not sig.evaluate(make_ctx(metadata={"tier": "basic"})).matched
    assert not sig.evaluate(make_ctx(metadata={})).matched


def test_metadata_equals_none_is_not_exists(make_ctx: MakeCtx) -> None:
    """equals=None matches only a None value (it is not the same as `exists`)."""
    sig = ar.Metadata("k", equals=None)
    assert sig.evaluate(make_ctx(metadata={"k": None})).matched
    assert not sig.evaluate(make_ctx(metadata={"k": 1})).matched


def test_metadata_one_of(make_ctx: MakeCtx) -> None:
    """one_of= fires when the value is one of several."""
    sig = ar.Metadata("channel", one_of=["chat", "email"])
    assert sig.evaluate(make_ctx(metadata={"channel": "email"})).matched
    assert not sig.evaluate(make_ctx(metadata={"channel": "phone"})).matched


def test_metadata_exists(make_ctx: MakeCtx) -> None:
    """With neither equals nor one_of, the signal fires when the key exists (any value)."""
    sig = ar.Metadata("vip")
    assert sig.evaluate(make_ctx(metadata={"vip": False})).matched
    assert not sig.evaluate(make_ctx(metadata={"other": 1})).matched


def test_predicate_calls_the_function(make_ctx: MakeCtx) -> None:
    """Predicate fires when the function returns truthy, naming itself in the detail."""

    def is_long(ctx: ar.RoutingContext) -> bool:
        return len(ctx.task) > 10

    sig = ar.Predicate(is_long)
    assert sig.evaluate(make_ctx("a very long request")).detail == {"predicate": "is_long"}
    assert not sig.evaluate(make_ctx("short")).matched
    assert ar.Predicate(lambda c: True, name="always").describe() == {"predicate": "always"}


# -- composition ---------------------------------------------------------------------------------


def test_and_or_not_build_composites(make_ctx: MakeCtx) -> None:
    """`&`, `|` and `~` build AllOf, AnyOf and Not with the expected truth tables."""
    a, b = ar.Keywords("alpha"), ar.Keywords("beta")
    assert isinstance(a & b, AllOf)
    assert isinstance(a | b, AnyOf)
    assert isinstance(~a, Not)
    table = {
        "alpha beta": (True, True, False),
        "alpha": (False, True, False),
        "beta": (False, True, True),
        "gamma": (False, False, True),
    }
    for text, (both, either, not_a) in table.items():
        ctx = make_ctx(text)
        assert (a & b).evaluate(ctx).matched is both, text
        assert (a | b).evaluate(ctx).matched is either, text
        assert (~a).evaluate(ctx).matched is not_a, text


def test_composite_details_are_merged(make_ctx: MakeCtx) -> None:
    """AllOf/AnyOf merge their parts' details; keyword lists are concatenated."""
    sig = ar.Keywords("charged") & ar.Keywords("twice") & ar.Regex(r"\$\d+")
    res = sig.evaluate(make_ctx("charged twice for $30"))
    assert res.matched
    assert res.detail == {"keywords": ["charged", "twice"], "regex": "$30"}
    any_res = (ar.Keywords("refund") | ar.Keywords("invoice") | ar.Keywords("nope")).evaluate(
        make_ctx("refund my invoice")
    )
    assert any_res.detail == {"keywords": ["refund", "invoice"]}


def test_nested_composition(make_ctx: MakeCtx) -> None:
    """(refund | money) & ~angry: fires for calm refund requests only."""
    sig = (ar.Keywords("refund") | ar.Keywords("money")) & ~ar.Keywords("angry", "furious")
    assert sig.evaluate(make_ctx("money back please")).matched
    assert not sig.evaluate(make_ctx("I am furious, refund now")).matched
    assert not sig.evaluate(make_ctx("hello")).matched


# -- config form ---------------------------------------------------------------------------------

ROUND_TRIP: list[Signal] = [
    ar.Keywords("refund", "charged twice", mode="all", on="previous"),
    ar.Regex(r"order\s+\d+", ignore_case=False),
    ar.Length(min_chars=3),
    ar.Length(max_chars=40),
    ar.Metadata("tier", equals="plus"),
    ar.Metadata("channel", one_of=["chat", "email"]),
    ar.Metadata("vip"),
    (ar.Keywords("a") | ar.Regex("b")) & ~ar.Length(max_chars=2),
]


@pytest.mark.parametrize("signal", ROUND_TRIP, ids=lambda s: type(s).__name__)
def test_describe_round_trips_through_signal_from_config(signal: Signal) -> None:
    """describe() → signal_from_config() → describe() gives the same config."""
    rebuilt = signal_from_config(signal.describe())
    assert type(rebuilt) is type(signal)
    assert rebuilt.describe() == signal.describe()


@pytest.mark.parametrize("signal", ROUND_TRIP, ids=lambda s: type(s).__name__)
def test_rebuilt_signal_behaves_the_same(make_ctx: MakeCtx, signal: Signal) -> None:
    """A signal rebuilt from its config fires on exactly the same inputs."""
    rebuilt = signal_from_config(signal.describe())
    texts = ["refund charged twice", "order 12", "Order 12", "ab", "a", "hello there", ""]
    metas = [{}, {"tier": "plus"}, {"channel": "chat"}, {"vip": 1}]
    for text in texts:
        for meta in metas:
            ctx = make_ctx(text or "x", previous=text, metadata=meta)
            assert rebuilt.evaluate(ctx) == signal.evaluate(ctx)


def test_config_forms(make_ctx: MakeCtx) -> None:
    """The YAML forms build the matching signal classes (a bare string keyword included)."""
    assert isinstance(signal_from_config({"keywords": "refund"}), ar.Keywords)
    assert isinstance(signal_from_config({"regex": "x"}), ar.Regex)
    assert isinstance(signal_from_config({"min_chars": 1}), ar.Length)
    assert isinstance(signal_from_config({"metadata": {"key": "k"}}), ar.Metadata)
    assert isinstance(signal_from_config({"all": [{"regex": "a"}, {"regex": "b"}]}), AllOf)
    assert isinstance(signal_from_config({"any": [{"regex": "a"}]}), AnyOf)
    assert isinstance(signal_from_config({"not": {"regex": "a"}}), Not)
    sig = ar.Keywords("x")
    assert signal_from_config(sig) is sig
    yaml_sig = signal_from_config(
        {"all": [{"keywords": ["charged"]}, {"not": {"keywords": ["once"]}}]}
    )
    assert yaml_sig.evaluate(make_ctx("charged twice")).matched
    assert not yaml_sig.evaluate(make_ctx("charged once")).matched


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("refund", "a signal must be a mapping"),
        ({}, "a signal must be a mapping"),
        ({"keyword": ["refund"]}, "unknown signal"),
        ({"keywords": []}, "at least one word"),
        ({"keywords": ["a"], "mode": "most"}, "mode="),
        ({"regex": "("}, "not a valid regular expression"),
        ({"metadata": "tier"}, "metadata signal needs"),
        ({"metadata": {"equals": 1}}, "metadata signal needs"),
        ({"all": []}, "non-empty list"),
        ({"any": {"regex": "x"}}, "non-empty list"),
        ({"not": "x"}, "a signal must be a mapping"),
        ({"keywords": ["a"], "mdoe": "all"}, "mdoe"),
        ({"regex": "a", "ignorecase": False}, "ignorecase"),
        ({"keywords": ["a"], "on": "taks"}, "on="),
        ({"metadata": {"key": "k", "equal": 1}}, "equal"),
        ({"keywords": ["a"], "regex": "b"}, "regex"),
    ],
)
def test_bad_config_is_a_configuration_error(config: object, message: str) -> None:
    """Malformed signal configs → ConfigurationError saying what is wrong."""
    with pytest.raises(ar.ConfigurationError, match=message):
        signal_from_config(config, "rules[0].when")


def test_bad_nested_config_names_where(make_ctx: MakeCtx) -> None:
    """An error deep inside a composite names its position."""
    with pytest.raises(ar.ConfigurationError, match=r"rules\[2\]\.when\.all\[1\]\.not"):
        signal_from_config({"all": [{"regex": "a"}, {"not": {"bogus": 1}}]}, "rules[2].when")
